"""The demo end to end: a small configuration in the fast suite, the full one marked slow."""

import json

import pytest

from nextk.runs.demo import Config, draw, learned_sentences, run, show


def check_results(res: dict):
    for m in res["models"]:
        assert m["excess_loss"]["low"] <= m["excess_loss"]["value"] <= m["excess_loss"]["high"]
        for w in m["windows"]:
            for e in [*w["checkers"].values(), w["learned"], w["tv"]]:
                assert {"value", "stderr", "low", "high", "n", "method"} <= set(e)
            # the TV ceiling bounds the checker (same documents: checker ≤ TV up to noise)
            assert max(e["value"] for e in w["checkers"].values()) <= w["tv"]["high"] + 1e-9
            assert w["tv"]["low"] <= w["theorem3"]["high"] + 1e-9
            share, fit = w["learned_share_of_tv"], w["learned_fit"]
            assert share["value"] == w["learned"]["value"] / w["tv"]["value"]
            assert share["low"] is None or share["low"] <= share["value"] <= share["high"]
            assert fit["fit_docs"] > 0 and fit["fit_pairs"] >= fit["fit_docs"] and 0 <= fit["train_accuracy"] <= 1
        # the measured weights are those of the best held-out evaluation, and the report says which step
        assert m["kept"]["step"] == m["train"]["best_step"]
        assert f"kept step {m['kept']['step']} of {m['train']['steps']}" in m["kept"]["sentence"]


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
    shown = show(res)
    assert [m["kept"]["sentence"] for m in res["models"]] == [x for x in shown if isinstance(x, str)][:2]
    assert len(learned_sentences(res)) == 2


@pytest.mark.slow
def test_full_demo(tmp_path):
    res = run(Config(), tmp_path)
    check_results(res)
    small, big = res["models"]
    assert big["excess_loss"]["value"] < small["excess_loss"]["value"]
    k8 = next(w for w in small["windows"] if w["k"] == 8)  # GRU-2, where TV is large
    assert k8["learned_share_of_tv"]["low"] >= 0.5, k8["learned_share_of_tv"]  # the target: half of the ceiling
