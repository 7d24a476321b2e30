"""The barrier lab (docs/theory.md §7): samplers against enumeration, hidden streams, prime oracles, uniformity."""

import json
import math
from collections import Counter

import numpy as np
import pytest
import sympy
import torch
from scipy.stats import chisquare

from nextk.barrier.conclusions import (
    cohens_w_interval,
    compare_rates,
    conclusions,
    growth_sentence,
    stop_sentence,
    uniformity_sentence,
)
from nextk.barrier.hidden import HiddenStream, SeedPrefix, visible, visible_tv
from nextk.barrier.primes import ApproxCounter, ExactCounter, approximation_tv, draw_prime
from nextk.barrier.sampling import factors_first_autoregressive, non_autoregressive, product_first_autoregressive
from nextk.barrier.uniformity import uniformity_test
from nextk.measure import support
from nextk.runs.barrier import Config as BarrierConfig
from nextk.runs.barrier import draw, summary
from nextk.runs.barrier import run as run_report
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
    res = run_report(cfg, tmp_path)
    draw(res, tmp_path)
    assert set(res) >= {"sampling", "primes", "learning", "hidden", "uniformity", "conclusions"}
    for name in ("summary.md", "results.json", "sampling_cost.png", "primes.png", "learning.png"):
        assert (tmp_path / name).stat().st_size > 100
    text = (tmp_path / "summary.md").read_text()
    assert "Learning by order" in text and "## Conclusions" in text
    saved = json.loads((tmp_path / "results.json").read_text())["conclusions"]
    for x in saved["learning"]["validity"]:
        assert x["sentence"] in text and x["verdict"] in ("a_higher", "b_higher", "overlap", "undetermined")
    assert Counter(r["order"] for r in res["learning"]) == {"product_first": 1, "factors_first": 1}


# ---- the report's conclusions are computed: opposite numbers give opposite sentences ------------------


def est(value, low, high, method="synthetic"):
    return {"value": value, "stderr": (high - low) / 3.92, "low": low, "high": high, "n": 1000, "method": method}


def cost_rows(slope, digits=(2, 4, 6, 8, 10)):
    """Timings growing `slope` decades per digit, with a fixed ±0.05-decade wobble (so the fit has an interval)."""
    return [{"digits": d, "seconds_per_sample": 10 ** (slope * d - 5 + 0.05 * (-1) ** i)} for i, d in enumerate(digits)]


def test_compare_rates_overlap_and_both_orders():
    pf, ff = est(0.893, 0.873, 0.911), est(0.935, 0.918, 0.948)
    sent, v = compare_rates(pf, ff, "product-first", "factors-first")
    assert v == "b_higher" and sent.endswith("factors-first is higher, the intervals do not overlap")
    assert "0.893 [0.873, 0.911]" in sent and "0.935 [0.918, 0.948]" in sent
    sent, v = compare_rates(ff, pf, "factors-first", "product-first")  # same numbers, names swapped
    assert v == "a_higher" and sent.endswith("factors-first is higher, the intervals do not overlap")
    sent, v = compare_rates(ff, pf, "product-first", "factors-first")  # product-first now the higher one
    assert v == "a_higher" and sent.endswith("product-first is higher, the intervals do not overlap")
    sent, v = compare_rates(pf, est(0.905, 0.889, 0.921), "product-first", "factors-first")
    assert v == "overlap" and sent.endswith("the intervals overlap, no order effect shown at this budget")
    sent, v = compare_rates(pf, {"value": 0.9, "stderr": None, "low": None, "high": None}, "a", "b")
    assert v == "undetermined" and "no comparison" in sent


def test_growth_sentence_faster_slower_and_overlap():
    sent, v = growth_sentence(cost_rows(0.5), cost_rows(0.01), "product-first", "non-autoregressive")
    assert v == "a_higher" and "product-first grows faster, the intervals do not overlap" in sent
    assert "0.50 [" in sent  # the fitted growth carries its interval
    sent, v = growth_sentence(cost_rows(0.01), cost_rows(0.5), "product-first", "non-autoregressive")
    assert v == "b_higher" and "non-autoregressive grows faster" in sent
    sent, v = growth_sentence(cost_rows(0.02), cost_rows(0.01), "product-first", "non-autoregressive")
    assert v == "overlap" and "no difference in growth shown" in sent
    _, v = growth_sentence(cost_rows(0.5, (2, 4)), cost_rows(0.01, (2, 4)), "a", "b")
    assert v == "undetermined"  # two points: a slope without an interval decides nothing


def test_stop_sentence_budget_limit_complete():
    requested = list(range(2, 25, 2))
    sent, flag = stop_sentence("product-first", cost_rows(0.5, (2, 4, 6)), requested)
    assert flag == "budget" and sent == "the time budget stopped product-first after d = 6 (requested up to 24)"
    sent, flag = stop_sentence("exact", cost_rows(0.1, (2, 4, 6, 8)), requested, limit=8)
    assert flag == "limit" and "not by the time budget" in sent
    sent, flag = stop_sentence("product-first", cost_rows(0.5, tuple(requested)), requested)
    assert flag == "complete" and "reached every requested d" in sent


def test_cohens_w_interval_inverts_the_noncentral_chi_square():
    from scipy.stats import ncx2

    null = cohens_w_interval({"chi2": 899.0, "dof": 899, "valid": 20000})
    assert null["value"] == 0 and null["low"] == 0 < null["high"] < 0.1
    far = cohens_w_interval({"chi2": 1500.0, "dof": 899, "valid": 20000})
    assert 0 < far["low"] < far["value"] < far["high"]
    for end, tail in (("low", 0.975), ("high", 0.025)):  # P(χ² ≤ observed | λ at the end) is the tail
        assert math.isclose(ncx2.cdf(1500.0, 899, far[end] ** 2 * 20000), tail, abs_tol=1e-6)


def test_uniformity_sentence_rejected_or_not():
    row = {"model": "GRU", "chi2": 1500.0, "dof": 899, "valid": 19900, "samples": 20000, "invalid_rate": 0.005}
    sent, flag = uniformity_sentence({**row, "p_value": 1e-20})
    assert flag == "rejected" and "uniformity rejected at the 5% level" in sent and "invalid rate 0.005 [" in sent
    sent, flag = uniformity_sentence({**row, "chi2": 880.0, "p_value": 0.66})
    assert flag == "not rejected" and "uniformity not rejected" in sent and "w (noise floor removed) 0.000 [" in sent


def synthetic_results(product_first_wins: bool) -> dict:
    """A complete report result whose numbers point one way or, with the flag flipped, the other."""
    slow, fast = (0.6, 0.02) if product_first_wins else (0.02, 0.6)
    requested = [2, 4, 6, 8, 10, 12]
    pf_rows = cost_rows(slow, (2, 4, 6) if product_first_wins else tuple(requested))
    lo, hi = (est(0.60, 0.57, 0.63), est(0.90, 0.88, 0.92))
    valid_pf, valid_ff = (hi, lo) if product_first_wins else (lo, hi)
    unif = {"chi2": 899.0, "dof": 899, "valid": 20000, "samples": 20000, "invalid_rate": 0.0, "p_value": 0.5}
    return {
        "sampling_requested_digits": requested,
        "sampling": {
            "non_autoregressive": {"rows": cost_rows(fast, tuple(requested)), "fit": {}},
            "autoregressive_product_first": {"rows": pf_rows, "fit": {}},
        },
        "primes": [{"digits": 3, "exact": 1e-4, "approx": 2e-4, "tv": 0.01}],
        "learning": [
            {"digits": 2, "order": "product_first", "excess_loss": est(0.1, 0.09, 0.11), "validity": valid_pf},
            {"digits": 2, "order": "factors_first", "excess_loss": est(0.1, 0.09, 0.11), "validity": valid_ff},
        ],
        "hidden": [
            {"variant": "plain (product first)", "validity": lo, "visible_tv": 0.3, "visible_tv_method": "exact"},
            {
                "variant": "hidden stream",
                "validity": hi,
                "visible_tv": 0.05 if product_first_wins else 0.4,
                "visible_tv_method": "upper bound",
            },
        ],
        "uniformity": [{"model": "exact source", **unif}, {"model": "GRU", **unif, "chi2": 2000.0, "p_value": 1e-30}],
        "seconds": {"sampling": 1.0},
    }


def test_report_conclusions_follow_the_numbers(tmp_path):
    texts = {}
    for flag in (True, False):
        res = synthetic_results(flag)
        c = conclusions(res, res["sampling_requested_digits"])
        texts[flag] = summary(res)
        draw(res, tmp_path)  # the plot titles come from the same conclusions
        assert c["sampling"]["versus"][0]["verdict"] == ("a_higher" if flag else "b_higher")
        assert c["sampling"]["stopped"]["autoregressive_product_first"]["flag"] == ("budget" if flag else "complete")
        assert c["learning"]["validity"][0]["verdict"] == ("a_higher" if flag else "b_higher")
        assert c["learning"]["excess_loss"][0]["verdict"] == "overlap"
        assert [x["verdict"] for x in c["hidden"]] == ["a_higher", "lower" if flag else "not shown lower"]
        assert [x["verdict"] for x in c["uniformity"]] == ["not rejected", "rejected"]
    win, lose = texts[True], texts[False]
    assert "product-first grows faster, the intervals do not overlap" in win
    assert "non-autoregressive grows faster, the intervals do not overlap" in lose
    assert "the time budget stopped product-first after d = 6 (requested up to 12)" in win
    assert "product-first reached every requested d (up to 12)" in lose and "time budget stopped" not in lose
    assert "d = 2: product-first valid rate 0.900 [0.880, 0.920] vs factors-first 0.600 [0.570, 0.630]" in win
    assert "factors-first is higher, the intervals do not overlap" in lose
    assert "no order effect shown at this budget" in win and "no order effect shown at this budget" in lose
    for fixed in ("the order matters", "the budget stops it first"):  # the old unconditional conclusions
        assert fixed not in win and fixed not in lose


def test_visible_check_reads_only_up_to_the_window_end():
    """Definition 2 on HiddenStream(1) (hidden "p′q′|", h = 3): the window [0, 3) lies in the hidden part, so
    changing positions ≥ 3 cannot change its answer (it used to be judged on visible positions [0, 3)). A
    window ending in the visible part is judged on the visible prefix up to its end: equal to the visible
    document's checker run on that visible prefix alone, for every window of sampled documents."""
    src = HiddenStream(1)
    check, visible_check = src.checks["arithmetic"], src.visible_source.checks["arithmetic"]
    x = src.sample(1, generator=0)  # a valid document
    bad = x.clone()
    bad[0, 3:] = src.visible_source.encode("1=1*1.")  # invalid visible part: 1 is not prime
    assert check(x, 0, 3).item() and check(bad, 0, 3).item()  # nothing visible in the window
    assert check(x, 0, src.length).item() and not check(bad, 0, src.length).item()
    assert check(bad, 0, 6).item() and check(bad, 4, 2).item()  # "1=1": the factor is still being written
    assert not check(bad, 0, 7).item() and not check(bad, 4, 3).item()  # "1=1*": a completed factor 1
    sep = x.clone()
    sep[0, 5] = src.vocab_size - 1  # a separator inside the visible part
    assert not check(sep, 3, 3).item() and check(sep, 3, 2).item()
    docs = torch.cat([src.sample(100, generator=1), bad])
    vis = docs[:, 3:]
    for k in (1, 2, 3):
        for start in range(src.length - k + 1):
            end = start + k - 3  # visible tokens up to the window end
            padded = torch.cat([vis[:, : max(end, 0)], torch.zeros(len(vis), 6 - max(end, 0), dtype=torch.long)], 1)
            want = visible_check(padded, 0, end) if end > 0 else torch.ones(len(docs), dtype=torch.bool)
            assert torch.equal(check(docs, start, k), want), (start, k)
