"""`pipeline`: one model trained (`nextk.runs.train`), then follow-up runs on its checkpoint (`boost`, `bits`,
`eval`), each in its own subfolder. A sweep cell whose measurement needs a trained model stays
self-contained this way: nothing crosses from one cell to another, so a cell runs the same on any worker.

Folder: config.json, results.json ({"train": …, "then": [{"run": kind, "results": …}, …]}), train/ (the
train run: checkpoint and its results.json), 0-boost/, 1-bits/, … (each follow-up's run folder)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from rich.markup import escape

from nextk.console import quiet
from nextk.errors import InputError
from nextk.runs import train as train_run
from nextk.runs.common import RESULTS, config_from, prepare, write_json

FOLLOW_UPS = ("boost", "bits", "eval")  # run modules that take a trained checkpoint
INHERITED = ("source", "source_params", "seed")  # what a follow-up takes from the train config unless given


@dataclass
class Config:
    train: dict  # nextk.runs.train Config fields: source, source_params, model, width, steps, seed, …
    then: list = field(default_factory=list)  # follow-ups: {"run": "boost" | "bits" | "eval", **its Config fields}

    def __post_init__(self):
        """The train config and every follow-up checked at once (types, numbers, run names), so a sweep refuses a
        bad pipeline cell before any cell runs, not in the worker after retries."""
        if not isinstance(self.train, dict) or not isinstance(self.then, list):
            raise InputError(f"a pipeline takes train = a table and then = a list, got {self.train!r}, {self.then!r}")
        tcfg = config_from(train_run.Config, dict(self.train))
        for step in self.then:
            follow_up(step, tcfg, Path("train"))

    def run_name(self) -> str:
        return f"pipeline-{self.train.get('source', 'source')}-{self.train.get('model', 'gru')}"


def follow_up(step: dict, tcfg: train_run.Config, checkpoint: Path):
    """The run module and Config of one follow-up: checkpoint, source, source_params and seed from the train config
    unless the step gives them."""
    if not isinstance(step, dict) or step.get("run") not in FOLLOW_UPS:
        raise InputError(f"each follow-up is a table with run = one of {list(FOLLOW_UPS)}, got {step!r}")
    fields_ = {k: v for k, v in step.items() if k != "run"}
    module = importlib.import_module(f"nextk.runs.{step['run']}")
    inherited = {name: getattr(tcfg, name) for name in INHERITED}
    return module, config_from(module.Config, {"checkpoint": str(checkpoint), **inherited, **fields_})


def run(cfg: Config, out: Path, *, log=quiet, progress: bool = False, force_new: bool = False) -> dict:
    """Train (resuming from the checkpoint in out/train), then run every follow-up on the trained model."""
    out = Path(out)
    tcfg = config_from(train_run.Config, dict(cfg.train))
    steps = [follow_up(step, tcfg, out / "train") for step in cfg.then]  # every follow-up is validated first
    prepare(out, cfg, force_new=force_new)
    results: dict = {"train": train_run.run(tcfg, out / "train", log=log, progress=progress, force_new=force_new)}
    results["then"] = []
    write_json(out / RESULTS, results)
    for i, (module, fcfg) in enumerate(steps):
        kind = module.__name__.rsplit(".", 1)[-1]
        sub = out / f"{i}-{kind}"
        log(escape(f"[{kind}] on {results['train']['model']}"))
        if kind == "eval":  # eval reports without writing a folder: the pipeline keeps its record
            prepare(sub, fcfg, force_new=force_new)
            res = module.run(fcfg, sub, log=log, progress=False)
            write_json(sub / RESULTS, res)
        else:
            res = module.run(fcfg, sub, log=log, progress=False, force_new=force_new)
        results["then"].append({"run": kind, "results": res})
        write_json(out / RESULTS, results)
    return results


def draw(results: dict, out: Path) -> list[Path]:
    """Each stage's own plots, in its own subfolder."""
    out = Path(out)
    paths = train_run.draw(results["train"], out / "train")
    for i, step in enumerate(results.get("then", [])):
        module = importlib.import_module(f"nextk.runs.{step['run']}")
        paths += module.draw(step["results"], out / f"{i}-{step['run']}")
    return paths
