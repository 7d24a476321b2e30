"""`nextk train`: one model trained on one source into a run folder that belongs to one config; the
same command resumes it, and a larger --steps extends a finished run.

Resuming with another source, source parameter, model family or size is refused (the fields are
named); changing only the step budget (or patience) extends the run, and says so; a budget below the steps
the run has already taken is refused (the folder would claim a budget its model is past). Everything is
checked (numbers, source, the model's memory) before the folder is claimed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.markup import escape

from nextk.checkpoint import load_state
from nextk.console import quiet
from nextk.errors import InputError, TooLargeError, check_memory
from nextk.models import TRAINABLE
from nextk.runs.common import RESULTS, check_config, differing, pick, prepare, write_json
from nextk.sources import make_source
from nextk.train import check_budget, train

STATE = "train_state.pt"

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
    """The model of the config, after its training memory is estimated (the model built on torch's meta device,
    which allocates nothing) and found to fit."""
    if cfg.model not in TRAINABLE:
        raise InputError(f"unknown model {cfg.model!r}; choose one of {sorted(TRAINABLE)}")
    shape = pick(cfg, "width", "layers", "size", "steps_per_token", "heads", "seed")
    try:
        with torch.device("meta"):
            ghost = TRAINABLE[cfg.model].from_options(vocab_size, length=length, **shape)
    except RuntimeError as e:  # sizes whose element count overflows
        raise TooLargeError(f"{cfg.model} of width {cfg.width} is too large to build: {e}") from None
    params = sum(p.numel() for p in ghost.parameters())
    width = max(cfg.width, cfg.size)
    # weights, gradients, AdamW's two moments, the best-so-far copy and a checkpoint's copy: six float32 copies;
    # activations: about ten float32 values per (document, position, unit, layer) kept for the backward pass
    need = 6 * 4 * params + 10 * 4 * cfg.batch_size * length * width * cfg.layers
    check_memory(need, f"training {cfg.model} of width {cfg.width} ({params:,} parameters, batch {cfg.batch_size})")
    return TRAINABLE[cfg.model].from_options(vocab_size, length=length, **shape)


def reached(out: Path, cfg: Config, force_new: bool) -> int:
    """Steps the run in `out` has already taken (0 for a new folder, or one --force-new will clear)."""
    old, differ = differing(out, cfg, EXTENDABLE)
    if old is None or (differ and force_new) or not (Path(out) / STATE).is_file():
        return 0
    return int(load_state(Path(out) / STATE)["result"]["steps"])


def run(cfg: Config, out: Path, *, log=quiet, progress: bool = False, force_new: bool = False) -> dict:
    check_config(cfg)
    check_budget(
        steps=cfg.steps, batch_size=cfg.batch_size, eval_every=cfg.eval_every, patience=cfg.patience, data=cfg.data
    )
    source = make_source(cfg.source, **cfg.source_params)
    model = build(cfg, source.vocab_size, source.length)
    done = reached(out, cfg, force_new)
    if cfg.steps < done:
        raise InputError(
            f"{out} has already trained {done} steps, more than --steps {cfg.steps}: give --steps ≥ {done} to "
            f"extend or resume it, or a new --out"
        )
    old = prepare(out, cfg, extendable=EXTENDABLE, force_new=force_new, log=log)
    if old is not None and old.get("steps") != cfg.steps:
        log(f"extending the step budget of {escape(str(out))} from {old.get('steps')} to {cfg.steps}")
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
