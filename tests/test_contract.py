"""The State contract (nextk/lm.py), checked over every LanguageModel the package can build.

Per model: rows concatenated from states at different positions step exactly as they do alone (row
results never depend on what else is in the batch); stepping along a string equals `log_probs`;
`log_prob` is the chain-rule sum of the gathered conditionals; conditionals sum to 1; for tiny V and n
the whole-string probabilities sum to 1; same seed, same samples. Then `advantage` (paired and
Rao–Blackwellised) and `tv_advantage` run on each one and agree with the exact enumeration.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nextk.advantage import advantage, tv_advantage
from nextk.barrier.hidden import HiddenStream, SeedPrefix
from nextk.boost import boost
from nextk.lm import LanguageModel, State, log_probs_by_steps
from nextk.measure import all_strings
from nextk.models import GRU, LSTM, NGram, PaperRNN, Transformer
from nextk.quantize import quantize
from nextk.sources import HMM, Addition, Dyck, Factorization, Parity, Primes, RandomNumber, Regex
from nextk.sources.pcfg import PCFG
from nextk.sources.pfsa import PFSA
from tests import hf_tools
from tests.test_advantage import RandomD
from tests.test_pfsa import NONDET as PFSA_NONDET

N = 6  # document length of the truth the networks are paired with
TRUTH = HMM.random(2, 3, N, seed=4, stay=0.7)  # V = 3
FLOAT32, FLOAT64 = 2e-5, 1e-12  # agreement expected of float32 networks and of float64 sources


def net(make):
    return lambda: (make(), TRUTH, FLOAT32)


def source(make, tol=FLOAT64):
    return lambda: (make(), None, tol)


def boosted(make_q, k, offset, eta, d_seed, tol=FLOAT32):
    def build():
        return boost(make_q(), RandomD(d_seed), k, offset=offset, eta=eta, length=N), TRUTH, tol

    return build


SUITE = {
    "hmm": source(lambda: HMM.random(3, 3, 5, seed=1)),
    "dyck": source(lambda: Dyck(n_types=2, max_depth=2, length=6)),
    "addition": source(lambda: Addition(digits=1)),
    "factorization": source(lambda: Factorization(digits=1)),
    "factorization_ff": source(lambda: Factorization(digits=1, order="factors_first")),
    "primes": source(lambda: Primes(digits=2)),
    "random_number": source(lambda: RandomNumber(digits=3)),
    "parity": source(lambda: Parity(block=3, length=7)),
    "regex": source(lambda: Regex("(ab|c)*d", length=7)),
    "pfsa": source(lambda: PFSA.random(4, 3, rank=2, seed=1, length=6)),
    "pfsa_nondeterministic": source(lambda: PFSA(length=5, **PFSA_NONDET)),
    "pcfg_ambiguous": source(lambda: PCFG("S -> S S [0.3] | 'a' [0.5] | 'b' [0.2] | 'c' [0.0]", length=5)),
    "pcfg_nested": source(lambda: PCFG("S -> 'a' S 'b' [0.4] | 'a' 'b' [0.3] | 'c' [0.3]", length=6)),
    "regex_weighted": source(lambda: Regex("[ab]{2,3}c*", length=5).with_weights({"c": 0.3})),
    "hidden_stream": source(lambda: HiddenStream(1)),
    "seed_prefix": source(lambda: SeedPrefix(1, 6)),
    "gru": net(lambda: GRU(3, 8, layers=2, seed=1)),
    "lstm": net(lambda: LSTM(3, 8, seed=1)),
    "transformer": net(lambda: Transformer(3, d_model=16, layers=2, heads=2, max_len=N, seed=1)),
    "ngram": lambda: (NGram(3, 3).fit(TRUTH.sample(200, generator=0)), TRUTH, FLOAT64),
    "paper_rnn": net(lambda: PaperRNN(3, size=14, hidden=5, steps_per_token=2, seed=1)),
    "quantized_paper_rnn": net(lambda: quantize(PaperRNN(3, 14, 5, 2, seed=1), 2, 6)),
    "quantized_gru": net(lambda: quantize(GRU(3, 8, seed=1), 2, 6)),
    "quantized_lstm": net(lambda: quantize(LSTM(3, 8, seed=1), 2, 6)),
    "boosted_gru": boosted(lambda: GRU(3, 8, seed=2), k=2, offset=1, eta=1.3, d_seed=5),
    "boosted_transformer": boosted(
        lambda: Transformer(3, 16, 1, 2, max_len=N, seed=2), k=3, offset=0, eta=-0.8, d_seed=6
    ),
    "boosted_hmm": boosted(lambda: HMM.random(2, 3, N, seed=9), k=2, offset=0, eta=2.0, d_seed=7, tol=FLOAT64),
    "hf_gpt2": lambda: hf_tools.contract_case("gpt2"),  # skipped without transformers (the hf extra)
    "hf_llama": lambda: hf_tools.contract_case("llama"),
    "boosted_boosted_gru": lambda: (
        boost(
            boost(GRU(3, 8, seed=3), RandomD(8), 2, offset=0, eta=0.9, length=N),
            RandomD(9),
            3,
            offset=1,
            eta=1.5,
            length=N,
        ),
        TRUTH,
        FLOAT32,
    ),
}


@pytest.fixture(params=sorted(SUITE))
def case(request):
    model, truth, tol = SUITE[request.param]()
    truth = truth or model  # a source is checked against itself
    return model, truth, tol


def strings_of(model, truth, num: int = 6, seed: int = 0) -> torch.Tensor:
    """Documents with positive probability under the model: its own samples."""
    return model.sample(num, truth.length, generator=seed)


def alone(model, x: torch.Tensor, t: int) -> State:
    """The state of one row after reading x[:t], stepped on its own."""
    state = model.start(1)
    for j in range(t):
        state, _ = model.step(state, x[j : j + 1])
    return state


def test_declares_the_protocol(case):
    model, truth, _ = case
    assert isinstance(model, LanguageModel)
    assert isinstance(model.exact, bool) and model.exact
    assert model.length is None or model.length == truth.length


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_rows_at_different_positions_step_as_alone(case, data):
    model, truth, tol = case
    n = truth.length
    x = strings_of(model, truth, num=4, seed=data.draw(st.integers(0, 3)))
    positions = data.draw(st.lists(st.integers(0, n - 2), min_size=2, max_size=6))
    rows = [i % len(x) for i in range(len(positions))]
    solo = [alone(model, x[r], t) for r, t in zip(rows, positions)]
    mixed = State.cat(solo)
    order = torch.randperm(len(solo), generator=torch.Generator().manual_seed(len(positions)))
    mixed = mixed[order]  # indexing keeps rows independent too
    tokens = torch.stack([x[rows[i], positions[i]] for i in order.tolist()])
    _, lp_mixed = model.step(mixed, tokens)
    full = model.log_probs(x)  # (B, n, V)
    for j, i in enumerate(order.tolist()):
        _, lp_alone = model.step(solo[i], tokens[j : j + 1])
        assert torch.allclose(lp_mixed[j], lp_alone[0], atol=tol, rtol=0), (positions[i], j)
        assert torch.allclose(lp_mixed[j], full[rows[i], positions[i] + 1], atol=tol, rtol=0)
    # repeat branches copies that stay independent of the rest of the batch
    rep = mixed.repeat(2)
    _, lp_rep = model.step(rep, tokens.repeat_interleave(2))
    assert torch.allclose(lp_rep[::2], lp_mixed, atol=tol, rtol=0) and torch.allclose(lp_rep[1::2], lp_mixed, atol=tol)


def test_step_along_a_string_equals_log_probs(case):
    model, truth, tol = case
    x = strings_of(model, truth)
    assert torch.allclose(log_probs_by_steps(model, x), model.log_probs(x), atol=tol, rtol=0)


def test_conditionals_normalised_and_chain_rule(case):
    """Identities (not references): rows sum to 1 and log_prob is the sum of gathered conditionals."""
    model, truth, tol = case
    x = strings_of(model, truth)
    lp = model.log_probs(x)
    assert lp.dtype == torch.float64 and lp.shape == (len(x), truth.length, model.vocab_size)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(lp.shape[:2], dtype=torch.float64), atol=1e-12)
    chain = lp.gather(-1, x.unsqueeze(-1)).squeeze(-1).sum(1)
    assert torch.allclose(model.log_prob(x).double(), chain, atol=max(tol, 1e-12) * truth.length, rtol=0)


def test_all_strings_sum_to_one(case):
    model, truth, _ = case
    v, n = model.vocab_size, truth.length
    if v**n > 5000:
        pytest.skip(f"{v}^{n} strings: the source batteries check normalisation over the support instead")
    total = model.log_prob(all_strings(v, n)).double().exp().sum().item()
    assert abs(total - 1) < 1e-6  # float32 networks: each conditional normalised in float64


def test_same_seed_same_samples(case):
    model, truth, _ = case
    a = model.sample(20, truth.length, generator=torch.Generator().manual_seed(7))
    b = model.sample(20, truth.length, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and a.shape == (20, truth.length)


def test_advantage_and_tv_work_and_agree_with_exact(case):
    """Every model as q against its truth p: the paired and Rao–Blackwellised estimates cover the exact
    advantage (4 standard errors; fixed seeds), and the TV estimate covers the exact TV."""
    model, truth, _ = case
    if truth is model:  # a source: against a (smoothed) bigram fitted to it, so q ≠ p
        truth, model = model, NGram(2, model.vocab_size, smoothing=1.0).fit(model.sample(50, generator=1))
    k = 2
    d = RandomD(11)
    exact = advantage(d, truth, model, k, estimator="exact").value
    for est in ("paired", "rao_blackwell"):
        a = advantage(d, truth, model, k, num_docs=150, estimator=est, seed=1)
        assert abs(a.value - exact) <= 4 * a.stderr + 1e-9, (est, a, exact)
    tv = tv_advantage(truth, model, k, num_docs=150, seed=2)
    tv_exact = tv_advantage(truth, model, k, estimator="exact").value
    assert abs(tv.value - tv_exact) <= 4 * tv.stderr + 1e-9 and tv_exact >= abs(exact) - 1e-9
