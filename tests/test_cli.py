"""The command line: sources, sample, train, eval, demo (small), errors."""

import json

from typer.testing import CliRunner

from nextk.cli import app

runner = CliRunner()


def test_sources_and_sample():
    r = runner.invoke(app, ["sources"])
    assert r.exit_code == 0 and "factorization" in r.output
    r = runner.invoke(app, ["sample", "primes", "--digits", "3", "--num", "4", "--json"])
    out = json.loads(r.output)
    assert len(out["samples"]) == 4 and all(len(s["text"]) == 3 for s in out["samples"])


def test_errors_are_named():
    r = runner.invoke(app, ["sample", "dyck", "--length", "7"])
    assert r.exit_code == 2 and "even" in r.output
    r = runner.invoke(app, ["sample", "nosuch"])
    assert r.exit_code == 2 and "unknown source" in r.output


def test_train_then_eval(tmp_path):
    r = runner.invoke(
        app,
        [
            "train",
            "dyck",
            "--length",
            "8",
            "--max-depth",
            "3",
            "--hidden",
            "8",
            "--steps",
            "30",
            "--eval-every",
            "10",
            "--out",
            str(tmp_path),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["steps"] == 30
    r = runner.invoke(
        app,
        [
            "eval",
            str(tmp_path),
            "dyck",
            "--length",
            "8",
            "--max-depth",
            "3",
            "--k",
            "1,2",
            "--num-docs",
            "50",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert [w["k"] for w in res["windows"]] == [1, 2]
    w = res["windows"][1]
    assert w["tv"]["value"] <= w["theorem3"]["high"] + 1e-9
    r = runner.invoke(app, ["eval", str(tmp_path), "dyck", "--length", "8", "--k", "9"])
    assert r.exit_code == 2 and "k=9" in r.output
    r = runner.invoke(app, ["eval", str(tmp_path), "addition", "--digits", "1"])
    assert r.exit_code == 2 and "vocabulary size" in r.output


def test_boost_command(tmp_path):
    r = runner.invoke(
        app,
        [
            "train",
            "dyck",
            "--length",
            "8",
            "--max-depth",
            "3",
            "--hidden",
            "4",
            "--steps",
            "20",
            "--out",
            str(tmp_path / "m"),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app,
        [
            "boost",
            str(tmp_path / "m"),
            "dyck",
            "--length",
            "8",
            "--max-depth",
            "3",
            "--k",
            "2",
            "--num-docs",
            "64",
            "--out",
            str(tmp_path / "b"),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert res["kl_after"]["value"] < res["kl_before"]["value"]
    assert res["pass_after"]["value"] >= res["pass_before"]["value"]
    assert (tmp_path / "b" / "boost.png").stat().st_size > 1000
    r = runner.invoke(
        app,
        ["boost", str(tmp_path / "m"), "dyck", "--length", "8", "--max-depth", "3", "--distinguisher", "check:nope"],
    )
    assert r.exit_code == 2 and "no checker" in r.output
