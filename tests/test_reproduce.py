"""`nextk reproduce`: the report drawn from a results dict (verdicts as text, ±∞ printed as such, each section's
rule and measured error rates), the report in headless Chromium (slow), the budgets' grids valid, and the quick
budget end to end (slow). The verdict rules themselves: tests/test_verdicts.py and tests/test_calibration.py."""

import json
import re
import shutil
import subprocess

import pytest

from nextk.runs import verdicts as v
from nextk.runs.reproduce import SPECS, draw
from nextk.runs.sweep import expand
from nextk.runs.verdicts import calibration
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


def boosted(offset, alpha, half_gain, chosen=0.3, blocks=5, **more) -> dict:
    row = {"status": "ok", "stage": "boost", "cell": "b", "offset": offset, "blocks": blocks, "k": 2,
           "distinguisher": "optimal", "chosen_offset": 0, "chosen_eta": None, "chosen_eta_kind": "limit +inf",
           "source_name": "dyck", "length": 12, "model_name": "gru-2"}  # fmt: skip
    return row | e("alpha", alpha) | e("gain_at_half_alpha", half_gain, 0.005) | e("chosen_gain", chosen, 0.005) | more


def quantised(bits, excess, length=8) -> dict:
    row = {"status": "ok", "stage": "bits", "cell": f"q{length}", "bit_size": bits, "length": length, "k": 2,
           "source_name": "dyck", "model_name": "paper_rnn-4"}  # fmt: skip
    return row | e("excess_loss", excess, 0.005) | e("tv", 0.1) | e("theorem3", 0.3)


def small_report(tmp_path, calibrated: bool = True):
    """A report drawn from a small synthetic table: (sections, paths, report.md, report.html)."""
    rows = [
        measured(size=s, tv=0.3 - 0.05 * i + 0.002 * seed, seed=seed, bound=0.4)
        for i, s in enumerate([2, 4, 8, 16])
        for seed in (0, 1)
    ]
    rows += [boosted(0, 0.2, 0.06), boosted(1, 0.1, 0.02), quantised(None, 0.05), quantised(12, 0.05)]
    finite = {"cell": "b2", "chosen_eta": 0.1, "chosen_eta_kind": "interior"} | e("kl_drop", 0.3, 0.005)
    rows += [boosted(0, 0.2, 0.06, **finite), boosted(1, 0.1, 0.02, **finite)]  # Lemma 1: a finite step's KL drop
    sections = v.analyse(rows)
    results = {
        "budget": "quick", "backend": "local", "sections": sections, "barrier": None, "rows": len(rows),
        "seconds": 1.0, "calibration": calibration.summary(tables=20) if calibrated else None,
        "sweep": {"ok": 3, "cells": 4, "skipped": 0, "table": {"json": "table.json"},
                  "failed": [{"cell": "x", "attempts": 2, "error": "boom"}]},
    }  # fmt: skip
    paths = draw(results, tmp_path)
    return sections, paths, (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()


def test_report_from_a_results_dict(tmp_path):
    sections, paths, md, page = small_report(tmp_path)
    for s in sections:
        assert s["title"] in md and html_escaped(s["title"]) in page
    assert md.count("**Verdict:**") == len(sections) == 10
    assert md.count("Rule (stated before the data)") == 10 and md.count("false 'violated' when the claim holds") == 10
    assert "nextk's observation (not a claim of the paper)" in md and "**observed**" in md
    assert "Failed cells" in md and "boom" in md
    assert not re.search("[\u2705\u274c\u2796\U0001f300-\U0001faff]", md + page)  # no emoji: text and CSS
    spans = re.findall(r'<span class="verdict v-(holds|violated|not-shown)">([^<]+)</span>', page)
    assert len(spans) == 2 * len(sections)  # the summary table and each section
    assert "η=+∞" in md and "η=n/a" not in md  # a limit step prints as ±∞
    assert "data:image/png;base64," in page and "figures/" not in page.split("<body>")[1].split("data:")[0][-20:]
    pngs = [p for p in paths if p.suffix == ".png"]
    assert {p.stem for p in pngs} >= {"theorem3", "size_trend", "lemma1", "theorem2"}
    for p in pngs:
        assert json.loads(p.with_suffix(".json").read_text())["kind"]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LOADED = (
    "<script>window.addEventListener('load', () => document.querySelectorAll('img').forEach(i => "
    "i.setAttribute('data-loaded', String(i.complete && i.naturalWidth > 0))));</script>"
)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_report_html_in_headless_chromium(tmp_path):
    """report.html rendered by Chromium: every verdict is text in the DOM, every figure an <img> that loaded;
    a screenshot is kept beside the report."""
    sections, paths, _, page = small_report(tmp_path)
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", LOADED + "</body>"))
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
    dom = subprocess.run(
        [*flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    words = re.findall(r'<span class="verdict v-[a-z-]+">([^<]+)</span>', dom)
    assert len(words) == 2 * len(sections) and set(words) <= {"holds", "violated", "not shown at this budget",
                                                               "observed", "opposite observed"}  # fmt: skip
    images = re.findall(r"<img [^>]*>", dom)
    assert len(images) == sum(p.suffix == ".png" for p in paths) >= 4
    assert all('data-loaded="true"' in img for img in images), [i[:80] for i in images if "true" not in i]
    shot = tmp_path / "report.png"
    subprocess.run([*flags, "--window-size=1200,3000", f"--screenshot={shot}", (tmp_path / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    assert shot.is_file() and shot.stat().st_size > 10_000


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
    assert md.count("Measured error rates of this rule:** false 'violated'") == len(res["sections"])
    assert set(res["calibration"]) == {s["key"] for s in res["sections"]}
    assert (tmp_path / "report.html").read_text().count("data:image/png;base64,") >= 8
    assert (tmp_path / "table.csv").is_file() and (tmp_path / "table.json").is_file()
    assert v.theorem3(json.loads((tmp_path / "table.json").read_text()))["verdict"] != v.VIOLATED


# ---------------------------------------------------------------------------------------------- a user's source

PATTERN = "(ab|c)*d"


def source_of(cell) -> tuple[str | None, dict]:
    """(source, source_params) a cell trains and measures on: a pipeline's come from its train config."""
    cfg = cell.config.get("train", cell.config) if cell.run == "pipeline" else cell.config
    return cfg.get("source"), cfg.get("source_params") or {}


def test_user_source_spec_names_it_in_every_measured_section():
    """`--source regex --pattern …`: every section that measures a trained model runs on the regex (its pattern,
    lengths that are multiples of the user's n), the barrier keeps its own sources, the full budget drops the HMM."""
    for budget, n in (("quick", 12), ("full", 24)):
        cells = expand(SPECS[budget]("regex", {"pattern": PATTERN, "length": n}))
        builtin = {c.part for c in expand(SPECS[budget]())}
        parts = {c.part for c in cells}
        assert parts == builtin - {"sizes-hmm"}
        for c in cells:
            name, params = source_of(c)
            if c.part == "barrier":
                assert name is None and c.run == "barrier"  # factorization orders, as in the built-in budget
                continue
            assert (name, params["pattern"]) == ("regex", PATTERN), c.id
            if c.run == "pipeline":
                assert all(step.get("source", "regex") == "regex" for step in c.config["then"])
        by_part = {p: sorted({source_of(c)[1]["length"] for c in cells if p in c.parts}) for p in parts - {"barrier"}}
        assert by_part["sizes"] == [n] and by_part["lemma1"] == [n]
        expected = {"quick": [8, 12, 16, 20], "full": [8, 16, 24, 32, 48]}[budget]  # Dyck's own grids at its n
        assert by_part["lengths"] == expected
        assert by_part["theorem2"] == expected[:-1]
        assert by_part["lemma4"] == by_part["algorithm2"] == [16 if budget == "full" else 8]
    quick = expand(SPECS["quick"]("regex", {"pattern": PATTERN, "length": 12}))
    boosts = [s["distinguisher"] for c in quick if c.part == "lemma1" for s in c.config["then"]]
    assert "check" in boosts and "optimal" in boosts  # the regex's `valid` checker boosts too


def test_user_source_lengths_move_to_where_the_language_is_not_empty():
    """(abc)* has strings only at multiples of 3: each length of the grids is one, within 3 tokens of n·f."""
    import re as stdlib_re
    from itertools import product

    cells = expand(SPECS["quick"]("regex", {"pattern": "(abc)*", "length": 12}))
    lengths = {source_of(c)[1]["length"] for c in cells if c.part != "barrier"}
    for n in lengths:  # non-empty: by enumeration (re.fullmatch over every string) where it is small, else n % 3
        small = n <= 9
        assert any(stdlib_re.fullmatch("(abc)*", "".join(s)) for s in product("abc", repeat=n)) if small else n % 3 == 0
    wanted = [8, 12, 16, 20]  # Dyck's quick grid at n = 12
    grid = sorted({source_of(c)[1]["length"] for c in cells if "lengths" in c.parts})
    assert len(grid) == 4 and all(abs(a - b) <= 3 and a % 3 == 0 for a, b in zip(grid, wanted))


@pytest.mark.parametrize(
    "args, words",
    [
        ("--source regex --pattern '(a' --length 12", "is not a Python regular expression"),
        ("--source regex --pattern 'a(?=b)' --length 12", "lookahead"),
        ("--source regex --pattern '(ab)*' --length 7", "matches no string of exactly 7 tokens"),
        ("--source regex --pattern '(ab|c)*d' --length 5", "--length ≥ 6"),
        ("--source regex --patern x", "has no parameter 'patern'"),
        ("--pattern ab", "follow --source NAME"),
        ("--source text", "no exact probabilities"),
        ("--source addition", "no length parameter"),
    ],
)
def test_bad_user_source_refused_in_one_line_before_any_folder(tmp_path, args, words):
    out = tmp_path / "run"
    r = cli(f"reproduce {args} --out {out}")
    assert r.exit_code == 2, r.output
    assert words in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not out.exists()


def test_user_source_is_recorded_and_a_resume_with_another_is_refused(tmp_path):
    """The folder's config records the source; another pattern (or none) on the same folder is refused by name,
    before any cell runs (the folder holds only config.json and its lock)."""
    from nextk.errors import InputError
    from nextk.runs.common import prepare, read_json, release
    from nextk.runs.reproduce import Config, run

    cfg = Config(source="regex", source_params={"pattern": PATTERN, "length": 12})
    assert cfg.run_name() == "reproduce-quick-regex"
    prepare(tmp_path, cfg)
    assert read_json(tmp_path / "config.json")["source_params"]["pattern"] == PATTERN
    try:
        for other, field_name in (
            (Config(source="regex", source_params={"pattern": "(a|b)*d", "length": 12}), "source_params"),
            (Config(), "source"),
        ):
            with pytest.raises(InputError, match=f"another config .*{field_name}"):
                run(other, tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "config.json"]
        with pytest.raises(InputError, match="patern"):  # the Python API names a bad parameter
            run(
                Config(source="regex", source_params={"pattern": "ab", "patern": "ab", "length": 2}), tmp_path / "other"
            )
        assert not (tmp_path / "other").exists()
    finally:
        release(tmp_path)


def tiny(spec: dict) -> dict:
    """A test-only budget cut from a spec: no barrier, one seed, two sizes, a few dozen steps per model. Every
    section keeps its run, source and grid over n, so it runs the same code the budget does."""
    small = {"steps": 30, "eval_every": 15, "num_docs": 40, "learned_steps": 10, "learned_docs": 64}
    parts = []
    for part in spec["part"]:
        if part["run"] == "barrier":
            continue
        base, grid = json.loads(json.dumps(part["base"])), dict(part["grid"])
        if part["run"] == "demo":
            base |= small
            grid = {k: v for k, v in grid.items() if k != "seed"} | {"seed": [0]}
            if "sizes" in grid:
                grid["sizes"] = [[2], [8]]
        elif part["run"] == "search":
            base |= {"steps": 20, "num_docs": 40, "max_sizes": 2, "decision_docs": 200}
            grid = {"seed": [0]}
        else:  # pipeline
            base["train"] |= {"steps": 30, "eval_every": 15}
            for step in base["then"]:
                step["num_docs"] = 40
            grid = {k: v[:2] for k, v in grid.items()}
        parts.append(part | {"base": base, "grid": grid})
    return spec | {"part": parts, "retries": 0}


@pytest.mark.slow
def test_reproduce_on_a_regex_end_to_end(tmp_path, monkeypatch):
    """A tiny reproduce on `regex (ab|c)*d`: every cell finishes, every measured row is the regex's, the report
    is drawn (the budget's sections with test-sized steps, no barrier; about a minute on 2 cores)."""
    from nextk.runs import reproduce

    quick = reproduce.SPECS["quick"]
    monkeypatch.setitem(reproduce.SPECS, "quick", lambda source, params: tiny(quick(source, params)))
    monkeypatch.setattr(reproduce, "CALIBRATION_TABLES", 20)
    r = cli(f"reproduce --source regex --pattern '{PATTERN}' --length 8 --workers 2 --out {tmp_path} --json")
    assert r.exit_code == 0, r.output[-2000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["source"] == {"name": "regex", "params": {"pattern": PATTERN, "length": 8}}
    assert res["sweep"]["ok"] == res["sweep"]["cells"] and not res["sweep"]["failed"]
    rows = json.loads((tmp_path / "table.json").read_text())
    rows = rows["rows"] if isinstance(rows, dict) else rows
    measured = [row for row in rows if row.get("stage") in ("measure", "boost", "bits", "search")]
    assert measured and {row.get("source_name", row.get("source")) for row in measured} == {"regex"}
    lengths = {row["length"] for row in measured if row.get("stage") == "measure"}
    assert lengths == {5, 8, 11, 13}  # round(8·f), f = 2/3, 1, 4/3, 5/3
    assert [s["key"] for s in res["sections"]] == [f.__name__ for f in v.ANALYSES]
    assert v.theorem3(rows)["verdict"] != v.VIOLATED
    assert (tmp_path / "report.md").is_file() and (tmp_path / "report.html").is_file()
    assert f"on regex(pattern={PATTERN!r}, length=8)" in (tmp_path / "report.md").read_text().splitlines()[0]


def test_source_options_reach_the_config(monkeypatch):
    """`--source NAME` takes its `--param value` pairs (typed as for every other command); the default folder names
    the source."""
    import nextk.cli_build

    seen = {}
    monkeypatch.setattr(nextk.cli_build, "execute", lambda kind, cfg, out, **kw: seen.update(cfg=cfg, out=out))
    r = cli(f"reproduce --source regex --pattern '{PATTERN}' --length 12 --budget full")
    assert r.exit_code == 0, r.output
    assert (seen["cfg"].source, seen["cfg"].source_params, seen["cfg"].budget) == (
        "regex",
        {"pattern": PATTERN, "length": 12},
        "full",
    )
    assert str(seen["out"]).endswith("reproduce-full-regex")
    r = cli("reproduce --source pfsa --rank 2 --seed 3")
    assert r.exit_code == 0 and seen["cfg"].source_params == {"rank": 2, "seed": 3}
    r = cli("reproduce")
    assert r.exit_code == 0 and (seen["cfg"].source, seen["cfg"].source_params) == (None, {})
    assert str(seen["out"]).endswith("reproduce-quick")
