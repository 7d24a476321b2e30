"""Bad input → one clear line, exit 2, no traceback; run folders belong to one config; Ctrl-C saves
and says how to resume, and the resumed run ends equal to an uninterrupted one."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

from tests.cli_tools import DYCK8, cli, cli_json

TRAIN = f"train {DYCK8} --hidden 4 --steps 20 --eval-every 10"


def one_line_error(command: str, *needles: str) -> str:
    r = cli(command)
    out = r.output.strip()
    assert r.exit_code == 2, (command, r.exit_code, out)
    assert "Traceback" not in out and out.lower().startswith("error:"), out
    assert len(out.splitlines()) <= 3, out  # one message (the console may wrap a long line)
    for needle in needles:
        assert needle in out, (needle, out)
    return out


@pytest.mark.parametrize(
    "command,needles",
    [
        ("plot runs/nope", ["does not exist"]),
        (f"{TRAIN.replace('--steps 20', '--steps 0')} --out {{tmp}}/a", ["steps must be ≥ 1"]),
        (f"{TRAIN.replace('--steps 20', '--steps -5')} --out {{tmp}}/a", ["steps must be ≥ 1"]),
        (f"{TRAIN.replace('--eval-every 10', '--eval-every 0')} --out {{tmp}}/a", ["--eval-every must be ≥ 1"]),
        (f"{TRAIN} --batch-size 0 --out {{tmp}}/a", ["--batch-size must be ≥ 1"]),
        (f"{TRAIN} --model rnn --out {{tmp}}/a", ["unknown model"]),
        ("sample hmm --n_states 0", ["n_states ≥ 1"]),
        ("sample hmm --n_states -1", ["n_states ≥ 1"]),
        ("sample hmm --vocab_size 0", ["vocab_size ≥ 1"]),
        ("sample text --length 0", ["length must be ≥ 1"]),
        ("sample dyck --length 7", ["even"]),
        ("sample nosuch", ["unknown source"]),
        ("sample dyck --nope 3", ["no parameter 'nope'"]),
        ("sample factorization --sorted maybe", ["true or false"]),
        ("sample dyck --num 0", ["--num must be ≥ 1"]),
        ("eval {tmp} dyck --k a,b", ["--k", "'a,b'"]),
        ("bits {tmp} dyck --frac-bits x", ["--frac-bits"]),
    ],
)
def test_bad_input_is_one_line(tmp_path, command, needles):
    one_line_error(command.format(tmp=tmp_path), *needles)


def test_errors_after_a_checkpoint_exists(tmp_path):
    cli_json(f"{TRAIN} --out {tmp_path / 'g'}")
    one_line_error(f"eval {tmp_path / 'g'} {DYCK8} --num-docs 0 --k 1", "--num-docs must be ≥ 1")
    one_line_error(f"eval {tmp_path / 'g'} {DYCK8} --k 9", "k=9")
    one_line_error(f"bits {tmp_path / 'g'} {DYCK8} --int-bits -1 --out {tmp_path / 'b'}", "--int-bits")
    assert not (tmp_path / "b" / "results.json").exists()  # validated before any work
    cli_json(f"train {DYCK8} --model transformer --hidden 8 --heads 2 --steps 5 --out {tmp_path / 't'}")
    one_line_error(f"bits {tmp_path / 't'} {DYCK8} --out {tmp_path / 'tb'}", "graph RNNs", "transformer")


def test_large_factorization_samples_without_exact_probabilities():
    start = time.perf_counter()
    out = cli_json("sample factorization --digits 40 --num 2")
    assert time.perf_counter() - start < 60 and all(s["log_prob"] is None for s in out["samples"])
    assert "about" in out["note"] and "digits ≤ 4" in out["note"]


def test_run_folder_belongs_to_one_config(tmp_path):
    folder = tmp_path / "x"
    first = cli_json(f"{TRAIN} --out {folder}")
    assert first["source_params"]["length"] == 8
    one_line_error(f"train dyck --length 10 --max-depth 3 --hidden 4 --steps 20 --out {folder}", "source_params")
    one_line_error(f"train parity --hidden 4 --steps 20 --out {folder}", "source")
    one_line_error(f"{TRAIN.replace('--hidden 4', '--hidden 8')} --out {folder}", "width")
    one_line_error(f"{TRAIN.replace('gru', 'lstm')} --model lstm --out {folder}", "model")
    # results.json still describes the model in the folder
    assert json.loads((folder / "results.json").read_text())["source"].startswith("Dyck(")
    r = cli(f"{TRAIN.replace('--steps 20', '--steps 30')} --out {folder}")  # only the budget: extends
    assert r.exit_code == 0 and "extending the step budget" in r.output and "resuming from step 20" in r.output
    assert json.loads((folder / "results.json").read_text())["steps"] == 30
    r = cli(f"{TRAIN.replace('--steps 20', '--steps 30')} --out {folder}")
    assert r.exit_code == 0 and "already complete" in r.output
    fresh = cli_json(f"train parity --hidden 4 --steps 5 --out {folder} --force-new")
    assert fresh["source"].startswith("Parity(")


def test_eval_on_another_source_is_refused_or_recorded(tmp_path):
    cli_json(f"{TRAIN} --out {tmp_path}")
    one_line_error(f"eval {tmp_path} dyck --length 10 --max-depth 3 --k 1", "trained on dyck", "--allow-other-source")
    res = cli_json(
        f"eval {tmp_path} dyck --length 10 --max-depth 3 --k 1 --num-docs 10 --learned-steps 2 --allow-other-source"
    )
    assert res["trained_on"]["source_params"]["length"] == 8 and res["source_params"]["length"] == 10


def test_plot_redraws_a_train_folder(tmp_path):
    cli_json(f"{TRAIN} --out {tmp_path}")
    (tmp_path / "training.png").unlink()
    r = cli(f"plot {tmp_path}")
    assert r.exit_code == 0 and (tmp_path / "training.png").stat().st_size > 1000


def nextk(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "nextk", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        **kwargs,
    )


def test_sigint_saves_says_how_to_resume_and_resume_equals_uninterrupted(tmp_path):
    args = [*DYCK8.split(), *"--hidden 4 --batch-size 8 --steps 600 --eval-every 100 --seed 3".split()]
    proc = nextk("train", *args, "--out", str(tmp_path / "cut"))
    deadline = time.time() + 120
    while not (tmp_path / "cut" / "train_state.pt").exists():  # the first checkpoint: training is under way
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "interrupted at step" in out and "run the same command again to resume" in out and "Traceback" not in out
    step = int(out.split("checkpoint at step ")[1].split()[0])
    assert 0 < step < 600
    resumed = nextk("train", *args, "--out", str(tmp_path / "cut"))
    out2, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0 and f"resuming from step {step}" in out2, out2
    whole = nextk("train", *args, "--out", str(tmp_path / "whole"))
    whole.communicate(timeout=600)
    for name in ("model.safetensors", "best.safetensors"):
        a, b = load_file(tmp_path / "cut" / name), load_file(tmp_path / "whole" / name)
        assert all((a[k] == b[k]).all() for k in a), name
    h1 = json.loads((tmp_path / "cut" / "results.json").read_text())["history"]
    h2 = json.loads((tmp_path / "whole" / "results.json").read_text())["history"]
    assert [r["eval_loss"] for r in h1] == [r["eval_loss"] for r in h2]


def test_demo_resumes_its_folder_instead_of_restarting(tmp_path):
    from nextk.runs.demo import Config, run

    cfg = Config(
        source_params={"n_types": 1, "max_depth": 3, "length": 8},
        sizes=[2],
        steps=20,
        eval_every=10,
        ks=[1],
        num_docs=20,
        learned_steps=2,
        learned_docs=32,
    )
    run(cfg, tmp_path)
    said = []
    again = run(cfg, tmp_path, log=said.append)
    assert any("already complete (20 steps" in line for line in said), said
    assert again["models"][0]["train"]["steps"] == 20
    with pytest.raises(ValueError, match="sizes"):
        run(Config(**{**cfg.__dict__, "sizes": [3]}), tmp_path)
