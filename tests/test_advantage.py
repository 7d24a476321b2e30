"""Advantage estimators, Theorem 3, the optimal and learned distinguishers (issue 3)."""

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


def test_zero_advantage_against_p_itself():
    p = Dyck(1, 3, 8)
    for d in (p.checks["valid"], RandomD(0), OptimalDistinguisher(p, p, 3)):
        assert advantage(d, p, p, 3, estimator="exact").value == 0.0
        assert abs(advantage(d, p, p, 3, estimator="rao_blackwell", num_docs=100).value) < 1e-12
        e = advantage(d, p, p, 3, estimator="paired", num_docs=500)
        assert e.low <= 0 <= e.high
    assert tv_advantage(p, p, 3, estimator="exact").value == 0.0


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


def test_bounds_formulas():
    assert math.isclose(bounds.theorem3(2.0, 4, 11), math.sqrt(4 * 2.0 / (2 * 8)))
    assert math.isclose(bounds.lemma1_guarantee(0.2, 4, 11), (8 // 4) * 0.2**2 / 4)
    assert math.isclose(bounds.search_delta(0.1, 2, 10), (9 // 2) * 0.01 / 40)
    assert bounds.search_max_start(0.1, 2, 10, 4) == math.ceil(10 * math.log(4) / bounds.search_delta(0.1, 2, 10))


def test_estimates_serialise_to_strict_json():
    import json

    from nextk.stats import Estimate, mean_estimate

    single = mean_estimate(torch.tensor([1.0]), "one sample")  # stderr undefined
    json.dumps(single.to_dict(), allow_nan=False)
    assert single.to_dict()["stderr"] is None
    mapped = Estimate(4.0, 1.0, 2.0, 6.0, 10, "x").map(math.sqrt)
    assert mapped.low == math.sqrt(2.0) and mapped.stderr > 0
    json.dumps(mapped.to_dict(), allow_nan=False)
