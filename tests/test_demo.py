"""The demo end to end: a small configuration in the fast suite, the full one marked slow."""

import json

import pytest

from nextk.runs.demo import Config, draw, run


def check_results(res: dict):
    for m in res["models"]:
        assert m["excess_loss"]["low"] <= m["excess_loss"]["value"] <= m["excess_loss"]["high"]
        for w in m["windows"]:
            for e in [*w["checkers"].values(), w["learned"], w["tv"]]:
                assert {"value", "stderr", "low", "high", "n", "method"} <= set(e)
            # the TV ceiling bounds the checker (same documents: checker ≤ TV up to noise)
            assert max(e["value"] for e in w["checkers"].values()) <= w["tv"]["high"] + 1e-9
            assert w["tv"]["low"] <= w["theorem3"]["high"] + 1e-9


def test_small_demo_writes_json_and_plots(tmp_path):
    cfg = Config(
        source_params={"n_types": 1, "max_depth": 3, "length": 8},
        sizes=[2, 8],
        steps=40,
        eval_every=20,
        ks=[1, 2],
        num_docs=40,
        learned_steps=20,
        learned_docs=128,
    )
    res = run(cfg, tmp_path)
    assert json.loads((tmp_path / "results.json").read_text())["models"][1]["size"] == 8
    assert json.loads((tmp_path / "config.json").read_text())["steps"] == 40
    check_results(res)
    json.dumps(res, allow_nan=False)  # results.json is strict JSON
    for p in draw(res, tmp_path):
        assert p.stat().st_size > 1000


@pytest.mark.slow
def test_full_demo(tmp_path):
    res = run(Config(), tmp_path)
    check_results(res)
    small, big = res["models"]
    assert big["excess_loss"]["value"] < small["excess_loss"]["value"]
