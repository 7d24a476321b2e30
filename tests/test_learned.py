"""The learned distinguisher: reaches the TV ceiling against a visibly wrong q, reads only the prefix and
the window, calibrates its threshold, and works at a 50,000-token vocabulary."""

import itertools
import math

import numpy as np
import pytest
import torch

from nextk.advantage import advantage, tv_advantage
from nextk.distinguishers.learned import LearnedDistinguisher, best_threshold
from nextk.errors import InputError
from nextk.sources import HMM, Dyck


def uniform(vocab_size: int, length: int) -> HMM:
    """The uniform LM: one hidden state emitting every token with probability 1/V."""
    return HMM(np.ones(1), np.ones((1, 1)), np.full((1, vocab_size), 1.0 / vocab_size), length)


def test_against_a_uniform_q_the_learned_advantage_nearly_reaches_tv():
    p, k = Dyck(1, 3, 10), 4
    q = uniform(2, 10)
    d = LearnedDistinguisher(2, hidden=16, steps=250, seed=0).fit(p, q, k, num_docs=512, seed=1)
    got = advantage(d, p, q, k, num_docs=150, estimator="rao_blackwell", seed=2)  # other documents
    tv = tv_advantage(p, q, k, num_docs=150, seed=3)
    assert tv.value > 0.4  # visibly wrong: the ceiling is far from 0
    assert got.value >= 0.9 * tv.value, (got, tv)
    assert got.low <= tv.high + 1e-9  # and never above the ceiling beyond noise
    assert set(d.summary()) >= {"train_accuracy", "threshold", "calibration_advantage", "fit_docs", "fit_pairs"}
    assert 0.5 < d.train_accuracy_ <= 1 and d.fit_docs_ == 512 and math.isfinite(d.threshold_)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_threshold_maximises_the_empirical_advantage(seed):
    """best_threshold against a brute force over every threshold between the sorted scores (ties kept)."""
    g = torch.Generator().manual_seed(seed)
    f_true = torch.randint(0, 12, (40,), generator=g).double() / 3 + 0.3
    f_fake = torch.randint(0, 12, (55,), generator=g).double() / 3
    tau = best_threshold(f_true, f_fake)
    adv = lambda t: (f_true > t).double().mean().item() - (f_fake > t).double().mean().item()  # noqa: E731
    cands = sorted(set(torch.cat([f_true, f_fake]).tolist()))
    best = max(adv(t) for t in [cands[0] - 1] + cands)  # 1[f > t] for t at or below every score
    assert abs(adv(tau) - max(best, 0.0)) < 1e-12
    assert best_threshold(torch.zeros(5), torch.ones(5)) == math.inf  # nothing beats d ≡ 0


def test_reads_only_prefix_and_window_and_shares_prefix_summaries():
    p = Dyck(1, 3, 10)
    d = LearnedDistinguisher(2, hidden=8, steps=5, seed=0).fit(p, uniform(2, 10), 3, num_docs=16)
    x = p.sample(6, generator=0)
    starts = torch.tensor([0, 1, 2, 3, 4, 7])
    changed = x.clone()
    for b, s in enumerate(starts.tolist()):
        changed[b, s + 3 :] = 1 - changed[b, s + 3 :]  # flip everything after the window
    assert torch.equal(d.score(x, starts, 3), d.score(changed, starts, 3))
    batch = torch.cat([x, x, changed])  # repeated prefixes share one summary: same scores as row by row
    rows = torch.stack([d.score(r[None], s[None], 3)[0] for r, s in zip(batch, starts.repeat(3))])
    assert torch.allclose(d.score(batch, starts.repeat(3), 3), rows, atol=1e-6)
    windows = x.gather(1, starts.unsqueeze(1) + torch.arange(3))  # the training path: whole-window reader
    with torch.no_grad():
        direct = d.score_windows(d.summarise(x, starts), windows, starts)
    assert torch.allclose(d.score(x, starts, 3), direct, atol=1e-5)
    out = d(x, starts, 3)
    assert out.dtype == torch.bool and out.shape == (6,)
    assert torch.equal(out, d(x, starts, 3))  # deterministic


def test_large_vocabulary_embedding_not_one_hot():
    """V = 50,000: the table is (V + 1) × hidden (one row per token and BOS); nothing else grows with V."""
    small, big = LearnedDistinguisher(2, hidden=8), LearnedDistinguisher(50_000, hidden=8)
    count = lambda m: sum(t.numel() for t in m.parameters())  # noqa: E731
    assert count(big) - count(small) == (50_000 - 2) * 8
    assert big.embed.weight.shape == (50_001, 8)
    p = HMM.random(2, 50_000, 5, seed=0, concentration=0.01)
    big.steps = 10
    big.fit(p, uniform(50_000, 5), 2, num_docs=16)
    x = p.sample(4, generator=1)
    assert d_shape(big, x) == (4,)
    est = advantage(big, p, uniform(50_000, 5), 2, num_docs=8, estimator="paired", seed=3)
    assert math.isfinite(est.value)


def d_shape(d, x):
    return tuple(d(x, 1, 2).shape)


def test_bad_input_is_one_line():
    with pytest.raises(InputError, match="hidden"):
        LearnedDistinguisher(2, hidden=0)
    d = LearnedDistinguisher(2, hidden=4, steps=2)
    p = Dyck(1, 3, 8)
    with pytest.raises(InputError, match="vocabulary"):
        d.fit(p, uniform(3, 8), 2, num_docs=16)
    with pytest.raises(InputError, match="num_docs"):
        d.fit(p, uniform(2, 8), 2, num_docs=4)
    with pytest.raises(InputError, match="past the string length"):
        d(torch.zeros(2, 4, dtype=torch.long), 3, 2)
    with pytest.raises(InputError, match="outside the vocabulary"):
        d(torch.full((2, 4), 5), 0, 2)


def test_fitted_state_ends_in_underscore():
    d = LearnedDistinguisher(2, hidden=4, steps=3).fit(Dyck(1, 3, 8), uniform(2, 8), 2, num_docs=16)
    fitted = [name for name in vars(d) if name.endswith("_") and not name.startswith("_")]
    assert {"train_accuracy_", "threshold_", "pair_accuracy_", "calibration_advantage_", "best_step_"} <= set(fitted)
    assert list(itertools.islice(d.history_, 1))[0]["step"] == 3  # eval_every > steps: evaluated at the end


@pytest.mark.parametrize("a,sa,c,sc", [(0.2, 0.01, 0.24, 0.005), (0.05, 0.02, 0.1, 0.03), (-0.01, 0.01, 0.3, 0.01)])
def test_share_of_ceiling_is_fieller_interval(a, sa, c, sc):
    """The returned interval is exactly the set {ρ : |a − ρc| ≤ z·sqrt(sa² + ρ² sc²)}, checked on a grid."""
    from nextk.evaluation import share_of_ceiling
    from nextk.stats import Z95, Estimate

    got = share_of_ceiling(Estimate(a, sa, 0, 0, 100, "a"), Estimate(c, sc, 0, 0, 100, "c"))
    assert got.value == pytest.approx(a / c) and got.low <= got.value <= got.high
    inside = lambda r: abs(a - r * c) <= Z95 * math.sqrt(sa**2 + r**2 * sc**2)  # noqa: E731
    grid = np.linspace(got.low - 1, got.high + 1, 4001)
    for r in grid:
        if got.low + 1e-9 < r < got.high - 1e-9:
            assert inside(r)
        elif r < got.low - 1e-9 or r > got.high + 1e-9:
            assert not inside(r)
    wide = share_of_ceiling(Estimate(a, sa, 0, 0, 100, "a"), Estimate(0.01, 0.02, 0, 0, 100, "c"))
    assert wide.low == -math.inf and wide.high == math.inf  # a ceiling not clearly above 0: unbounded
