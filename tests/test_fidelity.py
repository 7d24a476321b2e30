"""Fidelity to docs/theory.md §4–7: the paper's RNN keeps hidden nodes off the work nodes (Definition 3 (i));
Lemma 1 and δ never report zero for k > (n+1)/2; factorization documents sorted or in drawn order."""

import importlib
import math
from collections import Counter

import numpy as np
import pytest
import scipy.stats
import sympy
import torch

from nextk import bounds
from nextk.barrier import sampling
from nextk.errors import InputError
from nextk.lm import log_probs_by_steps
from nextk.models import PaperRNN
from nextk.search import search
from nextk.sources import Dyck, Factorization

V = 4
X = torch.randint(0, V, (3, 6), generator=torch.Generator().manual_seed(1))


def hidden_run(m: PaperRNN, x: torch.Tensor, node=None) -> torch.Tensor:
    """H after BOS and each token of x, (B, T+1, hidden), through the node-level path quantize uses."""
    carry, hs = m.node_init(x.shape[0]), []
    for tok in [torch.full_like(x[:, 0], V), *x.T]:
        carry, _ = m.node_step(carry, tok, node or (lambda v: v))
        hs.append(carry["h"])
    return torch.stack(hs, dim=1)


@pytest.mark.parametrize("steps", [1, 3])
def test_paper_rnn_hidden_nodes_never_read_work_nodes(monkeypatch, steps):
    m = PaperRNN(V, size=14, hidden=4, steps_per_token=steps, seed=2)
    h0, lp0 = hidden_run(m, X), m.log_probs(X)
    # noise on every work node value at every internal step: H is unchanged, the output is not
    work = m._work
    gen = torch.Generator().manual_seed(0)
    monkeypatch.setattr(m, "_work", lambda h, w, inp: work(h, w, inp) + torch.randn(w.shape, generator=gen))
    assert torch.equal(hidden_run(m, X), h0)
    assert (m.log_probs(X) - lp0).abs().max() > 1e-3
    monkeypatch.undo()
    # other work-node weights: same H, different output
    with torch.no_grad():
        m.work_in.weight.add_(torch.randn(m.work_in.weight.shape, generator=gen))
    assert torch.equal(hidden_run(m, X), h0)
    assert (m.log_probs(X) - lp0).abs().max() > 1e-3
    # no gradient path from H to the work nodes or the read-out
    hidden_run(m, X).sum().backward()
    assert m.work_in.weight.grad is None and m.readout.weight.grad is None
    assert m.gate_in.weight.grad.abs().sum() > 0
    # the hidden transition's in-neighbours are H and the input; work nodes read everything
    assert m.gate_in.in_features == 4 + V + 1 and m.work_in.in_features == 14 + V + 1


def test_paper_rnn_state_is_hidden_set_and_stepping_equals_teacher_forcing():
    m = PaperRNN(V, size=16, hidden=5, steps_per_token=2, seed=3)
    assert torch.allclose(log_probs_by_steps(m, X), m.log_probs(X), atol=1e-6)
    s = m.start(3)
    assert set(s.tensors) == {"log_probs", "h"} and s.tensors["h"].shape == (3, 5)
    # H after the steps equals H from the node path; Θ(size²) parameters
    state = s
    for t in range(X.shape[1]):
        state, _ = m.step(state, X[:, t])
    assert torch.allclose(state.tensors["h"], hidden_run(m, X)[:, -1], atol=1e-6)
    assert m.num_parameters > 16**2


# ---- Lemma 1 and δ (docs/theory.md §4–5): max(1, ⌊m/k⌋), never a zero guarantee ---------------------------
# (alpha or eps, k, n, blocks = max(1, ⌊m/k⌋), min(k, m)) worked by hand, m = n − k + 1
LEMMA1_CASES = [
    (0.2, 4, 11, 2, 4),  # m = 8: ⌊8/4⌋ = 2
    (0.3, 3, 20, 6, 3),  # m = 18: ⌊18/3⌋ = 6
    (0.5, 6, 10, 1, 5),  # m = 5 < k = 6 (k > (n+1)/2): the paper's ⌊5/6⌋ = 0, here 1; min(k, m) = 5
    (0.4, 10, 10, 1, 1),  # k = n: m = 1, one block
    (0.1, 5, 8, 1, 4),  # m = 4 < k = 5
]


@pytest.mark.parametrize("alpha, k, n, blocks, kmin", LEMMA1_CASES)
def test_lemma1_guarantee_by_hand(alpha, k, n, blocks, kmin):
    m = n - k + 1
    assert bounds.lemma1_guarantee(alpha, k, n) == pytest.approx(blocks * alpha * alpha / 4, rel=1e-12)
    assert bounds.lemma1_guarantee_tight(alpha, k, n) == pytest.approx(m * alpha * alpha / (4 * kmin), rel=1e-12)
    assert bounds.lemma1_guarantee(alpha, k, n) > 0
    assert bounds.lemma1_guarantee_tight(alpha, k, n) >= bounds.lemma1_guarantee(alpha, k, n) - 1e-15


def test_lemma1_guarantee_numbers():
    assert bounds.lemma1_guarantee(0.5, 6, 10) == pytest.approx(0.0625)  # 1 · 0.25 / 4
    assert bounds.lemma1_guarantee_tight(0.5, 6, 10) == pytest.approx(0.0625)  # 5 · 0.25 / (4 · 5)
    assert bounds.lemma1_guarantee_tight(0.2, 4, 11) == pytest.approx(0.02)  # 8 · 0.04 / 16
    assert bounds.lemma1_guarantee(0.2, 4, 11) == pytest.approx(0.02)  # 2 · 0.04 / 4
    assert bounds.lemma1_guarantee_tight(0.2, 3, 11) == pytest.approx(0.03)  # 9 · 0.04 / 12
    assert bounds.lemma1_guarantee(0.2, 3, 11) == pytest.approx(0.03)  # 3 · 0.04 / 4
    assert bounds.lemma1_guarantee_tight(0.2, 4, 12) == pytest.approx(0.0225)  # 9 · 0.04 / 16
    assert bounds.lemma1_guarantee(0.2, 4, 12) == pytest.approx(0.02)  # ⌊9/4⌋ = 2: 2 · 0.04 / 4


@pytest.mark.parametrize("eps, k, n, blocks, kmin", LEMMA1_CASES)
def test_search_delta_and_max_start_by_hand(eps, k, n, blocks, kmin):
    delta = blocks * eps * eps / (4 * n)
    assert bounds.search_delta(eps, k, n) == pytest.approx(delta, rel=1e-12)
    assert bounds.search_max_start(eps, k, n, 3) == math.ceil(10 * math.log(3) / delta)
    assert bounds.search_delta(0.2, 6, 8) == pytest.approx(0.04 / 32)  # m = 3 < k = 6: one block, not 0
    with pytest.raises(ValueError, match="> 0"):
        bounds.search_max_start(0.0, k, n, 3)


def test_search_accepts_long_windows_and_refuses_bad_eps():
    p = Dyck(1, 3, 6)
    quiet = dict(
        family="gru", train_kwargs={"steps": 2, "eval_every": 2}, max_sizes=2, measure=False, log=lambda *a: None
    )
    r = search(p, eps=0.2, k=5, **quiet)  # k = 5 > (6+1)/2: m = 2, ⌊2/5⌋ = 0, δ uses 1 block
    assert r.delta == pytest.approx(0.04 / 24)
    for eps in (0.0, -0.1):
        with pytest.raises(InputError, match="eps"):
            search(p, eps=eps, k=2, **quiet)
    with pytest.raises(InputError, match="window"):
        search(p, eps=0.2, k=7, **quiet)


def test_boost_reports_both_lemma1_forms():
    from nextk.boost import boost
    from nextk.models import GRU

    p = Dyck(1, 2, 6)
    b = boost(GRU(2, 4), p.checks["valid"], k=2, p=p, num_docs=64, seed=0)
    # n = 6, k = 2: m = 5, max(1, ⌊5/2⌋) = 2 blocks, min(k, m) = 2: tight / overall = (5/8) / (2/4) = 1.25
    overall, tight = b.search_["lemma1_guarantee_overall"], b.search_["lemma1_guarantee_tight"]
    assert overall > 0 and tight == pytest.approx(1.25 * overall, rel=1e-12)


# ---- Factorization: sorted (the paper) or ordered pairs (the note), against sympy counts --------------
def sympy_documents(digits: int, order: str, sorted_: bool) -> dict[str, float]:
    """Every document with its probability, counted from sympy.primerange: each ordered draw (a, b) of
    two uniform d-digit primes has probability 1/π²; a sorted source writes max, min."""
    primes = list(sympy.primerange(10 ** (digits - 1), 10**digits))
    out: dict[str, float] = {}
    for a in primes:
        for b in primes:
            p, q = (max(a, b), min(a, b)) if sorted_ else (a, b)
            text = f"{p * q}={p}*{q}" if order == "product_first" else f"{p}*{q}={p * q}"
            text = text.ljust(4 * digits + 2, ".")
            out[text] = out.get(text, 0.0) + 1.0 / len(primes) ** 2
    return out


def chi_square_p(texts: list[str], ref: dict[str, float]) -> float:
    assert set(texts) <= set(ref), set(texts) - set(ref)
    keys = sorted(ref)
    counts = Counter(texts)
    observed = np.array([counts[k] for k in keys], dtype=float)
    expected = np.array([ref[k] for k in keys]) * len(texts)
    return float(scipy.stats.chisquare(observed, expected).pvalue)


FACTORIZATION_CASES = [(d, o, s) for d in (1, 2) for o in ("product_first", "factors_first") for s in (True, False)]


@pytest.mark.parametrize("digits, order, sorted_", FACTORIZATION_CASES)
def test_factorization_exact_probabilities_match_sympy_counts(digits, order, sorted_):
    src = Factorization(digits, order=order, sorted=sorted_)
    ref = sympy_documents(digits, order, sorted_)
    primes = list(sympy.primerange(10 ** (digits - 1), 10**digits))
    pi2 = len(primes) ** 2
    # the counts by hand: π² ordered pairs; sorted: π(π+1)/2 documents, π of them p = q with 1/π²
    assert len(ref) == (len(primes) * (len(primes) + 1) // 2 if sorted_ else pi2)
    expected = {1 / pi2} if not sorted_ else {1 / pi2, 2 / pi2}
    assert {round(v * pi2) for v in ref.values()} == {round(v * pi2) for v in expected}
    texts = sorted(ref)
    x = torch.stack([src.encode(t) for t in texts])
    got = src.log_prob(x).exp()
    want = torch.tensor([ref[t] for t in texts], dtype=torch.float64)
    # whole distribution: max |p̄_src − p̄_ref| over Σ^n = max over the support and the mass src puts outside it
    outside = 1.0 - float(got.sum())
    assert max(float((got - want).abs().max()), abs(outside)) < 1e-12
    assert src.support.total == (pi2 if not sorted_ else pi2)  # integer weights sum to π² either way
    # the exact support and the renderer write the same documents
    assert sorted(src.render(a, b) for a in primes for b in primes if not sorted_ or a >= b) == texts
    assert repr(src).endswith(f"sorted={sorted_})") and src.sorted is sorted_


@pytest.mark.parametrize("digits, order, sorted_", FACTORIZATION_CASES)
def test_factorization_samplers_chi_square_against_sympy(digits, order, sorted_):
    src = Factorization(digits, order=order, sorted=sorted_)
    ref = sympy_documents(digits, order, sorted_)
    g = torch.Generator().manual_seed(7)
    many = 30 * len(ref)  # ≥ 15 expected per cell
    assert chi_square_p(src.decode(src.sample(many, generator=g)), {k.rstrip("."): v for k, v in ref.items()}) > 1e-3
    # the one-document-at-a-time samplers: ≥ 5 expected per cell. At d = 2 only the unsorted case (the new
    # paths; the sorted ones are tested against the exact source in test_barrier, which equals sympy above)
    if digits == 2 and sorted_:
        return
    few = 5 * round(1 / min(ref.values())) if digits == 2 else 12 * len(ref)
    draws = {"non_autoregressive": lambda: sampling.non_autoregressive(src, g)}
    if order == "factors_first":
        draws["factors_first"] = lambda: sampling.factors_first_autoregressive(src, g)
    else:
        draws["product_first"] = lambda: sampling.product_first_autoregressive(src, g)[0]
    for name, draw in draws.items():
        assert chi_square_p([draw() for _ in range(few)], ref) > 1e-3, name


@pytest.mark.parametrize("order", ["product_first", "factors_first"])
def test_arithmetic_check_orders_factors_only_when_sorted(order):
    for sorted_ in (True, False):
        src = Factorization(1, order=order, sorted=sorted_)
        check = src.checks["arithmetic"]
        docs = ["35=5*7", "35=7*5", "9=3*3", "35=5*5", "15=5*7"]
        if order == "factors_first":
            docs = [f"{d.split('=')[1]}={d.split('=')[0]}" for d in docs]
        x = torch.stack([src.encode(d) for d in docs])
        valid = check(x, 0, src.length).tolist()
        assert valid == [not sorted_, True, True, False, False], (order, sorted_, valid)
        # the check and the support agree on every document
        assert valid == (src.log_prob(x) > -math.inf).tolist()


# ---- Quantisation: the probability floor and the saturation are labelled as nextk's devices -----------
def test_quantisation_devices_are_labelled():
    module = importlib.import_module("nextk.quantize")  # nextk.quantize the attribute is the function
    import typer

    from nextk.cli import app
    from nextk.runs.bits import table as bits_table

    caption = bits_table({"rows": [], "model": "m", "source": "s"}).caption
    bits_help = typer.main.get_command(app).commands["bits"].help
    for doc in (module.__doc__, module.quantize.__doc__, bits_help, caption):
        assert "nextk's own" in doc and "Lemma 15" in doc and "2^I − 2^−F" in doc
