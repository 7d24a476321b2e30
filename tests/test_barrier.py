"""The barrier lab (issue 6): samplers against enumeration, hidden streams, prime oracles, uniformity."""

import math
from collections import Counter

import numpy as np
import pytest
import sympy
import torch
from scipy.stats import chisquare

from nextk.barrier.hidden import HiddenStream, SeedPrefix, visible, visible_tv
from nextk.barrier.primes import ApproxCounter, ExactCounter, approximation_tv, draw_prime
from nextk.barrier.report import BarrierConfig, run_report
from nextk.barrier.sampling import factors_first_autoregressive, non_autoregressive, product_first_autoregressive
from nextk.barrier.uniformity import uniformity_test
from nextk.measure import support
from nextk.sources import Factorization, RandomNumber


def frequencies_match(src, docs: list[str], pvalue=1e-4):
    """Chi-square of sampled documents against the source's exact probabilities (pooled small cells)."""
    x, lp = support(src)
    index = {s: i for i, s in enumerate(src.decode(x))}
    counts = np.zeros(len(x))
    for doc in docs:
        counts[index[doc.rstrip(src.pad)]] += 1
    expected = lp.exp().numpy() * len(docs)
    return chisquare(counts, expected).pvalue > pvalue


@pytest.mark.parametrize("digits", [1, 2])
def test_autoregressive_and_non_autoregressive_samplers_match_exact(digits):
    g = torch.Generator().manual_seed(digits)
    pf, ff = Factorization(digits), Factorization(digits, order="factors_first")
    n = 3000
    assert frequencies_match(pf, [non_autoregressive(pf, g) for _ in range(n)])
    assert frequencies_match(pf, [product_first_autoregressive(pf, g)[0] for _ in range(n)])
    assert frequencies_match(ff, [factors_first_autoregressive(ff, g) for _ in range(n)])
    assert frequencies_match(ff, [factors_first_autoregressive(ff, g, ApproxCounter(digits)) for _ in range(n)])


def test_product_first_must_factor():
    src = Factorization(7)
    doc, spent = product_first_autoregressive(src, torch.Generator().manual_seed(0))
    n, pq = doc.rstrip(".").split("=")
    p, q = map(int, pq.split("*"))
    assert p * q == int(n) and sympy.isprime(p) and sympy.isprime(q) and p >= q and spent > 0


@pytest.mark.parametrize(
    "make",
    [lambda: HiddenStream(1), pytest.param(lambda: HiddenStream(2), marks=pytest.mark.slow), lambda: SeedPrefix(1, 8)],
)
def test_hidden_views_of_the_exact_source_are_exact(make):
    src = make()
    assert visible_tv(src)["tv_upper"] < 1e-12  # the visible marginal is the truth
    vis = src.visible_source
    docs = vis.decode(visible(src, src).sample(5000, generator=0))
    assert frequencies_match(vis, docs)


def test_seed_prefix_bias_is_reported_and_bounds_visible_tv():
    src = SeedPrefix(2, bits=10)
    tv = visible_tv(src)["tv_upper"]
    assert 0 < tv <= src.seed_bias_tv + 1e-12


def test_exact_prime_oracle_equals_independent_counts():
    c = ExactCounter()
    for lo, hi in [(100, 200), (1000, 1100), (99_990_000, 100_000_000), (10**8, 10**8 + 1000)]:
        assert c.count(lo, hi) == len(list(sympy.primerange(lo, hi)))


def test_approximation_tv_is_computed_against_a_slow_reference():
    d, last = 4, 2
    primes = list(sympy.primerange(1000, 10000))
    counter = ApproxCounter(last)

    def q(x):  # product of the approximate conditionals along x's digits
        prob, value = 1.0, 0
        for t, ch in enumerate(str(x)):
            scale = 10 ** (d - 1 - t)
            w = [counter.count(max((value * 10 + v) * scale, 1000), (value * 10 + v + 1) * scale) for v in range(10)]
            prob *= w[int(ch)] / sum(w)
            value = value * 10 + int(ch)
        return prob

    qs = np.array([q(x) for x in primes])
    qs /= qs.sum()
    slow = 0.5 * np.abs(qs - 1 / len(primes)).sum()
    fast = approximation_tv(d, last)["tv"]
    assert math.isclose(fast, slow, rel_tol=1e-9) and fast > 1e-4
    assert approximation_tv(3, 3)["tv"] < 1e-12  # all digits exact: no error


def test_approximate_primes_are_prime_at_any_size():
    g = torch.Generator().manual_seed(0)
    for d in (5, 12, 20):
        assert sympy.isprime(draw_prime(d, ApproxCounter(2), g))


def test_uniformity_test():
    src = RandomNumber(3)
    ok = uniformity_test(src.sample(20000, generator=0), 3)
    assert ok["p_value"] > 1e-3 and ok["invalid_rate"] == 0 and ok["cohens_w_corrected"] < 0.1
    biased = src.sample(20000, generator=1)
    biased[:5000, 0] = 1  # a quarter forced to start with 1
    bad = uniformity_test(biased, 3)
    assert bad["p_value"] < 1e-10 and bad["cohens_w_corrected"] > ok["cohens_w_corrected"]
    zeros = torch.zeros(10, 3, dtype=torch.long)
    assert uniformity_test(zeros, 3)["invalid_rate"] == 1.0


def test_small_report(tmp_path):
    cfg = BarrierConfig(
        sampling_digits=[2, 4],
        sampling_budget_s=4,
        prime_digits=[2, 3],
        prime_budget_s=1,
        learn_digits=[1],
        hidden=8,
        steps=10,
        hidden_digits=1,
        seed_bits=8,
        eval_samples=50,
    )
    res = run_report(cfg, tmp_path, log=lambda *a: None)
    assert set(res) >= {"sampling", "primes", "learning", "hidden", "uniformity"}
    for name in ("summary.md", "results.json", "sampling_cost.png", "primes.png", "learning.png"):
        assert (tmp_path / name).stat().st_size > 100
    assert "Learning by order" in (tmp_path / "summary.md").read_text()
    assert Counter(r["order"] for r in res["learning"]) == {"product_first": 1, "factors_first": 1}
