"""Advantage estimators, Theorem 3, the optimal and learned distinguishers."""

import math

import pytest
import torch

from nextk import bounds
from nextk.advantage import advantage, tv_advantage
from nextk.distinguishers import LearnedDistinguisher, Negation, OptimalDistinguisher
from nextk.errors import InputError, TooLargeError
from nextk.measure import kl
from nextk.models import NGram
from nextk.sources import HMM, Dyck, Parity
from tests import references as ref


class RandomD:
    """A fixed random distinguisher: a hash of (start, prefix parity, window) picks the answer."""

    def __init__(self, seed):
        self.table = torch.rand(4096, generator=torch.Generator().manual_seed(seed)) > 0.5

    def __call__(self, x, start, k):
        from nextk.distinguishers.checks import clip

        x, starts = clip(x, start, k)
        h = starts * 7919
        for t in range(x.shape[1]):
            inside = (t >= starts) & (t < starts + k)
            h = torch.where(inside, h * 31 + x[:, t] + 1, h + (t < starts) * x[:, t] * 13)
        return self.table[h % 4096]


def pairs():
    for seed in range(3):
        p = HMM.random(2, 2, 6, seed=seed, stay=0.8)
        q = HMM.random(3, 2, 6, seed=seed + 10, stay=0.5)
        yield p, q, RandomD(seed)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_theorem3_holds_exactly(k):
    for p, q, d in pairs():
        a = advantage(d, p, q, k, estimator="exact").value
        tv = tv_advantage(p, q, k, estimator="exact").value
        bound = bounds.theorem3(kl(p, q, estimator="exact").value, k, p.length)
        assert abs(a) <= tv + 1e-12 <= bound + 2e-12
        assert math.isclose(
            advantage(OptimalDistinguisher(p, q, k), p, q, k, estimator="exact").value, tv, rel_tol=1e-9
        )
        assert math.isclose(advantage(Negation(d), p, q, k, estimator="exact").value, -a, abs_tol=1e-12)


def test_estimators_agree_with_exact():
    for p, q, d in pairs():
        exact = advantage(d, p, q, 2, estimator="exact").value
        for est in ("paired", "rao_blackwell"):
            e = advantage(d, p, q, 2, num_docs=3000, estimator=est, seed=1)
            assert e.low <= exact <= e.high, (est, e, exact)
        tv = tv_advantage(p, q, 2, num_docs=3000, seed=2)
        assert tv.low <= tv_advantage(p, q, 2, estimator="exact").value <= tv.high


def test_random_starts_subset_is_unbiased():
    p, q, d = next(pairs())
    exact = advantage(d, p, q, 2, estimator="exact").value
    e = advantage(d, p, q, 2, num_docs=4000, starts=2, estimator="rao_blackwell", seed=3)
    assert e.low <= exact <= e.high


def brute_force_cases():
    """(p, q, d) with V = 2, n = 6: the HMM pairs, and a Dyck p (prefixes of probability 0) against an HMM q."""
    yield from pairs()
    dyck = Dyck(1, 2, 6)
    q = HMM.random(3, 2, 6, seed=5, stay=0.6)
    yield dyck, q, dyck.checks["valid"]
    yield dyck, q, RandomD(7)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_exact_estimators_equal_brute_force(k):
    """advantage, tv_advantage and kl with estimator="exact" against sums over all 2^6 strings written in
    tests/references.py: prefix marginals of p̄ and q̄ by summing whole-string probabilities, then
    a = (1/m) Σ_i Σ_{x<i} p̄(x<i) Σ_w (p(w|x<i) − q(w|x<i)) d(x<i, w), TV likewise, KL = Σ p̄ log p̄/q̄."""
    for p, q, d in brute_force_cases():
        a = advantage(d, p, q, k, estimator="exact").value
        assert abs(a - ref.advantage_exact(p, q, d, k, 2, 6)) < 1e-12
        assert abs(tv_advantage(p, q, k, estimator="exact").value - ref.tv_exact(p, q, k, 2, 6)) < 1e-12
        assert abs(kl(p, q, estimator="exact").value - ref.kl_exact(p, q, 2, 6)) < 1e-12


def test_brute_force_tv_is_the_ceiling_and_zero_for_equal_models():
    """Properties of the references themselves: the optimal distinguisher reaches the TV value and two
    objects with the same distribution (an HMM and a copy with permuted hidden states) give 0."""
    p, q, _ = next(pairs())
    for k in (1, 2):
        assert (
            abs(ref.advantage_exact(p, q, OptimalDistinguisher(p, q, k), k, 2, 6) - ref.tv_exact(p, q, k, 2, 6)) < 1e-12
        )
    perm = [1, 0]
    twin = HMM(p.start_p[perm], p.trans[perm][:, perm], p.emit[perm], p.length)
    assert abs(ref.tv_exact(p, twin, 2, 2, 6)) < 1e-12 and abs(ref.kl_exact(p, twin, 2, 6)) < 1e-12
    assert abs(advantage(RandomD(0), p, twin, 2, estimator="exact").value) < 1e-12
    assert (
        abs(tv_advantage(p, twin, 2, estimator="exact").value) < 1e-12
        and abs(kl(p, twin, estimator="exact").value) < 1e-12
    )


def test_learned_distinguisher_finds_planted_parity_flaw():
    """q models every bit as a fair coin: right on every bit except the block ends. A window that holds a
    block end reveals the flaw; the learned, checker and TV advantages agree in sign and order."""
    k = 4
    p = Parity(block=4, length=12)
    q = NGram(1, 2).fit(p.sample(2000, generator=0))  # unigram: ≈ fair coins
    d = LearnedDistinguisher(2, hidden=16, steps=300, seed=0).fit(p, q, k, num_docs=2048)
    learned = advantage(d, p, q, k, num_docs=400, estimator="rao_blackwell", seed=99)
    checker = advantage(p.checks["parity"], p, q, k, num_docs=400, estimator="rao_blackwell", seed=99)
    tv = tv_advantage(p, q, k, num_docs=400, seed=99)
    assert learned.low > 0.1 and checker.low > 0.1
    assert learned.value <= tv.high and checker.value <= tv.high


def test_bad_input():
    p = Dyck(1, 2, 6)
    with pytest.raises(InputError, match="between 1 and the document length"):
        advantage(p.checks["valid"], p, p, 7)
    with pytest.raises(ValueError, match="unknown estimator"):
        advantage(p.checks["valid"], p, p, 2, estimator="magic")
    with pytest.raises(TooLargeError, match="items"):
        tv_advantage(Dyck(4, 2, 30), Dyck(4, 2, 30), 8)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_paired_path_equals_a_plain_loop_with_the_same_draws(k):
    """The cached, branched, one-call paired estimator against a plain loop: every (start, document) row's
    conditionals from q's teacher-forced log_probs on the row's own string (no cached states), its window
    drawn from them with the same generator in the same order (k draws over all rows, start-major), and d
    called on each row alone. Same seed → the same number."""
    p, q, d, n, num = Dyck(1, 2, 6), HMM.random(3, 2, 6, seed=5, stay=0.6), RandomD(3), 6, 7
    got = advantage(d, p, q, k, num_docs=num, estimator="paired", seed=11)
    g = torch.Generator().manual_seed(11)
    x = p.sample(num, generator=g)
    m = n - k + 1
    rows = [(i, b) for i in range(m) for b in range(num)]  # start-major, documents in order
    windows = [[] for _ in rows]
    for _ in range(k):
        strings = [
            torch.cat([x[b, :i], torch.tensor(windows[r], dtype=torch.long), torch.zeros(1, dtype=torch.long)])
            for r, (i, b) in enumerate(rows)
        ]
        probs = torch.stack([q.log_probs(s[None])[0, -1].double().exp() for s in strings])
        for r, tok in enumerate(torch.multinomial(probs, 1, generator=g)[:, 0].tolist()):
            windows[r].append(tok)
    per = torch.zeros(num, m, dtype=torch.float64)
    for r, (i, b) in enumerate(rows):
        fake = x[b].clone()
        fake[i : i + k] = torch.tensor(windows[r])
        per[b, i] = float(d(x[b][None], i, k)[0]) - float(d(fake[None], i, k)[0])
    want = per.mean(1)
    assert got.n == num and abs(got.value - want.mean().item()) < 1e-12
    assert abs(got.stderr - (want.std() / math.sqrt(num)).item()) < 1e-12


def test_one_document_is_refused_before_an_interval_of_nan():
    p, q, d = next(pairs())
    for est in ("paired", "rao_blackwell"):
        with pytest.raises(InputError, match="num_docs=1.*at least 2"):
            advantage(d, p, q, 2, num_docs=1, estimator=est)
    with pytest.raises(InputError, match="num_docs=1"):
        tv_advantage(p, q, 2, num_docs=1)
    e = advantage(d, p, q, 2, num_docs=2, estimator="paired")
    assert math.isfinite(e.low) and math.isfinite(e.high)


def test_checker_refuses_windows_outside_the_string():
    p = Dyck(1, 2, 6)
    x = p.sample(3, generator=0)
    valid = p.checks["valid"]
    with pytest.raises(InputError, match="start must be ≥ 0, got -1"):
        valid(x, -1, 2)
    with pytest.raises(InputError, match="start must be ≥ 0, got -2"):
        valid(x, torch.tensor([0, -2, 1]), 2)
    with pytest.raises(InputError, match="past the string length 6"):
        valid(x, 5, 2)
    assert valid(x, 4, 2).all()  # a sampled Dyck string is valid in every window


@pytest.mark.parametrize("n,k", [(11, 4), (10, 2), (20, 3), (10, 7), (9, 9), (6, 1), (6, 4)])
def test_bounds_formulas(n, k):
    """Expected values by plain arithmetic: m = n − k + 1 and blocks = max(1, m // k) (docs/theory.md §3–5)."""
    m = n - k + 1
    blocks = max(1, m // k)
    for kl_value in (0.0, 0.3, 2.0):
        assert math.isclose(bounds.theorem3(kl_value, k, n), math.sqrt(k * kl_value / (2 * m)))
    assert bounds.theorem3(-0.1, k, n) == 0.0  # a negative KL estimate is clipped
    assert math.isclose(bounds.lemma1_guarantee(0.2, k, n), blocks * 0.2**2 / 4)
    assert bounds.lemma1_guarantee(0.2, k, n) > 0
    assert math.isclose(bounds.search_delta(0.1, k, n), blocks * 0.1**2 / (4 * n))
    for v in (2, 4, 13):
        assert bounds.search_max_start(0.1, k, n, v) == math.ceil(10 * math.log(v) / (blocks * 0.1**2 / (4 * n)))


def test_bounds_worked_numbers():
    """Hand-computed: n = 11, k = 4: m = 8, ⌊8/4⌋ = 2; n = 10, k = 7: m = 4, ⌊4/7⌋ = 0 → 1 block."""
    assert math.isclose(bounds.theorem3(2.0, 4, 11), 0.5**0.5)  # sqrt(4·2 / (2·8))
    assert math.isclose(bounds.lemma1_guarantee(0.2, 4, 11), 0.02)  # 2 · 0.04 / 4
    assert math.isclose(bounds.lemma1_guarantee(0.2, 7, 10), 0.01)  # 1 · 0.04 / 4, not 0
    assert math.isclose(bounds.search_delta(0.1, 7, 10), 0.00025)  # 1 · 0.01 / 40
    assert bounds.search_max_start(0.1, 7, 10, 4) == 55452  # ⌈10 · ln 4 / 0.00025⌉ = ⌈55451.77⌉


def test_estimates_serialise_to_strict_json():
    import json

    from nextk.stats import Estimate, mean_estimate

    single = mean_estimate(torch.tensor([1.0]), "one sample")  # stderr undefined
    json.dumps(single.to_dict(), allow_nan=False)
    assert single.to_dict()["stderr"] is None
    mapped = Estimate(4.0, 1.0, 2.0, 6.0, 10, "x").map(math.sqrt)
    assert mapped.low == math.sqrt(2.0) and mapped.stderr > 0
    json.dumps(mapped.to_dict(), allow_nan=False)


def test_models_with_other_token_names_are_refused_by_name():
    """Two sources of the same vocabulary size whose tokens are different characters: KL, the TV ceiling and
    an advantage across them would compare unrelated ids (today's 0.0 is a silent wrong answer)."""
    from nextk.models import GRU
    from nextk.sources import Regex

    a, b = Regex("[ab]*", length=4), Regex("[cd]*", length=4)
    for f in (
        lambda: kl(a, b, estimator="exact"),
        lambda: tv_advantage(a, b, k=1, num_docs=50),
        lambda: advantage(a.checks["valid"], a, b, k=1, num_docs=50),
    ):
        with pytest.raises(InputError, match=r"token names differ.*'a' in p but 'c' in q"):
            f()
    assert kl(a, Regex("[ab]*a*", length=4), estimator="exact").value == 0.0  # the same names are accepted
    assert kl(a, GRU(2, hidden=2), num_docs=20).value > 0  # a network names no tokens: compared by size
