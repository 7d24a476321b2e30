"""The command line: sources, sample, train, eval, boost, errors."""

import pytest

from nextk.checkpoint import save_model
from nextk.models import GRU, LSTM, PaperRNN, Transformer
from tests.cli_tools import DYCK8, cli, cli_json


def test_sources_and_sample():
    r = cli("sources")
    assert r.exit_code == 0 and "factorization" in r.output
    out = cli_json("sample primes --digits 3 --num 4")
    assert len(out["samples"]) == 4 and all(len(s["text"]) == 3 for s in out["samples"])


def test_errors_are_named():
    r = cli("sample dyck --length 7")
    assert r.exit_code == 2 and "even" in r.output
    r = cli("sample nosuch")
    assert r.exit_code == 2 and "unknown source" in r.output


def test_train_then_eval(tmp_path):
    assert cli_json(f"train {DYCK8} --hidden 8 --steps 30 --eval-every 10 --out {tmp_path}")["steps"] == 30
    res = cli_json(f"eval {tmp_path} {DYCK8} --k 1,2 --num-docs 50")
    assert [w["k"] for w in res["windows"]] == [1, 2]
    w = res["windows"][1]
    assert w["tv"]["value"] <= w["theorem3"]["high"] + 1e-9
    r = cli(f"eval {tmp_path} dyck --length 8 --k 9")
    assert r.exit_code == 2 and "k=9" in r.output
    r = cli(f"eval {tmp_path} addition --digits 1")
    assert r.exit_code == 2 and "vocabulary size" in r.output


def test_boost_command(tmp_path, monkeypatch):
    cli_json(f"train {DYCK8} --hidden 4 --steps 20 --out {tmp_path / 'm'}")
    res = cli_json(f"boost {tmp_path / 'm'} {DYCK8} --k 2 --num-docs 64 --out {tmp_path / 'b'}")
    assert res["kl_after"]["value"] < res["kl_before"]["value"]
    assert res["pass_after"]["value"] >= res["pass_before"]["value"]
    assert (tmp_path / "b" / "boost.png").stat().st_size > 1000
    monkeypatch.chdir(tmp_path)  # the default run folder would land here
    r = cli(f"boost {tmp_path / 'm'} {DYCK8} --distinguisher check:nope")
    assert r.exit_code == 2 and "no checker" in r.output
    assert not (tmp_path / "nextk-runs").exists()  # refused before any folder was made


@pytest.mark.parametrize(
    "make",
    [
        lambda: GRU(2, 4, seed=0),
        lambda: LSTM(2, 4, seed=0),
        lambda: PaperRNN(2, 8, 3, seed=0),
        lambda: Transformer(2, 8, 1, 2, max_len=14, seed=0),
    ],
)
def test_eval_every_checkpointable_family_on_the_paired_path(tmp_path, make):
    """V^k = 2^13 > 4096 sends `nextk eval` to the paired estimator, which steps rows from different
    starts in one batch (the State contract); the transformer used to fail there."""
    save_model(make(), tmp_path / "model.safetensors")
    fast = "--num-docs 20 --learned-steps 5 --learned-docs 32"
    res = cli_json(f"eval {tmp_path} dyck --length 14 --max-depth 3 --k 13 {fast}")
    (w,) = res["windows"]
    assert w["estimator"] == "paired" and w["checkers"]["valid"]["n"] == 20


# ---- options generated from the run configs (nextk/cli_build.py reads the Config source, not the import) ----
RUN_KINDS = ("demo", "train", "eval", "boost", "search", "bits", "construct", "sweep", "reproduce", "barrier")


@pytest.mark.parametrize("kind", RUN_KINDS)
def test_options_read_from_source_equal_the_config(kind):
    """The fields, defaults and comments read by ast equal the imported dataclass: a field the reader
    mis-parses (a wrapped line, a factory) would make the CLI's default differ from the Config's."""
    import dataclasses
    import importlib

    from nextk.cli_build import NOTHING, config_fields

    config = importlib.import_module(f"nextk.runs.{kind}").Config
    want = {}
    for f in dataclasses.fields(config):
        if f.default is not dataclasses.MISSING:
            want[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            want[f.name] = f.default_factory()
        else:
            want[f.name] = NOTHING
    read = config_fields(kind)
    assert [f.name for f in read] == list(want)
    assert {f.name: f.default for f in read} == want
    assert all(f.help for f in read if f.annotation != "dict"), [f.name for f in read if not f.help]


def test_generated_options_reach_the_config(monkeypatch):
    """Options of every kind (renamed, comma list, --no- flag, repeatable, optional) land in the Config
    handed to the run layer, and a bad comma list names its option."""
    import nextk.cli_build

    seen = {}
    monkeypatch.setattr(nextk.cli_build, "execute", lambda kind, cfg, out, **kw: seen.update(cfg=cfg, out=out, **kw))
    r = cli("train dyck --length 8 --hidden 7 --patience 3 --lr 0.01 --out x")
    assert r.exit_code == 0, r.output
    cfg = seen["cfg"]
    assert (cfg.width, cfg.patience, cfg.lr, cfg.data, cfg.source_params) == (7, 3, 0.01, None, {"length": 8})
    assert str(seen["out"]) == "x" and seen["force_new"] is False
    r = cli("eval run dyck --k 1,3 --no-learned --seed 5")
    assert r.exit_code == 0, r.output
    cfg = seen["cfg"]
    assert (cfg.ks, cfg.learned, cfg.seed, seen["write"]) == ([1, 3], False, 5, False)
    r = cli("eval hf:m --distinguisher a,b --distinguisher c --doc-length 16")
    assert r.exit_code == 0, r.output
    assert (seen["cfg"].distinguishers, seen["cfg"].length) == (["a", "b", "c"], 16)
    r = cli("barrier report --hard-digits 3 --sampling-budget 5")
    assert r.exit_code == 0, r.output
    assert (seen["cfg"].hard_digits, seen["cfg"].sampling_budget_s, seen["cfg"].learn_digits) == ([3], 5.0, [1, 2])
    r = cli("reproduce")
    assert r.exit_code == 0 and str(seen["out"]).endswith("reproduce-quick")
    r = cli("construct")
    assert r.exit_code == 0 and seen["cfg"].source_params == {"block": 3, "length": 8}
    r = cli("construct parity --length 6")
    assert r.exit_code == 0 and seen["cfg"].source_params == {"length": 6}
    r = cli("barrier report")  # an empty list default stays empty
    assert r.exit_code == 0, r.output
    assert (seen["cfg"].hard_digits, seen["cfg"].prime_digits[:2]) == ([], [2, 3])
    r = cli("search dyck --no-bits --no-measure")  # every bool has its --no- form
    assert r.exit_code == 0 and (seen["cfg"].bits, seen["cfg"].measure) == (False, False)
    r = cli("boost ck/ dyck")  # run/ and run name one run folder
    assert r.exit_code == 0 and seen["cfg"].checkpoint == "ck"
    r = cli("eval hf:m --distinguisher 'a, ,b'")
    assert r.exit_code == 0 and seen["cfg"].distinguishers == ["a", "b"]
    r = cli("eval hf:m --length 8")  # hf: first: the error names what to drop
    assert r.exit_code == 2 and "drop --length 8" in r.output
    r = cli("bits run dyck --frac-bits 1,x")
    assert r.exit_code == 2 and "--frac-bits takes comma-separated integers" in r.output
    r = cli("search dyck --unknown 3")
    assert r.exit_code == 2 and "unknown" in r.output


@pytest.mark.parametrize(
    "args, words",
    [
        (["demo", "--steps", "abc"], ["--steps", "valid integer"]),
        (["train"], ["Missing argument", "source"]),
        (["nosuchcmd"], ["No such command"]),
        (["demo", "--bogus"], ["No such option: --bogus"]),
    ],
)
def test_usage_errors_are_one_line(args, words):
    """Through the `nextk` entry point, click's usage errors too are one line, exit 2, no traceback."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "nextk.cli", *args], capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == 2 and out.startswith("error:") and "Traceback" not in out, out
    assert len(out.splitlines()) == 1 and all(w in out for w in words), out


@pytest.mark.parametrize(
    "command, words",
    [
        ("demo --k 99", ["k=99", "length 24"]),
        ("demo --sizes 0", ["--sizes"]),
        ("search dyck --test bogus", ["test='bogus'"]),
        ("barrier report --learn-digits 0", ["--learn-digits"]),
    ],
)
def test_bad_options_fail_before_any_work(command, words, tmp_path, monkeypatch):
    """Options checked before a model is trained or a folder is made."""
    monkeypatch.chdir(tmp_path)
    r = cli(command + f" --out {tmp_path / 'run'}")
    assert r.exit_code == 2 and all(w in r.output for w in words), r.output
    assert not (tmp_path / "run").exists() and not (tmp_path / "nextk-runs").exists()


def test_every_config_field_is_an_option():
    """Each Config field (but dicts, and the demo's fixed source and family) is a parameter of its command."""
    import dataclasses
    import importlib

    import typer

    from nextk.cli import app

    group = typer.main.get_command(app)
    skipped = {"demo": {"source", "source_params", "model"}}
    for kind in RUN_KINDS:
        command = group.commands["barrier"].commands["report"] if kind == "barrier" else group.commands[kind]
        params = {p.name for p in command.params}
        config = importlib.import_module(f"nextk.runs.{kind}").Config
        wanted = {f.name for f in dataclasses.fields(config) if f.type not in ("dict",)} - skipped.get(kind, set())
        assert wanted <= params, (kind, wanted - params)
