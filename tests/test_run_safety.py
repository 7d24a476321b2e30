"""No silent wrong answers in the runs (issue 20): a mismatch refused by name before any folder is claimed, a
folder written by one process at a time, a killed sweep taking its cells with it, failures that exit non-zero,
errors on stderr, sizes checked against memory before it is spent, the Python API refusing bad types by name."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nextk.cli import main
from nextk.errors import InputError
from tests.cli_tools import DYCK8, cli, cli_json

ROOT = Path(__file__).resolve().parents[1]
TRAIN = f"train {DYCK8} --hidden 4 --steps 20 --eval-every 10"


def nextk(args: str) -> tuple[int, str, str]:
    """`nextk ARGS` in this process through the entry point: (exit code, stdout, stderr)."""
    import shlex

    with CliRunner().isolation() as (stdout, stderr, _):
        try:
            main(shlex.split(args))
            code = 0
        except SystemExit as e:
            code = e.code
        sys.stdout.flush()
        sys.stderr.flush()
        return code, stdout.getvalue().decode(), stderr.getvalue().decode()


def refused(args: str, *needles: str) -> str:
    code, out, err = nextk(args)
    assert code == 2 and out == "" and err.startswith("error:") and len(err.strip().splitlines()) == 1, (code, out, err)
    assert "Traceback" not in err and all(n in err for n in needles), (needles, err)
    return err


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("g") / "g"
    cli_json(f"{TRAIN} --out {folder}")
    return folder


def test_boost_on_another_source_is_refused_before_any_folder(trained, tmp_path):
    refused(f"boost {trained} parity --k 2 --out {tmp_path / 'b'}", "trained on dyck", "--allow-other-source")
    assert not (tmp_path / "b").exists()
    other = "dyck --length 10 --max-depth 3"
    code, _, err = nextk(f"boost {trained} {other} --k 2 --num-docs 16 --allow-other-source --out {tmp_path / 'b'}")
    assert code == 0 and "warning" in err and "trained on dyck" in err, err


def test_a_smaller_budget_than_the_run_has_taken_is_refused(tmp_path):
    folder = tmp_path / "x"
    cli_json(f"{TRAIN} --out {folder}")
    refused(f"{TRAIN.replace('--steps 20', '--steps 10')} --out {folder}", "already trained 20 steps", "--steps 10")
    assert json.loads((folder / "config.json").read_text())["steps"] == 20  # the folder still says what it holds
    assert json.loads((folder / "results.json").read_text())["steps"] == 20


def test_a_failed_validation_claims_no_folder(tmp_path):
    folder = tmp_path / "x"
    refused(f"{TRAIN} --lr -1 --out {folder}", "--lr")
    assert not folder.exists()
    from nextk.runs import train

    with pytest.raises(InputError, match="lr must be > 0"):  # the Python API checks before claiming too
        train.run(train.Config("dyck", {"length": 8, "max_depth": 3}, width=4, steps=5, lr=-1.0), folder)
    assert not folder.exists()
    assert cli_json(f"{TRAIN} --lr 0.003 --out {folder}")["steps"] == 20  # the corrected command is not refused


def hold_lock(folder: Path) -> subprocess.Popen:
    code = (
        f"import time; from nextk.runs.common import lock; lock({str(folder)!r}); print('held', flush=True);"
        "time.sleep(120)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_run_folder_is_written_by_one_process_at_a_time(tmp_path):
    folder = tmp_path / "x"
    holder = hold_lock(folder)
    try:
        refused(f"{TRAIN} --out {folder}", "in use by another nextk run", f"pid {holder.pid}")
        assert not (folder / "config.json").exists()
    finally:
        holder.kill()  # the kernel releases a dead process's lock: no stale lock blocks the next run
        holder.wait()
    assert cli_json(f"{TRAIN} --out {folder}")["steps"] == 20


def test_a_cell_folder_is_locked_too(tmp_path):
    from nextk.runs.sweep import run_cell

    holder = hold_lock(tmp_path / "cell")
    try:
        with pytest.raises(InputError, match=f"pid {holder.pid}"):
            run_cell("tests.sweep_runs", {"x": 2}, tmp_path / "cell")
    finally:
        holder.kill()
        holder.wait()
    assert run_cell("tests.sweep_runs", {"x": 2}, tmp_path / "cell")["x"] == 2


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_the_sweep_driver_takes_its_cells_with_it(tmp_path):
    out = tmp_path / "out"
    spec = {"name": "t", "run": "tests.sweep_runs", "retries": 0, "base": {"sleep": 60.0}, "grid": {"x": [1, 2]}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    code = f"import json, nextk; nextk.sweep(json.load(open({str(tmp_path / 'spec.json')!r})), {str(out)!r}, workers=2)"
    driver = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    deadline = time.time() + 120
    while len(list(out.glob("cells/*/log.txt"))) < 2 or any(p.stat().st_size == 0 for p in out.glob("cells/*/log.txt")):
        assert time.time() < deadline and driver.poll() is None
        time.sleep(0.1)
    pids = [int(p.read_text().split(" pid ")[1].split()[0]) for p in out.glob("cells/*/log.txt")]
    assert all(alive(pid) for pid in pids)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    deadline = time.time() + 5
    while any(alive(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in pids), "a cell outlived the killed sweep"


def test_a_sweep_whose_cells_failed_exits_nonzero_saying_how_many(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('name = "f"\nrun = "tests.sweep_runs"\nretries = 0\n[base]\nfail = "raise"\n[grid]\nx = [1, 2]\n')
    code, out, err = nextk(f"sweep {spec} --out {tmp_path / 'o'} --workers 1")
    assert code == 1 and "2 of 2 cells failed" in err, (code, err)


def test_sweep_workers_zero_and_a_bad_cell_config_are_refused_before_any_cell(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('name = "g"\nrun = "train"\n[base]\nsource = "dyck"\n[grid]\nsteps = [20, -10]\n')
    refused(f"sweep {spec} --out {tmp_path / 'o'} --workers 0", "--workers must be ≥ 1")
    refused(f"sweep {spec} --out {tmp_path / 'o'}", "steps=-10", "steps must be ≥ 1")
    assert not (tmp_path / "o").exists()  # not one cell ran, not retried cell by cell


def test_errors_go_to_stderr_and_stdout_holds_only_results():
    r = subprocess.run([sys.executable, "-m", "nextk", "sample", "foo", "--json"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.startswith("error: unknown source 'foo'"), r
    code, out, err = nextk("sample dyck --num 2 --json")
    assert code == 0 and err == "" and len(json.loads(out)["samples"]) == 2


@pytest.mark.parametrize("command", ["train dyck --steps 2", "demo --steps 2", "sweep {spec}"])
def test_an_unwritable_out_is_one_line(tmp_path, command):
    spec = tmp_path / "s.toml"
    spec.write_text('name = "u"\nrun = "tests.sweep_runs"\n[grid]\nx = [1]\n')
    refused(f"{command.format(spec=spec)} --out /proc/nextk-x", "/proc/nextk-x")


def test_plot_of_a_results_json_nextk_did_not_write(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"run": "train"}))
    (tmp_path / "results.json").write_text(json.dumps({"something": "else"}))
    refused(f"plot {tmp_path}", "not the results of a nextk train run")
    (tmp_path / "config.json").write_text(json.dumps({"run": "../../etc"}))
    refused(f"plot {tmp_path}", "does not say which nextk run")


def test_the_python_api_refuses_bad_types_by_name():
    from nextk.bounds import theorem3
    from nextk.models import GRU
    from nextk.sources.dyck import Dyck

    with pytest.raises(InputError, match="Dyck: length must be an integer, got '12'"):
        Dyck(length="12")
    with pytest.raises(InputError, match="GRU: hidden must be an integer, got '8'"):
        GRU(4, hidden="8")
    with pytest.raises(InputError, match="KL must be a number, got 'a'"):
        theorem3("a", 2, 8)
    assert theorem3(0.5, 2, 8) == pytest.approx((2 * 0.5 / (2 * 7)) ** 0.5)  # m = n − k + 1 = 7


@pytest.mark.parametrize(
    "command, needles",
    [
        ("sample hmm --vocab-size 100000000", ["vocab_size 100,000,000", "single-character"]),
        ("sample hmm --vocab-size 1000000 --n-states 100000", ["GiB of memory"]),
        ("sample dyck --num 100000000", ["100,000,000 documents", "GiB of memory"]),
        ("train dyck --hidden 100000 --out {tmp}/t", ["parameters", "GiB of memory"]),
    ],
)
def test_sizes_beyond_memory_are_refused_with_the_figure_before_it_is_spent(tmp_path, command, needles):
    import resource

    t0, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    refused(command.format(tmp=tmp_path), *needles)
    assert time.perf_counter() - t0 < 10
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 2**20  # KiB: less than 1 GiB grew
    assert not (tmp_path / "t").exists()


def test_the_memory_budget_reads_the_address_space_limit():
    """Under an address-space limit (ulimit -v), the budget is that limit, so a size that fits the machine but not
    the process is refused by name instead of dying in the allocator."""
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30));"
        "from nextk.errors import memory_budget; print(memory_budget())"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and int(r.stdout) <= 3 * 2**30, r
    assert cli("sample dyck --num 3").exit_code == 0


def tiny_demo():
    from nextk.runs.demo import Config

    return Config(
        source_params={"n_types": 1, "max_depth": 3, "length": 8},
        sizes=[2],
        steps=20,
        eval_every=10,
        ks=[1, 2],
        num_docs=20,
        learned_steps=2,
        learned_docs=32,
    )


def test_an_interrupted_demo_keeps_its_measured_windows(tmp_path, monkeypatch):
    import nextk.runs.demo as demo

    real, calls = demo.measure_model, []

    def failing(source, model, ks, **kw):
        calls.append(list(ks))
        if ks == [2]:
            raise KeyboardInterrupt
        return real(source, model, ks, **kw)

    monkeypatch.setattr(demo, "measure_model", failing)
    with pytest.raises(KeyboardInterrupt):
        demo.run(tiny_demo(), tmp_path / "cut")
    assert calls == [[1], [2]]

    def counting(source, model, ks, **kw):
        calls.append(list(ks))
        return real(source, model, ks, **kw)

    calls.clear()
    monkeypatch.setattr(demo, "measure_model", counting)
    said = []
    resumed = demo.run(tiny_demo(), tmp_path / "cut", log=said.append)
    assert calls == [[2]] and any("k=1: measured before" in line for line in said), (calls, said)
    whole = demo.run(tiny_demo(), tmp_path / "whole")  # uninterrupted, in another folder
    for a, b in zip(resumed["models"], whole["models"]):
        assert a["windows"] == b["windows"] and a["excess_loss"] == b["excess_loss"]


def test_an_interrupted_search_resumes_its_repeats_and_sizes(tmp_path, monkeypatch):
    import nextk.runs.search as search_run
    from nextk.train import Interrupted

    cfg = search_run.Config("dyck", {"length": 8, "max_depth": 3}, family="gru", steps=20, repeats=2, measure=False)
    real, calls = search_run.search, []

    def cut(source, *, seed, **kw):
        calls.append(seed)
        if seed == 1:  # the second repeat is interrupted
            raise Interrupted(3, None, None)
        return real(source, seed=seed, **kw)

    monkeypatch.setattr(search_run, "search", cut)
    with pytest.raises(KeyboardInterrupt):  # the CLI says "interrupted; what was finished is in DIR"
        search_run.run(cfg, tmp_path / "cut")
    assert (tmp_path / "cut" / "repeat-0.json").is_file() and list((tmp_path / "cut" / "repeat-0").glob("size-*"))
    monkeypatch.setattr(search_run, "search", real)
    said = []
    resumed = search_run.run(cfg, tmp_path / "cut", log=said.append)
    assert any("repeat 1 of 2: finished before" in line for line in said), said
    (tmp_path / "cut" / "repeat-1.json").unlink()  # as if cut during repeat 2: its sizes are checkpointed
    saved = {p: p.stat().st_mtime_ns for p in (tmp_path / "cut" / "repeat-1").glob("size-*/model.safetensors")}
    assert len(saved) >= 2
    again = search_run.run(cfg, tmp_path / "cut")
    assert {p: p.stat().st_mtime_ns for p in saved} == saved  # a checkpointed size is not trained again
    whole = search_run.run(cfg, tmp_path / "whole")
    for res in (resumed, again):
        assert res["two_sizes"] == whole["two_sizes"]
        assert [r["losses"] for r in res["runs"]] == [r["losses"] for r in whole["runs"]]


def test_a_pipeline_cell_is_checked_whole_before_any_cell_runs():
    from nextk.runs.sweep import expand

    with pytest.raises(InputError, match="steps must be ≥ 1"):
        expand({"run": "pipeline", "base": {"train": {"source": "dyck", "steps": -10}}, "grid": {}})
    with pytest.raises(InputError, match="num_docs must be ≥ 1"):
        expand({"run": "pipeline", "base": {"train": {"source": "dyck"}, "then": [{"run": "eval", "num_docs": 0}]}})


def test_construct_advice_applies_to_construct(tmp_path):
    refused(f"construct hmm --out {tmp_path / 'c'}", "parity or dyck", "'hmm'")
    err = refused(f"construct parity --length 30 --out {tmp_path / 'c'}", "2^30", "shorter --length")
    assert "sampling estimator" not in err and not (tmp_path / "c").exists()


def test_eval_says_what_it_measures_before_the_long_part(trained):
    code, out, err = nextk(f"eval {trained} {DYCK8} --k 1 --num-docs 10 --learned-steps 2 --learned-docs 16")
    err = " ".join(err.split())  # the console wraps long lines
    assert code == 0 and "measuring gru-4" in err and "(documents of 8 tokens): excess loss" in err, err
    assert err.index("measuring") < err.index("k=1:")  # said before the measurement, then each k as it ends


@pytest.mark.parametrize("param", ["dyck --max-depth", "dyck --length", "factorization --digits", "parity --block"])
def test_a_huge_source_parameter_is_one_line(param):
    refused(f"sample {param} {10**30} --num 2", "is beyond the 1,000,000")


@pytest.mark.parametrize(
    "command",
    ["demo --num-docs 100000000", "search dyck --decision-docs 1000000000", "eval {g} " + DYCK8 + " --num-docs 10**9"],
)
def test_document_counts_beyond_memory_are_refused_with_the_figure(trained, tmp_path, command):
    command = command.replace("10**9", str(10**9)).format(g=trained)
    refused(f"{command} --out {tmp_path / 'r'}", "documents of", "GiB of memory")
    assert not (tmp_path / "r").exists()


def test_two_trains_into_one_folder_the_second_is_refused(tmp_path):
    folder = tmp_path / "x"
    args = [*DYCK8.split(), "--hidden", "4", "--steps", "100000", "--eval-every", "1000", "--out", str(folder)]
    first = subprocess.Popen([sys.executable, "-m", "nextk", "train", *args], cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (folder / "config.json").is_file():
            assert first.poll() is None and time.time() < deadline
            time.sleep(0.05)
        refused(f"train {' '.join(args)}", "in use by another nextk run", f"pid {first.pid}")
    finally:
        first.kill()
        first.wait()


def test_eval_shows_it_is_alive_while_it_measures(trained):
    """On a terminal (FORCE_COLOR makes rich treat stderr as one), a spinner with the elapsed time runs while the
    panel is measured, on stderr; stdout holds only the results."""
    import re

    args = [*DYCK8.split(), "--k", "1", "--num-docs", "20", "--learned-steps", "300"]
    env = {**__import__("os").environ, "FORCE_COLOR": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "nextk", "eval", str(trained), *args], capture_output=True, env=env)
    err = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", r.stderr.decode())
    out = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", r.stdout.decode())
    assert r.returncode == 0 and re.search(r"measuring gru-4 0:00:\d\d", err), err
    assert "measuring" not in out and "excess loss" in out


def test_a_reproduce_whose_cells_failed_exits_nonzero(tmp_path, monkeypatch):
    """reproduce keeps its sweep summary under "sweep": failed cells there make the command fail too (exit 1)."""
    import nextk.runs.reproduce as reproduce

    def run(cfg, out, **_):
        return {"budget": cfg.budget, "sweep": {"cells": 3, "failed": [{"cell": "a", "attempts": 2, "error": "x"}]}}

    monkeypatch.setattr(reproduce, "run", run)
    monkeypatch.setattr(reproduce, "draw", lambda results, out: [])
    monkeypatch.setattr(reproduce, "show", lambda results: [])
    code, out, err = nextk(f"reproduce --budget quick --out {tmp_path / 'r'}")
    assert code == 1 and "1 of 3 cells failed" in err, (code, err)


def test_a_checkpoint_is_never_measured_where_its_token_ids_mean_other_tokens(tmp_path):
    folder = tmp_path / "r"
    cli_json(f"train regex --pattern '(ab|c)*d' --length 6 --hidden 4 --steps 5 --eval-every 5 --out {folder}")
    other = "regex --pattern '(ab|e)*d' --length 6 --k 1 --num-docs 10 --learned-steps 2"
    refused(f"eval {folder} {other} --allow-other-source", "token names", "['a', 'b', 'c', 'd']", "'e'")


def test_user_text_in_progress_lines_is_not_read_as_markup(tmp_path):
    """A pattern "[bold]+" and a folder "[red]x" are text: rich must not eat them as style tags."""
    folder = tmp_path / "[red]x"
    code, _, err = nextk(f"train regex --pattern '[bold]+' --length 4 --hidden 4 --steps 2 --out '{folder}'")
    assert code == 0 and f"wrote{folder}/config.json" in "".join(err.split()), err  # lines wrap anywhere
    code, _, err = nextk(f"eval '{folder}' regex --pattern '[bold]+' --length 4 --k 1 --num-docs 10 --learned-steps 2")
    assert code == 0 and "Regex(pattern='[bold]+'" in "".join(err.split()), err


def test_plot_names_a_results_file_that_is_not_utf8(trained, tmp_path):
    import shutil

    folder = tmp_path / "p"
    shutil.copytree(trained, folder)
    (folder / "results.json").write_bytes(b'{"x": "\xff"}')
    refused(f"plot {folder}", "results.json", "is not UTF-8")
