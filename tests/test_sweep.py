"""`nextk sweep`: the spec, cells and their ids, skipping finished cells, resuming after a kill, retrying and
reporting failures, and the same table from the local and the Ray backend."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nextk
from nextk.errors import InputError
from nextk.runs.sweep import CELL, CELLS, expand, normalise, read_table
from tests.cli_tools import cli

ROOT = Path(__file__).resolve().parents[1]
RUN = "tests.sweep_runs"  # a run module that counts its calls, sleeps, raises or kills itself on demand


def spec(counter: Path, **part) -> dict:
    return {"name": "t", "run": RUN, "retries": 1, "base": {"counter": str(counter)}, "grid": {"x": [1, 2, 3]}} | part


def calls(counter: Path) -> dict[int, int]:
    out: dict[int, int] = {}
    for line in counter.read_text().splitlines() if counter.is_file() else []:
        x = int(line.split()[0])
        out[x] = out.get(x, 0) + 1
    return out


def test_spec_cells_and_ids(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text(
        'name = "demo-grid"\nrun = "tests.sweep_runs"\n[base]\nsleep = 0.0\n[grid]\nx = [1, 2]\nseed = [0, 1]\n'
        '[[part]]\nname = "more"\nrun = "tests.sweep_runs"\n[part.grid]\nx = [2, 5]\nseed = [0]\n'
    )
    cells = expand(str(toml))
    assert len(cells) == 5  # (x=2, seed=0) is in both parts: one cell
    shared = next(c for c in cells if c.axes == {"x": 2, "seed": 0})
    assert shared.parts == ["demo-grid", "more"]
    assert [c.id for c in expand(str(toml))] == [c.id for c in cells]  # stable
    assert all(c.id.startswith("sweep_runs-") and len(c.digest) == 10 and c.id.endswith(c.digest) for c in cells)
    assert cells[0].config == {"x": 1, "seed": 0, "sleep": 0.0, "fail": "", "counter": ""}  # defaults included
    with pytest.raises(InputError, match="unknown sweep spec keys"):
        normalise({"run": RUN, "grids": {}})
    with pytest.raises(InputError, match="needs a non-empty list"):
        normalise({"run": RUN, "grid": {"x": 3}})
    with pytest.raises(InputError, match="unknown"):
        expand({"run": RUN, "grid": {"nosuch": [1]}})
    with pytest.raises(InputError, match="no run module"):
        expand({"run": "nosuch_module_here", "grid": {}})
    with pytest.raises(InputError, match="names no run"):
        normalise({"part": [{"name": "p"}]})


def test_skips_finished_cells_and_resumes_after_the_sweep_is_killed(tmp_path):
    counter, out = tmp_path / "calls.txt", tmp_path / "out"
    s = spec(counter, grid={"x": [1, 2, 3, 4]}, base={"counter": str(counter), "sleep": 1.0})
    (tmp_path / "spec.json").write_text(json.dumps(s))
    code = f"import json, nextk; nextk.sweep(json.load(open({str(tmp_path / 'spec.json')!r})), {str(out)!r}, workers=1)"
    driver = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob(f"{CELLS}/*/{CELL}"))) < 1:
        time.sleep(0.1)
    driver.send_signal(signal.SIGKILL)  # the driver dies mid-sweep: its running cell must go with it
    driver.wait()
    before = {p.parent.name for p in out.glob(f"{CELLS}/*/{CELL}")}
    assert 1 <= len(before) < 4
    time.sleep(1.5)  # the orphaned cell notices its parent is gone (it polls every 0.5 s) and ends itself
    seen = calls(counter)
    time.sleep(1.5)
    assert calls(counter) == seen  # nothing kept running after the kill
    res = nextk.sweep(s, out, workers=2)
    assert res["skipped"] == len(before) and res["ok"] == 4 and not res["failed"]
    rows = {r["x"]: r for r in res["rows"]}
    assert [rows[x]["square"] for x in (1, 2, 3, 4)] == [1, 4, 9, 16]
    finished_first = {r["x"] for r in res["rows"] if r["cell"] in before}
    assert all(calls(counter)[x] == 1 for x in finished_first)  # finished cells were not run again
    done = calls(counter)
    again = nextk.sweep(s, out)
    assert again["skipped"] == 4 and again["ran"] == 0 and calls(counter) == done


def test_a_cell_that_kills_its_own_process_is_retried(tmp_path):
    counter = tmp_path / "calls.txt"
    res = nextk.sweep(spec(counter, grid={"x": [1, 2]}, base={"counter": str(counter), "fail": "kill"}), tmp_path / "o")
    assert res["ok"] == 2 and not res["failed"]
    assert all(r["attempts"] == 2 and r["status"] == "ok" for r in res["rows"])
    record = json.loads(next((tmp_path / "o" / CELLS).glob(f"*/{CELL}")).read_text())
    assert "SIGKILL" in record["errors"][0]


def test_a_failing_cell_is_retried_then_reported_and_the_others_complete(tmp_path):
    counter = tmp_path / "calls.txt"
    s = spec(
        counter,
        retries=2,
        part=[{"name": "bad", "run": RUN, "base": {"fail": "raise", "counter": str(counter)}, "grid": {"x": [7]}}],
    )
    res = nextk.sweep(s, tmp_path / "o", workers=2)
    assert res["ok"] == 3 and [f["cell"] for f in res["failed"]] == [c.id for c in expand(s) if c.axes == {"x": 7}]
    assert calls(counter)[7] == 3  # one attempt and two retries
    bad = next(r for r in res["rows"] if r["x"] == 7)
    assert bad["status"] == "failed" and bad["attempts"] == 3 and "fails on purpose" in bad["error"]
    assert bad["fail"] == "raise" and "square" not in bad  # its config columns, no figures
    good = [r for r in res["rows"] if r["status"] == "ok"]
    assert sorted(r["square"] for r in good) == [1, 4, 9] and all(r["square_high"] == r["square"] + 1 for r in good)
    csv_text = (tmp_path / "o" / "table.csv").read_text()
    assert "fails on purpose" in csv_text and csv_text.count("\n") == 5
    if (tmp_path / "o" / "table.parquet").exists():
        import pyarrow.parquet as pq

        assert pq.read_table(tmp_path / "o" / "table.parquet").num_rows == 4


def test_sweep_command_and_table(tmp_path, monkeypatch):
    counter = tmp_path / "calls.txt"
    toml = tmp_path / "grid.toml"
    toml.write_text(
        f'run = "{RUN}"\ncolumns = {{ again = "square" }}\n[base]\ncounter = "{counter}"\n[grid]\nx = [2, 3]\n'
    )
    r = cli(f"sweep {toml} --out {tmp_path / 'o'} --workers 2 --json")
    assert r.exit_code == 0, r.output
    rows = read_table(tmp_path / "o")
    assert [row["again"] for row in rows] == [4, 9] and rows[0]["again_low"] == 3
    monkeypatch.chdir(tmp_path)  # the default folder would land here
    assert cli(f"sweep {tmp_path / 'nope.toml'}").exit_code == 2
    assert not (tmp_path / "nextk-runs").exists()


def train_grid() -> dict:
    """A real, seeded grid: two GRU widths trained 20 steps on Dyck of length 8."""
    base = {
        "source": "dyck",
        "source_params": {"n_types": 1, "max_depth": 3, "length": 8},
        "steps": 20,
        "eval_every": 10,
        "batch_size": 16,
    }
    return {"name": "backends", "run": "train", "base": base, "grid": {"width": [2, 4]}}


def test_local_and_ray_give_the_same_table(tmp_path):
    ray = pytest.importorskip("ray")
    local = nextk.sweep(train_grid(), tmp_path / "local", workers=2)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = nextk.sweep(train_grid(), tmp_path / "ray", backend="ray")
    finally:
        ray.shutdown()
    assert local["ok"] == remote["ok"] == 2

    def figures(rows):
        return [{k: v for k, v in r.items() if k != "cell_seconds"} for r in rows]

    assert figures(local["rows"]) == figures(remote["rows"])
    assert local["rows"][0]["excess_loss"] is not None and local["rows"][0]["excess_loss_low"] is not None


def test_a_bad_source_parameter_stops_the_sweep_before_any_cell_runs(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text(
        'run = "nextk.runs.train"\n[base]\nsource = "regex"\nsteps = 2\nwidth = 4\n'
        '[base.source_params]\nlength = 6\n[grid]\n"source_params.pattern" = ["(ab|c)*d", "(a)\\\\1"]\n'
    )
    r = cli(f"sweep {toml} --out {tmp_path / 'o'}")
    assert r.exit_code == 2 and r.output.startswith("error:") and "(a)\\\\1" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_a_cell_with_bad_input_is_not_retried(tmp_path):
    counter = tmp_path / "calls.txt"
    s = spec(counter, retries=2, grid={"x": [1]}, base={"counter": str(counter), "fail": "input"})
    res = nextk.sweep(s, tmp_path / "o", workers=1)
    assert res["ok"] == 0 and calls(counter)[1] == 1 and res["rows"][0]["attempts"] == 1
    assert "bad input on purpose" in res["rows"][0]["error"]


def test_the_sweeps_in_docs_languages_have_valid_cells():
    """Every TOML sweep in docs/languages.md expands, each cell's config and source built (rank ≤ min(states,
    vocab − 1) for the PFSA rank sweep)."""
    import re as regex
    import tomllib

    text = (ROOT / "docs" / "languages.md").read_text()
    blocks = [b for b in regex.findall(r"```toml\n(.*?)```", text, flags=regex.S) if "[grid]" in b]
    assert blocks
    for block in blocks:
        cells = expand(tomllib.loads(block))
        assert len(cells) > 1
