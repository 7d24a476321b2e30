"""`nextk reproduce`: each verdict computed from synthetic tables that must come out "violated", "not shown" and
"holds" (with the numbers in the sentences), the report drawn from a results dict, the budgets' grids valid, and
the quick budget end to end (slow)."""

import json

import pytest

from nextk.runs import verdicts as v
from nextk.runs.reproduce import SPECS, draw
from nextk.runs.sweep import expand
from tests.cli_tools import cli


def e(name: str, value: float, half: float = 0.01, n: int = 100) -> dict:
    """An estimate as table columns."""
    return {
        name: value,
        f"{name}_low": value - half,
        f"{name}_high": value + half,
        f"{name}_stderr": half / 2,
        f"{name}_n": n,
    }


def measured(size=8, k=2, length=12, tv=0.1, bound=0.2, seed=0, half=0.01, **more) -> dict:
    row = {
        "status": "ok",
        "stage": "measure",
        "cell": f"c{size}-{length}-{seed}-{k}",
        "source_name": "dyck",
        "source_key": "{}",
        "length": length,
        "family": "gru",
        "size": size,
        "k": k,
        "model_name": f"gru-{size}",
    }
    return row | e("tv", tv, half) | e("theorem3", bound, 0.02) | e("excess_loss", 0.01) | more


# ---------------------------------------------------------------------------------------------- Theorem 3


def test_theorem3_violated_holds_and_not_shown():
    under = [measured(tv=0.1, bound=0.2), measured(size=4, tv=0.19, bound=0.18, half=0.03)]  # 2nd: within noise
    s = v.theorem3(under)
    assert s["verdict"] == v.HOLDS and s["counts"] == {"points": 2, "violated": 0, "above_value": 1}
    assert "2 advantages of 2 measured models" in s["sentence"] and "inside the intervals" in s["sentence"]
    bad = under + [measured(size=16, tv=0.5, bound=0.2) | e("checker_valid", -0.45)]
    s = v.theorem3(bad)
    assert s["verdict"] == v.VIOLATED and s["counts"]["violated"] == 2  # TV and |checker| both beyond the bound
    assert "0.5000 [0.4900, 0.5100]" in s["sentence"] and "0.2000 [0.1800, 0.2200]" in s["sentence"]
    assert v.theorem3([])["verdict"] == v.NOT_SHOWN
    assert v.theorem3([measured(tv=0.9) | {"status": "failed"}])["verdict"] == v.NOT_SHOWN  # failed cells: ignored


# ---------------------------------------------------------------------------------------------- trends


def test_size_trend():
    falling = [
        measured(size=s, tv=0.3 - 0.05 * i + 0.002 * seed, seed=seed)
        for i, s in enumerate([2, 4, 8, 16])
        for seed in (0, 1)
    ]
    s = v.size_trend(falling)
    assert s["verdict"] == v.HOLDS and "falls" in s["checks"][0]["sentence"]
    assert "slope -0.0500" in s["checks"][0]["sentence"]
    rising = [r | {"tv": 0.6 - r["tv"]} for r in falling]
    assert v.size_trend(rising)["verdict"] == v.VIOLATED
    noisy = [
        measured(size=s, tv=0.1 + (0.2 if seed else -0.2) * (1 if s % 3 else -1), seed=seed)
        for s in [2, 4, 8]
        for seed in (0, 1)
    ]
    s = v.size_trend(noisy)
    assert s["verdict"] == v.NOT_SHOWN and "contains 0" in s["checks"][0]["sentence"]
    assert v.size_trend([measured()])["verdict"] == v.NOT_SHOWN  # one size: nothing to fit


def test_length_flat():
    flat = [measured(length=n, tv=0.1 + 0.001 * seed, seed=seed) for n in (8, 12, 16, 20) for seed in (0, 1)]
    s = v.length_flat(flat)
    assert s["verdict"] == v.HOLDS and "from n = 8 to 20" in s["checks"][0]["sentence"]
    growing = [r | {"tv": 0.01 * r["length"]} for r in flat]
    s = v.length_flat(growing)
    assert s["verdict"] == v.VIOLATED and "+0.1200" in s["checks"][0]["sentence"]
    wide = [
        measured(length=n, tv=0.1 + (0.3 if seed else -0.3) * (1 if n % 8 else -1), seed=seed)
        for n in (8, 12, 16)
        for seed in (0, 1)
    ]
    assert v.length_flat(wide)["verdict"] == v.NOT_SHOWN


# ---------------------------------------------------------------------------------------------- Lemma 1


def boosted(offset, alpha, half_gain, chosen=0.3, blocks=5, tight=0.01) -> dict:
    row = {
        "status": "ok",
        "stage": "boost",
        "cell": "b",
        "offset": offset,
        "blocks": blocks,
        "k": 2,
        "distinguisher": "optimal",
        "chosen_offset": 0,
        "chosen_eta": 0.8,
        "lemma1_guarantee_tight": tight,
        "source_name": "dyck",
        "length": 12,
        "model_name": "gru-2",
    }
    return row | e("alpha", alpha) | e("gain_at_half_alpha", half_gain, 0.005) | e("chosen_gain", chosen, 0.005)


def test_lemma1():
    good = [boosted(0, 0.2, 0.06), boosted(1, 0.1, 0.02)]  # guarantees 5·0.04/4 = 0.05, 0.0125
    s = v.lemma1(good)
    assert s["verdict"] == v.HOLDS and "Δ(r, α_r/2) = 0.0600" in s["evidence"][0]
    below = [boosted(0, 0.2, 0.01)]  # 0.01 ± 0.005 against 0.05 [0.045, 0.055]
    s = v.lemma1(below)
    assert s["verdict"] == v.VIOLATED and "beyond the intervals" in s["checks"][0]["sentence"]
    assert "violated beyond the intervals at 1" in s["sentence"]
    worse_search = [boosted(0, 0.2, 0.06, chosen=0.01)]
    s = v.lemma1(worse_search)
    assert s["verdict"] == v.VIOLATED and any("searched" in c["sentence"] for c in s["checks"])
    assert v.lemma1([])["verdict"] == v.NOT_SHOWN


# ---------------------------------------------------------------------------------------------- Lemma 4


def searched(seed, two, learned=0.01, max_start=3, theory=800) -> dict:
    row = {
        "status": "ok",
        "stage": "search",
        "cell": f"s{seed}",
        "run_seed": seed,
        "source_name": "dyck",
        "length": 8,
        "family": "gru",
        "eps": 0.3,
        "k": 2,
        "two_sizes": two,
        "sizes_tried": 2 if two else 3,
        "stop_index": 2,
        "max_start": max_start,
        "theoretical_max_start": theory,
        "bit_size": None,
    }
    return row | e("learned", learned) | e("tv", 0.1) | e("theorem3", 0.2)


def test_lemma4():
    low_premise_met = [searched(i, i < 2, max_start=800) for i in range(10)]  # 2 of 10, j₀ from 1..N
    s = v.lemma4(low_premise_met)
    assert s["verdict"] == v.VIOLATED and "2 of 10 runs" in s["sentence"] and "below 0.9 beyond" in s["sentence"]
    low_premise_missed = [searched(i, i < 2) for i in range(10)]
    s = v.lemma4(low_premise_missed)
    assert s["verdict"] == v.NOT_SHOWN and "premise is not met" in s["sentence"]
    assert "1..3, not 1..N = 800" in s["sentence"]
    high = [searched(i, True) for i in range(40)]
    s = v.lemma4(high)
    assert s["verdict"] == v.HOLDS and "40 of 40" in s["sentence"]
    distinguishable = [searched(i, True, learned=0.5, max_start=800) for i in range(40)]
    s = v.lemma4(distinguishable)
    assert s["verdict"] == v.VIOLATED and any("exceed ε = 0.3" in c["sentence"] for c in s["checks"])
    assert v.lemma4([])["verdict"] == v.NOT_SHOWN


# ---------------------------------------------------------------------------------------------- Theorem 2


def quantised(bits, excess, length=8, cell="q") -> dict:
    row = {
        "status": "ok",
        "stage": "bits",
        "cell": f"{cell}{length}",
        "bit_size": bits,
        "length": length,
        "k": 2,
        "int_bits": None if bits is None else 3,
        "frac_bits": None if bits is None else bits - 4,
        "source_name": "dyck",
        "model_name": "paper_rnn-4",
    }
    return row | e("excess_loss", excess, 0.005) | e("tv", 0.1) | e("theorem3", 0.3)


def test_theorem2():
    sweep = [quantised(None, 0.05), quantised(5, 0.3), quantised(8, 0.1), quantised(12, 0.052)]
    s = v.theorem2(sweep)
    assert s["verdict"] == v.HOLDS and "b* = 12" in s["evidence"][0]
    never = [quantised(None, 0.05), quantised(5, 0.3), quantised(8, 0.2)]
    s = v.theorem2(never)
    assert s["verdict"] == v.NOT_SHOWN and "no tested bit size matches" in s["evidence"][0]
    grows = [
        quantised(None, 0.05, 8),
        quantised(6, 0.05, 8),
        quantised(None, 0.05, 16),
        quantised(6, 0.2, 16),
        quantised(10, 0.05, 16),
    ]
    s = v.theorem2(grows)
    assert s["verdict"] == v.NOT_SHOWN and "independence of n not shown" in s["checks"][-1]["sentence"]


# ---------------------------------------------------------------------------------------------- the barrier


def barrier(aspect: str, verdict: str, item: str = "", **more) -> dict:
    return {
        "status": "ok",
        "stage": "barrier",
        "aspect": aspect,
        "item": item,
        "verdict": verdict,
        "sentence": f"{aspect} {item}: {verdict}",
    } | more


def test_barrier_verdicts():
    assert v.barrier_sampling([barrier("sampling_versus", "a_higher")] * 3)["verdict"] == v.HOLDS
    s = v.barrier_sampling([barrier("sampling_versus", "a_higher"), barrier("sampling_versus", "overlap")])
    assert s["verdict"] == v.NOT_SHOWN and "1 holds, 1 not shown" in s["sentence"]
    assert v.barrier_sampling([barrier("sampling_versus", "b_higher")])["verdict"] == v.VIOLATED
    learning = [barrier("learning", "b_higher", "validity", digits=2), barrier("learning", "overlap", "excess_loss")]
    assert v.barrier_learning(learning)["verdict"] == v.HOLDS
    assert v.barrier_learning([barrier("learning", "a_higher", "validity")])["verdict"] == v.VIOLATED
    hidden = [
        barrier("hidden", "overlap", "hidden stream: validity"),
        barrier("hidden", "not shown lower", "hidden stream: visible_tv"),
    ]
    assert v.barrier_hidden(hidden)["verdict"] == v.NOT_SHOWN
    primes = [barrier("primes", "max_tv=0.2", "li approximation"), barrier("primes_tv", "", tv=0.2, digits=6)]
    s = v.barrier_primes(primes)
    assert (
        s["verdict"] == v.NOT_SHOWN and "above the tolerance 0.05" in s["sentence"] and "d=6: 0.2000" in s["sentence"]
    )
    assert v.barrier_primes(primes[:1] + [barrier("primes_tv", "", tv=0.01, digits=4)])["verdict"] == v.HOLDS
    assert all(f([])["verdict"] == v.NOT_SHOWN for f in v.ANALYSES)  # an empty table shows nothing


def test_report_from_a_results_dict(tmp_path):
    rows = [
        measured(size=s, tv=0.3 - 0.05 * i + 0.002 * seed, seed=seed, bound=0.4)
        for i, s in enumerate([2, 4, 8, 16])
        for seed in (0, 1)
    ]
    rows += [boosted(0, 0.2, 0.06), quantised(None, 0.05), quantised(12, 0.05)]
    sections = v.analyse(rows)
    results = {
        "budget": "quick",
        "backend": "local",
        "sections": sections,
        "barrier": None,
        "rows": len(rows),
        "seconds": 1.0,
        "sweep": {
            "ok": 3,
            "cells": 4,
            "skipped": 0,
            "table": {"json": "table.json"},
            "failed": [{"cell": "x", "attempts": 2, "error": "boom"}],
        },
    }
    paths = draw(results, tmp_path)
    md, page = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    for s in sections:
        assert s["title"] in md and html_escaped(s["title"]) in page
    assert md.count("**Verdict:") == len(sections) == 10
    assert "Failed cells" in md and "boom" in md
    assert "data:image/png;base64," in page and "figures/" not in page.split("<body>")[1].split("data:")[0][-20:]
    pngs = [p for p in paths if p.suffix == ".png"]
    assert {p.stem for p in pngs} >= {"theorem3", "size_trend", "lemma1", "theorem2"}
    for p in pngs:
        assert json.loads(p.with_suffix(".json").read_text())["kind"]


def html_escaped(text: str) -> str:
    import html

    return html.escape(text)


def test_budgets_expand_to_valid_grids():
    quick, full = expand(SPECS["quick"]()), expand(SPECS["full"]())
    assert {c.part for c in quick} == {"barrier", "sizes", "lengths", "lemma1", "lemma4", "theorem2", "algorithm2"}
    assert len(full) > 4 * len(quick)
    shared = [c for c in quick if len(c.parts) > 1]  # the sizes and lengths grids meet at n = 12, width 8
    assert shared and all(set(c.parts) == {"sizes", "lengths"} for c in shared)
    assert cli("reproduce --budget nosuch").exit_code == 2


@pytest.mark.slow
def test_reproduce_quick_end_to_end(tmp_path):
    r = cli(f"reproduce --budget quick --out {tmp_path} --json")
    assert r.exit_code == 0, r.output[-2000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert [s["key"] for s in res["sections"]] == [f.__name__ for f in v.ANALYSES]
    assert all(s["verdict"] in v.VERDICTS and s["sentence"] for s in res["sections"])
    assert res["sweep"]["ok"] == res["sweep"]["cells"] and res["seconds"] < 15 * 60
    md = (tmp_path / "report.md").read_text()
    assert all(s["title"] in md for s in res["sections"])
    assert (tmp_path / "report.html").read_text().count("data:image/png;base64,") >= 8
    assert (tmp_path / "table.csv").is_file() and (tmp_path / "table.json").is_file()
    assert v.theorem3(json.loads((tmp_path / "table.json").read_text()))["verdict"] != v.VIOLATED
