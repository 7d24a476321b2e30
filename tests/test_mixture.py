"""Mixture(sources, weights): exact conditionals against Σ_c w_c p̄_c(x) summed by hand over Σ^n."""

import json

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from nextk.errors import InputError
from nextk.measure import all_strings, kl
from nextk.sources import HMM, Mixture, Parity
from tests import references as ref

PARITY = Parity(block=3, length=6)
NOISE = HMM.random(2, 2, 6, seed=3, stay=0.6)
MIX = Mixture([PARITY, NOISE], [0.8, 0.2])
ALL = all_strings(2, 6)


def table():
    """p̄(x) = 0.8 p̄_parity(x) + 0.2 p̄_hmm(x) for every x, from each component's own log_prob."""
    probs = 0.8 * PARITY.log_prob(ALL).exp() + 0.2 * NOISE.log_prob(ALL).exp()
    return {tuple(x): float(pr) for x, pr in zip(ALL.tolist(), probs)}


def test_whole_documents_and_conditionals_match_the_weighted_sum():
    truth = table()
    got = MIX.log_prob(ALL).exp()
    assert max(abs(got[i].item() - truth[tuple(x)]) for i, x in enumerate(ALL.tolist())) < 1e-12
    lp = MIX.log_probs(ALL).exp()
    for i in range(0, 64, 3):
        want = ref.conditionals(truth, tuple(ALL[i].tolist()), 2)
        assert np.allclose(lp[i].numpy(), want, atol=1e-12)


def test_the_posterior_over_components_is_bayes_rule():
    x = torch.tensor([[1, 1, 0, 1, 0, 0]])  # parity-valid first block
    state = MIX.start(1)
    for t in range(4):
        state, _ = MIX.step(state, x[:, t])
    same = (ALL[:, :4] == x[:, :4]).all(1)  # prefix marginals of each component, by enumeration
    mass = [float(s.log_prob(ALL[same]).exp().sum()) for s in (PARITY, NOISE)]
    post = np.array([0.8 * mass[0], 0.2 * mass[1]])
    assert np.allclose(state.tensors["log_post"].exp()[0].numpy(), post / post.sum(), atol=1e-12)


def test_sampling_follows_the_exact_law():
    x = MIX.sample(20_000, generator=0)
    idx = (x * (2 ** torch.arange(5, -1, -1))).sum(1)
    counts = torch.bincount(idx, minlength=64).double()
    truth = table()
    expected = np.array([truth[tuple(y)] for y in ALL.tolist()]) * len(x)
    keep = expected > 0
    assert counts[~torch.from_numpy(keep)].sum() == 0
    assert chisquare(counts.numpy()[keep], expected[keep]).pvalue > 1e-3


def test_checks_are_those_every_component_shares():
    assert MIX.checks == {}  # the HMM does not keep parity
    twin = Mixture([Parity(3, 6), Parity(3, 6)], [0.5, 0.5])
    assert set(twin.checks) == {"parity"}
    assert Mixture([Parity(3, 6), Parity(2, 6)], [0.5, 0.5]).checks == {}  # different block: not one rule


def test_mismatches_are_refused_by_name_and_params_are_recorded():
    with pytest.raises(InputError, match="vocabulary"):
        Mixture([PARITY, HMM.random(2, 3, 6, seed=0)], [0.5, 0.5])
    with pytest.raises(InputError, match="length"):
        Mixture([PARITY, Parity(3, 9)], [0.5, 0.5])
    with pytest.raises(InputError, match="one weight per source"):
        Mixture([PARITY], [0.5, 0.5])
    with pytest.raises(InputError, match="non-negative"):
        Mixture([PARITY, NOISE], [-1, 2])
    params = MIX.params
    assert params["weights"] == [0.8, 0.2] and params["sources"][0] == {"source": "Parity", "params": PARITY.params}
    assert "Mixture(sources=[Parity(block=3, length=6)" in repr(MIX)
    assert json.loads(json.dumps(params)) == params  # results.json can hold it


def test_kl_to_a_component_is_exact():
    """KL(mixture ‖ its HMM component) by support enumeration equals the hand sum."""
    truth = table()
    lq = NOISE.log_prob(ALL)
    want = sum(pr * (np.log(pr) - lq[i].item()) for i, (x, pr) in enumerate(truth.items()) if pr > 0)
    assert kl(MIX, NOISE, estimator="exact").value == pytest.approx(want, abs=1e-10)


def test_a_support_check_is_a_rule_of_the_mixture_not_of_one_component():
    """repr(HMM) omits its parameters, so the old rule (equal reprs of fields) shared component 0's support
    check: it called [2, 2, 2, 2] impossible although the mixture gives it 0.01 · 0.4⁴ (and boost then
    'proved' η = +∞). The check now agrees with the hand-computed mixture probability on every window."""
    import itertools

    def iid(probs):
        return HMM([1.0], [[1.0]], [probs], length=4)

    for second, weights in (([0.3, 0.3, 0.4], [0.99, 0.01]), ([0.5, 0.5, 0.0], [0.5, 0.5])):
        first = [0.9, 0.1, 0.0]
        mix = Mixture([iid(first), iid(second)], weights)
        d = mix.checks["support"]
        for x in itertools.product(range(3), repeat=4):
            pr = sum(w * float(np.prod([c[t] for t in x])) for w, c in zip(weights, (first, second)))
            assert bool(d(torch.tensor([x]), 0, 4)[0]) == (pr > 0), (x, pr)
    assert mix.checks["support"] is not mix.sources[0].checks["support"]
