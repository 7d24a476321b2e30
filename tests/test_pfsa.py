"""PFSA against a plain-Python forward recursion written here (lists and loops, no matrices), for
deterministic and non-deterministic automata; random automata have the rank they were asked for;
samples by χ²; bad input as one line (Python and CLI)."""

import itertools
import math
import re

import numpy as np
import pytest
import scipy.stats
import torch

from nextk.errors import InputError
from nextk.measure import entropy
from nextk.sources import PFSA, make_source
from tests.cli_tools import cli, cli_json


def forward_prob(initial, trans, string) -> float:
    """P(the automaton emits `string` first) = Σ over state paths of π(s0) Π T[v_t][s_t][s_{t+1}]."""
    n_states = len(initial)
    alpha = list(initial)
    for v in string:
        alpha = [sum(alpha[s] * trans[v][s][s2] for s in range(n_states)) for s2 in range(n_states)]
    return sum(alpha)


def all_probs(src, n):
    strings = list(itertools.product(range(src.vocab_size), repeat=n))
    got = src.log_prob(torch.tensor(strings)).exp().tolist()
    return strings, got


NONDET = dict(  # state 0 on 'a' may go to 0 or 1; state 1 emits b or c, state 2 is reached by c
    initial=[0.6, 0.4, 0.0],
    transitions=[
        [[0.3, 0.2, 0.0], [0.0, 0.0, 0.0], [0.1, 0.0, 0.4]],  # a
        [[0.5, 0.0, 0.0], [0.0, 0.7, 0.0], [0.0, 0.0, 0.0]],  # b
        [[0.0, 0.0, 0.0], [0.0, 0.0, 0.3], [0.0, 0.25, 0.25]],  # c
    ],
)


@pytest.mark.parametrize(
    "make",
    [
        lambda n: PFSA(length=n, **NONDET),
        lambda n: PFSA.random(4, 3, rank=2, seed=1, length=n),
        lambda n: PFSA.random(5, 3, seed=2, length=n),
    ],
)
def test_equals_plain_python_forward(make):
    for n in (1, 3, 6):
        src = make(n)
        init, trans = src.initial.tolist(), src.transitions.tolist()
        strings, got = all_probs(src, n)
        for s, p in zip(strings, got):
            assert abs(p - forward_prob(init, trans, s)) < 1e-12, (s, p)


def test_conditionals_are_ratios_of_forward_probabilities():
    src = PFSA(length=5, **NONDET)
    x = torch.tensor([[0, 0, 2, 0, 1]])
    lp = src.log_probs(x)[0]
    init, trans = NONDET["initial"], NONDET["transitions"]
    for t in range(5):
        prefix = x[0, :t].tolist()
        for v in range(3):
            ref = forward_prob(init, trans, prefix + [v]) / forward_prob(init, trans, prefix)
            assert abs(lp[t, v].exp().item() - ref) < 1e-12


@pytest.mark.parametrize("states,vocab,rank", [(8, 4, 1), (8, 4, 2), (8, 4, 3), (16, 10, 5), (64, 32, 7), (6, 6, None)])
def test_random_has_the_rank_asked_for(states, vocab, rank):
    """Rank as Borenstein et al. count it: the span of the logits, i.e. of log E with rows centred."""
    src = PFSA.random(states, vocab, rank=rank, seed=3)
    emit = np.array(src.transitions.tolist()).sum(axis=2).T  # (S, V), recomputed from the matrices
    logits = np.log(emit) - np.log(emit).mean(axis=1, keepdims=True)
    want = rank or min(states, vocab - 1)
    assert np.linalg.matrix_rank(logits) == want and src.rank == want and src.deterministic
    if rank is not None and rank < min(states, vocab - 1):  # and not more: the extra singular values vanish
        assert np.linalg.svd(logits, compute_uv=False)[rank] < 1e-9


def test_samples_pass_chi_square_against_exact_law():
    src = PFSA(length=5, **NONDET)
    init, trans = NONDET["initial"], NONDET["transitions"]
    x = src.sample(30_000, generator=5)
    counts = {}
    for row in x.tolist():
        counts[tuple(row)] = counts.get(tuple(row), 0) + 1
    support = {s: forward_prob(init, trans, s) for s in itertools.product(range(3), repeat=5)}
    support = {s: p for s, p in support.items() if p > 0}
    assert set(counts) <= set(support) and min(support.values()) < 1e-3  # rare strings are in the law
    keys = sorted(support)
    observed = np.array([counts.get(k, 0) for k in keys])
    expected = np.array([support[k] for k in keys]) * len(x)
    big = expected >= 5  # pool the rare cells into one so the χ² approximation holds
    obs, exp = observed[big], expected[big]
    if (~big).any():
        obs, exp = np.append(obs, observed[~big].sum()), np.append(exp, expected[~big].sum())
    assert scipy.stats.chisquare(obs, exp).pvalue > 1e-3


def test_entropy_exact_and_repr_rebuilds():
    src = PFSA.random(3, 2, rank=1, seed=0, length=4)
    strings, got = all_probs(src, 4)
    ref = -sum(p * math.log(p) for p in got if p > 0)
    assert abs(entropy(src, estimator="exact").value - ref) < 1e-12
    again = make_source("pfsa", **src.params)
    assert torch.equal(again.transitions, src.transitions) and repr(src).startswith("PFSA.random(states=3")
    explicit = PFSA(length=3, **NONDET)
    assert PFSA(**explicit.params).params == explicit.params


def test_valid_check_is_the_support():
    src = PFSA(length=4, **NONDET)
    x = torch.tensor(list(itertools.product(range(3), repeat=4)))
    ok = src.checks["valid"](x, 1, 2)
    init, trans = NONDET["initial"], NONDET["transitions"]
    for row, flag in zip(x.tolist(), ok.tolist()):
        p1 = forward_prob(init, trans, row[:1])
        p3 = forward_prob(init, trans, row[:3])
        assert flag == (p1 == 0 or p3 > 0)


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        (dict(initial=[0.5, 0.4], transitions=[[[1.0, 0.0], [0.0, 1.0]]], length=3), "initial probabilities sum to"),
        (dict(initial=[1.0, 0.0], transitions=[[[0.5, 0.0], [0.0, 1.0]]], length=3), "state 0's outgoing"),
        (dict(initial=[1.0, 0.0], transitions=[[[1.5, -0.5], [0.0, 1.0]]], length=3), "non-negative"),
        (dict(initial=[1.0], transitions=[[[0.5, 0.5], [0.5, 0.5]]], length=3), "initial has shape"),
        (dict(initial=[1.0], transitions=[[1.0]], length=3), "transitions must have shape"),
        (dict(initial=[1.0], transitions=[[[1.0]]], length=0), "length must be a positive integer"),
    ],
)
def test_bad_input_one_line(kwargs, needle):
    with pytest.raises(InputError, match=re.escape(needle)) as e:
        PFSA(**kwargs)
    assert "\n" not in str(e.value)


def test_random_bad_input_and_cli():
    with pytest.raises(InputError, match=re.escape("rank must be an integer in 1..min(states, vocab − 1) = 3")):
        PFSA.random(8, 4, rank=4)
    with pytest.raises(InputError, match="states must be an integer"):
        PFSA.random(0, 4)
    out = cli_json("sample pfsa --states 8 --rank 2 --length 6 --num 3")
    assert out["params"] == dict(states=8, vocab=4, rank=2, seed=0, length=6) and len(out["samples"]) == 3
    r = cli("sample pfsa --states 8 --rank 9")
    assert r.exit_code == 2 and r.output.startswith("error:") and "rank must be an integer in" in r.output


def test_cli_train_and_refuse_another_automaton(tmp_path):
    """`nextk train pfsa --states 8 --rank 2 …` records the automaton; eval on another rank is refused."""
    out = cli_json(f"train pfsa --states 8 --rank 2 --length 8 --hidden 4 --steps 20 --eval-every 10 --out {tmp_path}")
    assert out["steps"] == 20
    r = cli(f"eval {tmp_path} pfsa --states 8 --rank 3 --length 8 --k 1")
    assert r.exit_code == 2 and "rank" in r.output


@pytest.mark.slow
def test_cli_train_eval_boost(tmp_path):
    """The issue's command line end to end: a random rank-2 automaton trained, measured and boosted."""
    src = "pfsa --states 8 --rank 2 --length 8"
    assert cli_json(f"train {src} --hidden 4 --steps 20 --eval-every 10 --out {tmp_path}/t")["steps"] == 20
    res = cli_json(f"eval {tmp_path}/t {src} --k 1,2 --num-docs 50 --learned-steps 10 --learned-docs 64")
    assert [w["k"] for w in res["windows"]] == [1, 2] and res["trained_on"]["source"] == "pfsa"
    boosted = cli(f"boost {tmp_path}/t {src} --k 2 --num-docs 50 --out {tmp_path}/b")
    assert boosted.exit_code == 0, boosted.output


def test_random_refuses_what_memory_cannot_hold_and_bad_seeds():
    """V = 10^8 tokens needs a (V, S, S) table and, without a rank, a (V, V) factor: refused with the figure
    before numpy tries (today: "Unable to allocate 71.1 PiB", then an UnboundLocalError in the CLI)."""
    from nextk.errors import TooLargeError

    with pytest.raises(TooLargeError, match=r"random PFSA with 4 states and 100,000,000 tokens .* GiB"):
        PFSA.random(states=4, vocab=10**8)
    r = cli("sample pfsa --states 4 --vocab 100000000")
    assert r.exit_code == 2 and r.output.startswith("error:") and "GiB" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    for seed in (-1, "x", 1.5):
        with pytest.raises(InputError, match="seed must be a non-negative integer"):
            PFSA.random(seed=seed)
