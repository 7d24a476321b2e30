"""`nextk train`: one model trained on one source into a run folder that belongs to one config; the
same command resumes it, and a larger --steps extends a finished run.

Resuming with another source, source parameter, model family or size is refused (the fields are
named); changing only the step budget (or patience) extends the run, and says so."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nextk.console import quiet
from nextk.models import TRAINABLE
from nextk.runs.common import RESULTS, pick, prepare, write_json
from nextk.sources import make_source
from nextk.train import check_budget, train

EXTENDABLE = ("steps", "patience")  # what may change when a run is resumed


@dataclass
class Config:
    source: str  # registry name of the truth
    source_params: dict = field(default_factory=dict)  # its parameters
    model: str = "gru"  # family: gru | lstm | paper_rnn | transformer
    width: int = 32  # hidden width (gru/lstm), hidden nodes (paper_rnn) or d_model (transformer)
    layers: int = 1  # layers (gru/lstm/transformer)
    size: int = 0  # paper_rnn: total nodes (0: twice the hidden nodes)
    steps_per_token: int = 1  # paper_rnn: internal steps per token (RNN-time τ)
    heads: int = 4  # transformer: attention heads
    steps: int = 500  # optimiser steps (the budget; may grow on resume)
    batch_size: int = 64  # documents per step
    lr: float = 3e-3  # AdamW learning rate
    data: int | None = None  # a fixed dataset of this many documents (default: fresh samples every step)
    eval_every: int = 50  # steps between held-out evaluations (and checkpoints)
    patience: int | None = None  # early stop after this many evaluations without improvement
    seed: int = 0  # every random draw derives from this


def build(cfg: Config, vocab_size: int, length: int):
    if cfg.model not in TRAINABLE:
        from nextk.errors import InputError

        raise InputError(f"unknown model {cfg.model!r}; choose one of {sorted(TRAINABLE)}")
    shape = pick(cfg, "width", "layers", "size", "steps_per_token", "heads", "seed")
    return TRAINABLE[cfg.model].from_options(vocab_size, length=length, **shape)


def run(cfg: Config, out: Path, *, log=quiet, progress: bool = False, force_new: bool = False) -> dict:
    check_budget(
        steps=cfg.steps, batch_size=cfg.batch_size, eval_every=cfg.eval_every, patience=cfg.patience, data=cfg.data
    )
    source = make_source(cfg.source, **cfg.source_params)
    model = build(cfg, source.vocab_size, source.length)
    old = prepare(out, cfg, extendable=EXTENDABLE, force_new=force_new, log=log)
    if old is not None and old.get("steps") != cfg.steps:
        log(f"extending the step budget of {out} from {old.get('steps')} to {cfg.steps}")
    budget = pick(cfg, "steps", "batch_size", "lr", "seed", "data", "eval_every", "patience")
    res = train(model, source, checkpoint=out, progress=progress, log=log, **budget)
    results = {
        "source": repr(source),
        "source_params": source.params,
        "model": model.name,
        "family": model.family,
        "config": model.config,
        "parameters": model.num_parameters,
        "checkpoint": str(out / ("best.safetensors" if res.best_step else "model.safetensors")),
        "units": {"eval_loss": "nats per token", "excess_loss": "nats per token (KL(p̄‖q̄)/n)"},
        **res.to_dict(),
    }
    write_json(out / RESULTS, results)
    return results


def summary(results: dict) -> str:
    from nextk.stats import fmt

    last = results["history"][-1] if results["history"] else {}
    best = next((r for r in results["history"] if r["step"] == results["best_step"]), last)
    line = f"trained {results['model']} {results['steps']} steps ({results['stopped']}) in {results['seconds']:.1f} s"
    if "excess_loss" in best:
        line += f"; kept step {best['step']}: excess loss {fmt(best['excess_loss'], 5)} nats/token"
    return line


def draw(results: dict, out: Path) -> list[Path]:
    from nextk.runs.plots import plot_training

    return [plot_training([{"name": results["model"], "train": results}], out / "training.png", results["source"])]


def show(results: dict) -> list:
    return [summary(results)]
