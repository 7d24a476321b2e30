"""Boosting (Lemmas 1–2): exact identities on tiny cases, trie vs naive, rejection sampling."""

import numpy as np
import pytest
import torch

from nextk.advantage import advantage
from nextk.boost import boost, distill
from nextk.errors import InputError, TooLargeError
from nextk.lm import log_probs_by_steps
from nextk.measure import all_strings, kl
from nextk.models import GRU
from nextk.sources import HMM, Dyck
from tests import references as ref
from tests.test_advantage import RandomD

P = HMM.random(2, 2, 6, seed=0, stay=0.8)
Q = HMM.random(3, 2, 6, seed=7, stay=0.5)  # float64 q, so identities hold to 1e-9
ALL = all_strings(2, 6)


@pytest.mark.parametrize("k,offset,eta", [(2, 0, 0.7), (2, 1, -0.4), (3, 2, 1.9), (3, 0, 6.0), (1, 0, 0.5)])
def test_exact_identities(k, offset, eta):
    d = RandomD(k)
    b = boost(Q, d, k, offset=offset, eta=eta, length=6)
    lp = b.log_probs(ALL)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(lp.shape[:2], dtype=torch.float64), atol=1e-12)
    total = b.log_prob(ALL)
    assert abs(total.exp().sum().item() - 1) < 1e-12
    assert torch.allclose(total, lp.gather(-1, ALL[..., None]).squeeze(-1).sum(1), atol=1e-12)
    assert torch.allclose(lp, log_probs_by_steps(b, ALL), atol=1e-12)
    truth = ref.boosted_probs(Q, d, k, offset, eta, 2, 6)  # eq. 1.3 by brute-force enumeration
    assert max(abs(total.exp()[i].item() - truth[tuple(x)]) for i, x in enumerate(ALL.tolist())) < 1e-12
    for i in range(0, 64, 5):
        want = ref.conditionals(truth, tuple(ALL[i].tolist()), 2)
        assert np.allclose(lp[i].exp().numpy(), want, atol=1e-12, equal_nan=False)
    drop = kl(P, Q, estimator="exact").value - kl(P, b, estimator="exact").value
    assert abs(drop - ref.gain(P, Q, d, k, offset, eta, 2, 6)) < 1e-9


def exact_alpha(d, k, blocks):
    """α_r: the exact advantage averaged over the starts of offset r's blocks (brute force)."""
    return sum(ref.advantage_at(P, Q, d, k, s, 2, 6) for s in blocks) / len(blocks)


@pytest.mark.parametrize("k", [2, 3])
def test_lemma1_guarantee_and_search(k):
    d = RandomD(10 + k)
    m = P.length - k + 1
    best_guarantee = 0.0
    for r in range(k):
        blocks = list(range(r, m, k))
        alpha = exact_alpha(d, k, blocks)
        guarantee = len(blocks) * alpha**2 / 4
        assert ref.gain(P, Q, d, k, r, alpha / 2, 2, 6) >= guarantee - 1e-12
        best_guarantee = max(best_guarantee, guarantee)
    a = advantage(d, P, Q, k, estimator="exact").value
    assert best_guarantee >= (m // k) * a**2 / 4 - 1e-12  # some α_r ≥ a
    auto = boost(Q, d, k, p=P, num_docs=2000, seed=0)
    assert ref.gain(P, Q, d, k, auto.offset, auto.eta, 2, 6) >= best_guarantee - 1e-3
    rep = auto.search_
    assert rep["offset"] == auto.offset and len(rep["offsets"]) == k
    for o in rep["offsets"]:
        assert {"alpha", "eta", "gain", "lemma1_guarantee", "gain_at_half_alpha"} <= set(o)


def test_boosting_p_itself_chooses_eta_zero():
    for seed in range(3):
        b = boost(P, RandomD(seed), 2, p=P, num_docs=2000, seed=seed)
        assert abs(b.eta) < 0.25, b.eta
        assert abs(b.search_["gain"]["value"]) < 0.01


def test_rejection_samples_match_exact_probabilities():
    from scipy.stats import chisquare

    d = RandomD(3)
    b = boost(Q, d, 2, offset=1, eta=1.2, length=6)
    x = b.sample(20000, generator=0, method="rejection")
    assert 0.3 < b.acceptance_ <= 1.0
    idx = (x * (2 ** torch.arange(5, -1, -1))).sum(1)
    counts = torch.bincount(idx, minlength=64).double()
    expected = b.log_prob(ALL).exp() * len(x)
    assert chisquare(counts.numpy(), expected.numpy()).pvalue > 1e-4
    trie = b.sample(3000, generator=1, method="trie")
    tidx = (trie * (2 ** torch.arange(5, -1, -1))).sum(1)
    assert chisquare(torch.bincount(tidx, minlength=64).numpy(), (b.log_prob(ALL).exp() * 3000).numpy()).pvalue > 1e-4


def test_boosting_with_checker_raises_pass_rate():
    p = Dyck(1, 3, 8)
    q = GRU(2, 4, seed=1)
    check = p.checks["valid"]
    b = boost(q, check, 4, p=p, num_docs=200)
    before = check(q.sample(2000, 8, generator=0), 0, 8).double().mean()
    after = check(b.sample(2000, generator=0), 0, 8).double().mean()
    assert after > before + 0.1
    assert b.search_["gain"]["low"] > 0


def test_composition():
    b1 = boost(Q, RandomD(1), 2, offset=0, eta=0.8, length=6)
    b2 = boost(b1, RandomD(2), 3, offset=1, eta=-0.6, length=6)
    lp = b2.log_probs(ALL)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(lp.shape[:2], dtype=torch.float64), atol=1e-12)
    assert abs(b2.log_prob(ALL).exp().sum().item() - 1) < 1e-12
    drop = kl(P, b1, estimator="exact").value - kl(P, b2, estimator="exact").value
    assert abs(drop - ref.gain(P, b1, RandomD(2), 3, 1, -0.6, 2, 6)) < 1e-9


def test_monte_carlo_log_prob_matches_exact():
    b = boost(Q, RandomD(4), 3, offset=0, eta=1.5, length=6)
    x = P.sample(20, generator=0)
    est, se = b.log_prob_mc(x, num_windows=4000, seed=1)
    z = (est - b.log_prob(x)).abs() / se.clamp_min(1e-12)
    assert (z < 4).all() and (se > 0).all()


def test_guards():
    big = HMM.random(2, 16, 12, seed=0)
    b = boost(big, RandomD(0), 6, offset=0, eta=1.0, length=12)
    with pytest.raises(TooLargeError, match="16\\^6"):
        b.log_probs(big.sample(2, generator=0))
    est, se = b.log_prob_mc(big.sample(2, generator=0), num_windows=64)  # the Monte-Carlo path still works
    assert torch.isfinite(est).all()
    auto = boost(big, RandomD(0), 6, p=big, num_docs=8, seed=0)  # (r, η) chosen with sampled E_q d
    assert "sampled windows" in auto.search_["beta_method"]
    with pytest.raises(InputError, match="pass p="):
        boost(Q, RandomD(0), 2, length=6)
    with pytest.raises(InputError, match="offset"):
        boost(Q, RandomD(0), 2, offset=5, eta=1.0, length=6)


def test_distill_moves_a_fresh_network_towards_the_boosted_model():
    b = boost(Q, RandomD(5), 2, offset=0, eta=2.0, length=6)
    net = GRU(2, 16, seed=0)
    before = kl(b, net, estimator="exact").value
    distill(b, net, num_docs=4000, steps=150, lr=1e-2, progress=False)
    assert kl(b, net, estimator="exact").value < 0.5 * before
