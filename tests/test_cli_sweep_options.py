"""A sweep generated from the command line itself: every command, every numeric option (read from the typer/click
app, so an option added tomorrow is covered without editing this file), each given 0, −1, a huge value and a
non-number. Each must exit 2 with one line on stderr and nothing on stdout, no traceback, no folder made, fast.

0 and −1 are skipped for an option only where its own bounds take them (`nextk.errors.bounds`, the one table
the options and the Config fields are checked against; e.g. a seed takes 0): no hand list here."""

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from nextk.cli import app, main
from nextk.errors import bounds

HUGE = "1" + "0" * 30
POSITIONAL = {"source": "dyck", "checkpoint": "ckpt", "spec": "spec.toml", "folder": "run"}  # a value each needs


def leaves(group, path=()):
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from leaves(cmd, (*path, name))
        else:
            yield (*path, name), cmd


def numeric_kind(p):
    """int or float for a numeric option (a comma list: its items, as int), None for any other."""
    annotation = p.type_descriptor.annotation
    for kind in (int, float):
        if annotation in (kind, kind | None):
            return kind
    return int if p.metavar == "A,B,…" else None


def cases():
    """(command words, option flag, value, why it must fail) for every numeric option of every command."""
    out = []
    for path, cmd in leaves(typer.main.get_command(app)):
        args = [POSITIONAL[p.name] for p in cmd.params if p.param_type_name == "argument" and p.required]
        for p in cmd.params:
            kind = numeric_kind(p) if p.param_type_name == "option" else None
            if kind is None:
                continue
            low, high, open_low = bounds(p.name, kind, p.default if isinstance(p.default, (int, float)) else None)
            flag = p.opts[0]
            for value in ("0", "-1", HUGE, "abc"):
                if value in ("0", "-1"):
                    v = int(value)
                    if (v > low or (v == low and not open_low)) and v <= high:
                        continue  # the option's own bounds take this value
                out.append((" ".join(path), [*path, *args, flag, value], p.name))
    return out


CASES = cases()


def invoke(args: list[str]) -> tuple[int, str, str]:
    """`nextk ARGS` in this process, through the entry point (exit code, stdout, stderr)."""
    runner = CliRunner()
    with runner.isolation() as (stdout, stderr, _):
        try:
            main(args)
            code = 0
        except SystemExit as e:
            code = e.code
        return code, stdout.getvalue().decode(), stderr.getvalue().decode()


def check_refused(code: int, out: str, err: str, args: list[str]) -> None:
    assert code == 2, (args, code, out, err)
    assert out == "", (args, out)  # stdout holds only results
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, (args, err)


def test_the_sweep_covers_every_command_with_numeric_options():
    commands = {c for c, _, _ in CASES}
    assert {"train", "demo", "eval", "boost", "search", "bits", "construct", "sweep", "sample"} <= commands
    assert {"barrier report", "barrier sampling", "barrier primes", "reproduce"} <= commands
    assert len({(c, name) for c, _, name in CASES}) > 80  # every numeric option, comma lists included


def test_every_numeric_option_refuses_bad_values_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a default run folder would land here
    start = time.perf_counter()
    for _, args, _ in CASES:
        extra = ["--out", str(tmp_path / "out")] if "--out" in option_flags(args) else []
        t0 = time.perf_counter()
        code, out, err = invoke([*args, *extra])
        check_refused(code, out, err, args)
        assert time.perf_counter() - t0 < 10, args
        assert list(tmp_path.iterdir()) == [], (args, list(tmp_path.iterdir()))  # no folder made
    assert time.perf_counter() - start < 60


def option_flags(args: list[str]) -> set[str]:
    group = typer.main.get_command(app)
    cmd = group
    for word in args:
        if not hasattr(cmd, "commands") or word not in cmd.commands:
            break
        cmd = cmd.commands[word]
    return {o for p in cmd.params for o in p.opts}


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))  # 1 GiB of address space


@pytest.mark.parametrize("pick", [0, len(CASES) // 3, len(CASES) // 2, -1])
def test_a_sample_of_the_sweep_through_a_real_process(tmp_path, pick):
    """As a user runs it: `python -m nextk …` under 1 GiB of address space and a 10 s timeout."""
    _, args, _ = CASES[pick]
    env = {**os.environ, "COLUMNS": "200"}
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = str(root)
    r = subprocess.run(
        [sys.executable, "-m", "nextk", *args],
        capture_output=True,
        text=True,
        timeout=10,
        cwd=tmp_path,
        env=env,
        preexec_fn=limit_memory,
    )
    check_refused(r.returncode, r.stdout, r.stderr, args)
    assert list(tmp_path.iterdir()) == []


def source_cases():
    """(source, --param, kind) for every numeric parameter of every registered source (its `--param value` pairs)."""
    import inspect

    from nextk.sources import SOURCES

    out = []
    for name, make in SOURCES.items():
        for param, p in inspect.signature(make).parameters.items():
            if isinstance(p.default, (int, float)) and not isinstance(p.default, bool):
                out.append((name, param, type(p.default)))
    return out


@pytest.mark.parametrize("value", [HUGE, "abc"])
def test_every_numeric_source_parameter_refuses_a_huge_value_or_a_non_number(value):
    """Every numeric parameter refuses a non-number; every integer one but a seed refuses 10^30 (the sources'
    limit, nextk.sources.common.MAX_PARAMETER). A huge real can be legitimate (a Dirichlet concentration), and
    0 or −1 can be (a seed, a probability): the sources' own checks judge those."""
    from nextk.sources.common import MAX_PARAMETER

    cases = source_cases()
    assert len(cases) >= 10
    for name, param, kind in cases:
        if value == HUGE and (kind is float or "seed" in param or int(HUGE) <= MAX_PARAMETER):
            continue
        t0 = time.perf_counter()
        code, out, err = invoke(["sample", name, "--" + param.replace("_", "-"), value, "--num", "2"])
        check_refused(code, out, err, [name, param, value])
        assert time.perf_counter() - t0 < 10, (name, param)
