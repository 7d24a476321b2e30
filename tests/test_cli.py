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


def test_boost_command(tmp_path):
    cli_json(f"train {DYCK8} --hidden 4 --steps 20 --out {tmp_path / 'm'}")
    res = cli_json(f"boost {tmp_path / 'm'} {DYCK8} --k 2 --num-docs 64 --out {tmp_path / 'b'}")
    assert res["kl_after"]["value"] < res["kl_before"]["value"]
    assert res["pass_after"]["value"] >= res["pass_before"]["value"]
    assert (tmp_path / "b" / "boost.png").stat().st_size > 1000
    r = cli(f"boost {tmp_path / 'm'} {DYCK8} --distinguisher check:nope")
    assert r.exit_code == 2 and "no checker" in r.output


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
