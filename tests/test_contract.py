"""The State contract (nextk/lm.py), checked over every LanguageModel the package can build.

Per model: rows concatenated from states at different positions step exactly as they do alone (row
results never depend on what else is in the batch); stepping along a string equals `log_probs`;
`log_prob` is the chain-rule sum of the gathered conditionals; conditionals sum to 1; for tiny V and n
the whole-string probabilities sum to 1; same seed, same samples. Then `advantage` (paired and
Rao–Blackwellised) and `tv_advantage` run on each one and agree with the exact enumeration.

A source's `log_probs` is its steps, so for the sources the step and chain-rule cases are identities; each
source's conditionals and whole-string probabilities are instead compared with p̄ written from its definition
(tests/references.py). Every distinguisher nextk ships is checked to read nothing after its window
(Definition 2), on every source.
"""

from __future__ import annotations

import numpy as np
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
from nextk.sources import HMM, Addition, Dyck, Factorization, Mixture, Parity, Primes, RandomNumber, Regex
from nextk.sources.pcfg import PCFG
from nextk.sources.pfsa import PFSA
from tests import hf_tools, references, test_pcfg, test_pfsa, test_regex
from tests.test_advantage import RandomD
from tests.test_pfsa import NONDET as PFSA_NONDET

N = 6  # document length of the truth the networks are paired with
TRUTH = HMM.random(2, 3, N, seed=4, stay=0.7)  # V = 3
FLOAT32, FLOAT64 = 2e-5, 1e-12  # agreement expected of float32 networks, of float64 sources and quantised runs


def net(make, tol=FLOAT32):
    return lambda: (make(), TRUTH, tol)


def source(make, tol=FLOAT64):
    return lambda: (make(), None, tol)


def hmm_reference(src) -> dict:
    return references.hmm_probs(src.start_p.tolist(), src.trans.tolist(), src.emit.tolist(), src.length)


def by_characters(probs: dict[str, float], vocab) -> dict[tuple[int, ...], float]:
    """{string: p} of an enumeration over characters (re.fullmatch, derivations) as token tuples, support only."""
    return {tuple(list(vocab).index(c) for c in text): p for text, p in probs.items() if p > 0}


def pfsa_reference(src) -> dict:
    """p̄ of a PFSA by the plain-Python forward of tests/test_pfsa.py over every string (its matrices as input)."""
    init, trans = src.initial.tolist(), src.transitions.tolist()
    probs = {x: test_pfsa.forward_prob(init, trans, x) for x in references.strings(src.vocab_size, src.length)}
    return {x: p for x, p in probs.items() if p > 0}


def mixture_reference() -> dict:
    """0.7·Parity(3, 7) + 0.3·HMM.random(2, 2, 7, seed=3), each component's p̄ from its own reference."""
    hmm = HMM.random(2, 2, 7, seed=3)
    parts = [(0.7, references.parity_probs(3, 7)), (0.3, hmm_reference(hmm))]
    out: dict = {}
    for w, probs in parts:
        for x, p in probs.items():
            out[x] = out.get(x, 0.0) + w * p
    return out


# p̄ of every source case written from its definition in tests/references.py (plain Python, sympy for primes)
REFERENCES = {
    "hmm": hmm_reference,
    "dyck": lambda src: references.dyck_probs(2, 2, 6),
    "addition": lambda src: references.addition_probs(1),
    "factorization": lambda src: references.factorization_probs(1),
    "factorization_ff": lambda src: references.factorization_probs(1, "factors_first"),
    "primes": lambda src: references.primes_probs(2),
    "random_number": lambda src: references.random_number_probs(3),
    "parity": lambda src: references.parity_probs(3, 7),
    "mixture": lambda src: mixture_reference(),
    "regex": lambda src: by_characters(test_regex.brute("(ab|c)*d", "".join(src.vocab), 7), src.vocab),
    "regex_weighted": lambda src: by_characters(
        test_regex.brute("[ab]{2,3}c*", "".join(src.vocab), 5, weight=lambda w: 0.3 ** w.count("c")), src.vocab
    ),
    "pfsa": lambda src: pfsa_reference(src),
    "pfsa_nondeterministic": lambda src: pfsa_reference(src),
    "pcfg_ambiguous": lambda src: by_characters(
        test_pcfg.brute("S -> S S [0.3] | 'a' [0.5] | 'b' [0.2] | 'c' [0.0]", 5), src.vocab
    ),
    "pcfg_nested": lambda src: by_characters(
        test_pcfg.brute("S -> 'a' S 'b' [0.4] | 'a' 'b' [0.3] | 'c' [0.3]", 6), src.vocab
    ),
    "hidden_stream": lambda src: references.hidden_stream_probs(1),
    "seed_prefix": lambda src: references.seed_prefix_probs(1, 6),
}


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
    "mixture": source(lambda: Mixture([Parity(block=3, length=7), HMM.random(2, 2, 7, seed=3)], [0.7, 0.3])),
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
    "quantized_paper_rnn": net(lambda: quantize(PaperRNN(3, 14, 5, 2, seed=1), 2, 6), FLOAT64),
    "quantized_gru": net(lambda: quantize(GRU(3, 8, seed=1), 2, 6), FLOAT64),
    "quantized_lstm": net(lambda: quantize(LSTM(3, 8, seed=1), 2, 6), FLOAT64),
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
    """Teacher forcing against stepping (two code paths of a network or wrapper). A source's log_probs is its
    steps, so sources are compared with independent references instead (test_source_equals_reference)."""
    model, truth, tol = case
    if truth is model:
        pytest.skip("a source: log_probs is defined by its steps; see test_source_equals_reference")
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


# ---- Definition 2: a next-k-token distinguisher reads x[:start+k] only -----------------------------------

SOURCE_CASES = sorted(name for name in SUITE if SUITE[name].__qualname__.startswith("source."))


def shipped_distinguishers(src) -> dict:
    """Every distinguisher nextk ships, on one source: its checkers, SupportCheck, a negation, the optimal
    distinguisher against a bigram, a (briefly) fitted learned distinguisher and the text statistics."""
    from nextk.distinguishers import LearnedDistinguisher, Negation, OptimalDistinguisher, SupportCheck
    from nextk.distinguishers.text import NgramRepeat, PrefixCopy, RareTokens, SeenInPrefix

    bigram = NGram(2, src.vocab_size, smoothing=1.0).fit(src.sample(50, generator=1))
    docs = src.sample(64, generator=2)
    found = {f"check:{name}": check for name, check in src.checks.items()}
    found.update(
        support=SupportCheck(src),
        negation=Negation(SupportCheck(src)),  # every source has a support check; not all have checkers
        optimal=OptimalDistinguisher(src, bigram, 2),
        learned=LearnedDistinguisher(src.vocab_size, hidden=4, steps=3, seed=0).fit(src, bigram, 2, num_docs=16),
        ngram_repeat=NgramRepeat(1),
        prefix_copy=PrefixCopy(2),
        seen_in_prefix=SeenInPrefix(0.5),
        rare_tokens=RareTokens(src.vocab_size).calibrate(docs, 2),
    )
    return found


def test_source_cases_are_the_sources():
    assert SOURCE_CASES and all(SUITE[name]()[1] is None for name in SOURCE_CASES)
    assert all(SUITE[name]()[1] is not None for name in SUITE if name not in SOURCE_CASES and "hf" not in name)


@pytest.mark.parametrize("name", SOURCE_CASES)
def test_distinguishers_never_read_past_the_window(name):
    """For every shipped distinguisher on every source, every k ≤ n and every start (an int, and one start per
    row): randomising every token at positions ≥ start + k (uniform tokens, and the tail of another true
    document) leaves every answer unchanged. Any change is a read past the window."""
    src, _, _ = SUITE[name]()
    n, v = src.length, src.vocab_size
    g = torch.Generator().manual_seed(3)
    x = src.sample(24, generator=4)
    other = src.sample(24, generator=5)
    for label, d in shipped_distinguishers(src).items():
        for k in range(1, n + 1):
            row_starts = torch.randint(0, n - k + 1, (len(x),), generator=g)
            for start in [*range(n - k + 1), row_starts]:
                ends = (start if isinstance(start, torch.Tensor) else torch.full((len(x),), start)) + k
                after = torch.arange(n)[None, :] >= ends[:, None]  # (B, n): the positions d may not read
                want = d(x, start, k)
                for tail in (torch.randint(0, v, x.shape, generator=g), other):
                    got = d(torch.where(after, tail, x), start, k)
                    assert torch.equal(got, want), (label, k, start)


# ---- every source against p̄ written from its definition -------------------------------------------------


@pytest.mark.parametrize("name", SOURCE_CASES)
def test_source_equals_reference(name):
    """The exact conditionals of each source, along every string of its support (at most 400 of them, drawn with
    a fixed seed) and along uniform random strings, by log_probs and by stepping, equal the ratios of prefix
    marginals of p̄ written from the source's definition; log_prob equals log p̄(x) (−inf off the support).
    Rows after a prefix of probability 0 are not compared (the source's uniform row is a convention)."""
    src, _, _ = SUITE[name]()
    ref = REFERENCES[name](src)
    n, v = src.length, src.vocab_size
    assert all(len(x) == n for x in ref) and abs(sum(ref.values()) - 1) < 1e-12
    marg = references.prefix_marginals(ref)
    support = sorted(ref)
    pick = torch.randperm(len(support), generator=torch.Generator().manual_seed(0))[:400].tolist()
    x = torch.cat(
        [
            torch.tensor([support[i] for i in pick]),
            torch.randint(0, v, (50, n), generator=torch.Generator().manual_seed(1)),
        ]
    )
    want = np.full((len(x), n, v), np.nan)
    for b, row in enumerate(x.tolist()):
        for t in range(n):
            base = marg.get(tuple(row[:t]), 0.0)
            if base > 0:
                want[b, t] = [marg.get(tuple(row[:t]) + (c,), 0.0) / base for c in range(v)]
    defined = ~np.isnan(want[..., 0])
    for got in (src.log_probs(x), log_probs_by_steps(src, x)):
        assert np.abs(got.exp().numpy()[defined] - want[defined]).max() < 1e-12
    whole = np.array([ref.get(tuple(row), 0.0) for row in x.tolist()])
    assert np.abs(src.log_prob(x).double().exp().numpy() - whole).max() < 1e-12
    assert torch.isneginf(src.log_prob(x)[torch.from_numpy(whole == 0)]).all()
