"""The thread policy (nextk/threads.py): --threads and NEXTK_THREADS reach torch in the command's process and in
sweep workers; the default applies when nextk is imported; bad values are one-line errors."""

import json
import os
import subprocess
import sys

import pytest
import torch
from cli_tools import cli

import nextk.threads as threads

RUN = "tests.thread_runs"  # tests/thread_runs.py: records torch.get_num_threads() in the worker


@pytest.fixture(autouse=True)
def restore(monkeypatch):
    """Each test may change the policy: its environment and torch's count come back afterwards."""
    for var in (threads.ENV, "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, os.environ.get(var, "1"))
    monkeypatch.delenv(threads.ENV)
    monkeypatch.setattr(threads, "_explicit", None)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def sweep_threads(tmp_path, args: str, cpus: int = 1) -> tuple[int, list[int]]:
    """Run a two-cell sweep of thread_runs; (torch threads in this process afterwards, threads seen by each cell)."""
    spec = tmp_path / "t.toml"
    spec.write_text(f'run = "{RUN}"\n[resources]\ncpus = {cpus}\n[grid]\nx = [1, 2]\n')
    r = cli(args.format(spec=spec, out=tmp_path / "o"))
    assert r.exit_code == 0, r.output
    cells = sorted((tmp_path / "o" / "cells").iterdir())
    return torch.get_num_threads(), [json.loads((c / "results.json").read_text())["threads"] for c in cells]


@pytest.mark.parametrize("n", [1, 3])
def test_threads_option_reaches_torch_in_the_command_and_its_sweep_workers(tmp_path, n):
    torch.set_num_threads(2)  # something else than what is asked, so a lost option shows
    here, cells = sweep_threads(tmp_path, f"sweep {{spec}} --out {{out}} --workers 1 --threads {n} --json", cpus=2)
    assert here == n and cells == [n, n]


def test_global_threads_option_and_environment_reach_the_workers(tmp_path, monkeypatch):
    torch.set_num_threads(2)
    here, cells = sweep_threads(tmp_path, "--threads 1 sweep {spec} --out {out} --workers 1 --json", cpus=2)
    assert here == 1 and cells == [1, 1]
    monkeypatch.setattr(threads, "_explicit", None)  # a fresh command process
    monkeypatch.setenv(threads.ENV, "3")
    (tmp_path / "env").mkdir()
    here, cells = sweep_threads(tmp_path / "env", "sweep {spec} --out {out} --workers 1 --json", cpus=1)
    assert here == 3 and cells == [3, 3]


def test_without_a_choice_a_cell_runs_on_its_resources_cpus(tmp_path):
    _, cells = sweep_threads(tmp_path, "sweep {spec} --out {out} --workers 1 --json", cpus=2)
    assert cells == [2, 2]


def test_train_command_runs_on_the_threads_asked(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr("nextk.cli_build.execute", lambda *a, **k: seen.append(torch.get_num_threads()))
    torch.set_num_threads(2)
    assert cli("train dyck --length 8 --steps 1 --threads 1").exit_code == 0
    assert seen == [1]


@pytest.mark.parametrize("value", ["0", "-2"])
def test_bad_thread_counts_are_one_line_errors(value, monkeypatch):
    r = cli(f"--threads {value} sources")
    assert r.exit_code == 2 and "threads" in r.output and len(r.output.strip().splitlines()) == 1
    r = cli(f"train dyck --threads {value}")
    assert r.exit_code == 2 and "threads" in r.output and "Traceback" not in r.output
    monkeypatch.setenv(threads.ENV, "many")
    r = cli("sources")
    assert r.exit_code == 2 and "NEXTK_THREADS" in r.output and len(r.output.strip().splitlines()) == 1


def torch_threads_on_import(env: dict) -> int:
    """torch.get_num_threads() in a fresh interpreter that imports nextk's interface under `env`."""
    clean = {k: v for k, v in os.environ.items() if k not in (threads.ENV, "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    code = "import nextk.lm, torch; print(torch.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_library_import_applies_the_policy():
    assert torch_threads_on_import({}) == threads.DEFAULT_THREADS  # torch alone would take every core
    assert torch_threads_on_import({threads.ENV: "2"}) == 2
    assert torch_threads_on_import({"OMP_NUM_THREADS": "2"}) == 2  # a user's own OMP setting stands


def test_heavy_work_takes_idle_cores_unless_a_choice_was_made(monkeypatch):
    monkeypatch.setattr(threads, "idle_cores", lambda: 4)
    assert threads.threads_for_work(1e12) == 1  # this session's OMP_NUM_THREADS=1 stands
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert threads.threads_for_work(1e6) == 1
    assert threads.threads_for_work(1e12) == 4
    threads.set_threads(2)
    assert threads.threads_for_work(1e12) == 2 and torch.get_num_threads() == 2
