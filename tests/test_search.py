"""Algorithm 1/2 and bit size."""

import math

import pytest
import torch

from nextk import bounds
from nextk.errors import InputError
from nextk.lm import log_probs_by_steps
from nextk.measure import kl
from nextk.models import GRU, LSTM, PaperRNN, Transformer
from nextk.quantize import bit_size, fixed_point, quantize
from nextk.search import default_schedule, run_schedule, search, search_repeats
from nextk.sources import Dyck
from nextk.stats import wilson
from nextk.train import train
from tests.cli_tools import DYCK8, cli_json


@pytest.mark.parametrize(
    "table,j0,delta,tried,stop",
    [
        ({1: 1.0, 2: 0.5, 3: 0.45, 4: 0.449, 5: 0.3}, 1, 0.01, [1, 2, 3, 4], 3),
        ({1: 1.0, 2: 0.5, 3: 0.45, 4: 0.449, 5: 0.3}, 3, 0.01, [3, 4], 3),
        ({1: 1.0, 2: 0.75}, 1, 0.25, [1, 2], 1),  # a decrease of exactly δ stops (moves only on > δ)
        ({1: 1.0, 2: 0.8, 3: 0.9}, 1, 0.01, [1, 2, 3], 2),  # a rise stops too
        ({j: 1.0 / j for j in range(1, 20)}, 1, 1e-9, [1, 2, 3, 4], 4),  # capped at max_sizes=4: largest trained
    ],
)
def test_stopping_rule_on_scripted_tables(table, j0, delta, tried, stop):
    asked = []
    got_tried, got_stop = run_schedule(lambda j: asked.append(j) or table[j], j0, delta, max_sizes=4)
    assert got_tried == tried and got_stop == stop and asked == tried


@pytest.mark.parametrize("eps,k,n,v", [(0.1, 3, 20, 4), (0.2, 2, 8, 2), (0.1, 7, 10, 4), (0.3, 8, 8, 3)])
def test_delta_and_N_match_theory(eps, k, n, v):
    """δ = max(1, ⌊m/k⌋) ε² / (4n) and N = ⌈10 log V / δ⌉, m = n − k + 1, by plain arithmetic; the last two
    cases have k > (n+1)/2 (⌊m/k⌋ = 0), where δ must still be positive."""
    m = n - k + 1
    delta = max(1, m // k) * eps**2 / (4 * n)
    assert math.isclose(bounds.search_delta(eps, k, n), delta) and delta > 0
    assert bounds.search_max_start(eps, k, n, v) == math.ceil(10 * math.log(v) / delta)


def test_fixed_point_hand_checked():
    x = torch.tensor([0.3, -0.3, 0.875, -0.99, 1.99, 7.0, -7.0, 0.0, 0.124])
    got = fixed_point(x, 1, 3)  # step 1/8, saturation at 2 − 1/8
    want = torch.tensor([0.25, -0.25, 0.875, -0.875, 1.875, 1.875, -1.875, 0.0, 0.0])
    assert torch.equal(got, want)
    assert torch.equal(fixed_point(torch.tensor([2.5, -3.75]), 0, 0), torch.tensor([0.0, 0.0]))  # max 1 − 1 = 0
    assert bit_size(3, 4) == 8
    with pytest.raises(InputError):
        fixed_point(x, -1, 2)


def test_more_bits_never_change_a_representable_value():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(10000, generator=g, dtype=torch.float64) * 10
    for i, f in [(0, 1), (2, 3), (3, 8)]:
        rep = fixed_point(x, i, f)
        assert torch.equal(fixed_point(rep, i, f), rep)  # idempotent
        for di, df in [(0, 1), (1, 0), (2, 5)]:
            assert torch.equal(fixed_point(rep, i + di, f + df), rep)


@pytest.mark.parametrize("make", [lambda: PaperRNN(3, 12, 4, 2), lambda: GRU(3, 8, 2), lambda: LSTM(3, 6)])
def test_quantized_models_are_valid_language_models(make):
    m = make()
    x = torch.randint(0, 3, (4, 7), generator=torch.Generator().manual_seed(0))
    for ib, fb in [(0, 1), (1, 2), (3, 6)]:
        qm = quantize(m, ib, fb)
        lp = qm.log_probs(x)
        assert torch.allclose(lp.exp().sum(-1), torch.ones(4, 7, dtype=torch.float64), atol=1e-12)
        assert (lp.exp() >= qm.min_prob / (1 + 3 * qm.min_prob) - 1e-15).all()
        assert torch.allclose(lp, log_probs_by_steps(qm, x), atol=1e-12)
    many = quantize(m, 20, 30)  # enough bits: the unquantised model back (to float32 rounding)
    assert torch.allclose(many.log_probs(x), m.log_probs(x), atol=1e-5)
    with pytest.raises(InputError, match="graph RNN"):
        quantize(Transformer(3, 8, 1, 2), 2, 2)


def test_quantisation_aware_training_lowers_loss():
    p = Dyck(1, 3, 8)
    qm = quantize(PaperRNN(2, 12, 4, 2), 2, 4, ste=True)
    before = kl(p, qm, estimator="exact").value
    train(qm, p, steps=60, lr=1e-2, progress=False)
    assert kl(p, qm, estimator="exact").value < before


def test_small_search_end_to_end():
    p = Dyck(1, 3, 8)
    r = search(p, eps=0.2, k=2, family="gru", train_kwargs={"steps": 60}, num_docs=40, log=lambda *a: None)
    assert r.tried[:2] == [r.j0, r.j0 + 1] and 1 <= r.j0 <= r.max_start
    assert r.losses[r.stop_index]["value"] <= min(r.losses[r.j0]["value"], r.losses[r.j0 + 1]["value"]) + r.delta
    assert r.delta == bounds.search_delta(0.2, 2, 8) and r.theoretical_max_start == bounds.search_max_start(
        0.2, 2, 8, 2
    )
    assert "not 1.." in r.departs
    assert r.model is not None and set(r.measurement) == set(r.tried)
    assert "tv" in r.measurement[r.stop_index]["windows"][0]


@pytest.mark.parametrize("successes,n", [(0, 1), (1, 2), (0, 10), (3, 10), (10, 10), (17, 40), (500, 1000)])
def test_wilson_equals_scipy(successes, n):
    """nextk.stats.wilson against scipy's Wilson score interval (no continuity correction, 95%)."""
    from scipy.stats import binomtest

    got = wilson(successes, n)
    want = binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert got.value == successes / n and got.n == n
    assert abs(got.low - want.low) < 1e-9 and abs(got.high - want.high) < 1e-9


def test_algorithm2_bits_in_schedule_and_repeats():
    p = Dyck(1, 3, 8)
    sched = default_schedule("paper_rnn", bits=True)
    assert sched(2)["bits"] == (3, 3) and sched(2)["hidden"] == 4 and sched(2)["size"] == 4 + 8
    repeats = 3
    res = search_repeats(
        p,
        repeats,
        eps=0.3,
        k=2,
        family="paper_rnn",
        schedule=sched,
        max_sizes=3,
        measure=False,
        train_kwargs={"steps": 20},
        log=lambda *a: None,
    )
    runs = res["runs"]
    assert res["repeats"] == repeats and len(runs) == repeats
    two = sum(len(r["tried"]) == 2 for r in runs)  # counted here from the runs' own records
    assert res["two_sizes"]["value"] == two / repeats and res["two_sizes"]["n"] == repeats
    for r in runs:  # each run's record follows the stopping rule on its own losses
        tried, loss, delta = r["tried"], {j: r["losses"][j]["value"] for j in r["tried"]}, r["delta"]
        assert tried == list(range(tried[0], tried[0] + len(tried))) and 2 <= len(tried) <= 3
        assert all(loss[j] - loss[j + 1] > delta for j in tried[:-2])  # moved on past every earlier size
        if loss[tried[-2]] - loss[tried[-1]] > delta:  # still falling: only when the budget ran out
            assert len(tried) == 3 and r["stop_index"] == tried[-1]
        else:
            assert r["stop_index"] == tried[-2]
    # Algorithm 2: the bit size of each run's output is 1 + integer bits + fraction bits of its schedule entry
    assert res["bit_size"] == [1 + 3 + (r["stop_index"] + 1) for r in runs]
    assert all(r["j0"] == r["tried"][0] and 1 <= r["j0"] <= r["max_start"] for r in runs)


def test_cli_search_and_bits(tmp_path):
    res = cli_json(f"search {DYCK8} --family gru --steps 20 --num-docs 20 --out {tmp_path / 's'}")
    assert res["runs"][0]["delta"] > 0 and (tmp_path / "s" / "search-0.png").exists()
    cli_json(f"train {DYCK8} --model paper_rnn --hidden 4 --steps 20 --out {tmp_path / 'm'}")
    rows = cli_json(f"bits {tmp_path / 'm'} {DYCK8} --frac-bits 1,4 --num-docs 30 --out {tmp_path / 'b'}")["rows"]
    assert [row["bit_size"] for row in rows] == [None, 5, 8]
    assert (tmp_path / "b" / "bits.png").exists()


def test_search_with_a_clear_size_gain_takes_two_sizes_in_most_repeats():
    """A schedule with one clear gain: size 1 is a 1-unit GRU, every later size an 8-unit GRU, on Dyck
    strings of length 8 and depth ≤ 3 (δ = 0.015 at ε = 0.4). A run that starts at j₀ = 1 sees the gain
    (1 → 2 lowers the loss by far more than δ, beyond its interval), moves on and stops after three
    sizes; every other start stops after two — most repeats, as Lemma 4 says when j₀ is random. Every
    recorded decrease is the paired difference of the recorded losses."""
    p = Dyck(1, 3, 8)
    res = search_repeats(
        p,
        6,
        eps=0.4,
        k=2,
        family="gru",
        schedule=lambda j: {"hidden": 1 if j == 1 else 8},
        max_start=4,
        measure=False,
        test="interval",
        decision_docs=1000,
        train_kwargs={"steps": 150, "lr": 3e-2, "eval_every": 50},
    )
    runs = res["runs"]
    report = [(r["j0"], r["tried"], r["decrease_estimates"]) for r in runs]
    assert sum(len(r["tried"]) == 2 for r in runs) > len(runs) / 2, report
    assert any(r["j0"] == 1 for r in runs), report  # the seeds draw the start that sees the gain
    for r in runs:
        assert len(r["tried"]) == (3 if r["j0"] == 1 else 2), report
        if r["j0"] == 1:
            assert r["decrease_estimates"][1]["low"] > 3 * r["delta"], report  # the gain, far beyond δ
    for r in runs:
        for j, dec in r["decrease_estimates"].items():
            want = r["losses"][j]["value"] - r["losses"][j + 1]["value"]
            assert abs(dec["value"] - want) < 1e-12 and dec["low"] <= dec["value"] <= dec["high"]
            assert dec["n"] == 1000
        first = r["decrease_estimates"][r["j0"]]
        assert (len(r["tried"]) > 2) == (first["low"] > r["delta"])  # the interval test, read back
    assert not res["diagnosis"]["far_from_promise"]


def _record(decreases, delta=0.01, tried=None):
    tried = tried or list(range(1, len(decreases) + 2))
    return {
        "delta": delta,
        "max_start": 3,
        "theoretical_max_start": 500,
        "tried": tried,
        "decrease_estimates": {
            j: {"value": v, "low": v - h, "high": v + h, "n": 100} for j, (v, h) in zip(tried, decreases)
        },
    }


def test_diagnosis_names_the_premise_the_numbers_contradict():
    from nextk.search import diagnose

    none = wilson(0, 5).to_dict()
    gaining = diagnose([_record([(0.05, 0.005), (0.04, 0.005)])] * 5, none)
    assert gaining["far_from_promise"] and gaining["above_delta"] == 10
    assert any("Premise 2 fails" in s for s in gaining["sentences"])
    assert not any("Premise 1" in s or "Premise 3" in s for s in gaining["sentences"])
    worse = diagnose([_record([(-0.03, 0.005), (0.0, 0.001)])] * 5, none)
    assert worse["significantly_negative"] == 5 and any("Premise 1 fails" in s for s in worse["sentences"])
    noisy = diagnose([_record([(0.012, 0.02)])] * 5, none)
    assert noisy["unresolved"] == 5 and any("Premise 3 fails" in s for s in noisy["sentences"])
    fine = diagnose([_record([(0.001, 0.001)])] * 5, wilson(5, 5).to_dict())
    assert not fine["far_from_promise"] and len(fine["sentences"]) == 2
    assert "consistent with" in fine["sentences"][0]


@pytest.mark.slow
def test_practical_setting_approaches_lemma4(tmp_path):
    """Dyck(length 16), gru, ε = 0.3, k = 2: the practical setting (interval test, 4000 decision documents,
    1500 steps per size, j₀ from 1..4) stops after two sizes in most of 5 runs, and the report says
    whether 0.9 is within the Wilson interval."""
    from nextk.runs.search import Config, run, summary

    cfg = Config.practical("dyck", {"length": 16}, eps=0.3, k=2, family="gru", repeats=5)
    res = run(cfg, tmp_path)
    assert sum(len(r["tried"]) == 2 for r in res["runs"]) >= 4
    assert not res["diagnosis"]["far_from_promise"] and "consistent with" in summary(res) + "".join(
        res["diagnosis"]["sentences"]
    )
