"""`nextk eval`: the measurement panel of a trained model against a source (docs/theory.md §1–3).

The checkpoint's run folder records the source it was trained on; evaluating on another source or
other parameters is refused unless `allow_other_source`, and results.json records both."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nextk.checkpoint import load_model
from nextk.console import quiet
from nextk.errors import InputError
from nextk.evaluation import measure_model
from nextk.runs.common import CONFIG, read_json
from nextk.sources import make_source


@dataclass
class Config:
    checkpoint: str  # model.safetensors or its run folder
    source: str  # registry name of the truth
    source_params: dict = field(default_factory=dict)  # its parameters
    ks: list = field(default_factory=lambda: [1, 2, 4, 8])  # window sizes
    num_docs: int = 200  # p documents per estimate
    learned_steps: int = 200  # optimiser steps of the learned distinguisher, per k
    learned_docs: int = 1024  # documents it is fitted on, per k
    allow_other_source: bool = False  # evaluate on a source other than the one trained on
    seed: int = 0  # every random draw derives from this


def trained_on(checkpoint: str) -> dict | None:
    """The source and parameters recorded in the checkpoint's run folder (None if not recorded)."""
    path = Path(checkpoint)
    folder = path if path.is_dir() else path.parent
    if not (folder / CONFIG).is_file():
        return None
    cfg = read_json(folder / CONFIG)
    return {"source": cfg.get("source"), "source_params": cfg.get("source_params", {})} if "source" in cfg else None


def run(cfg: Config, out: Path | None = None, *, log=quiet, progress: bool = False, force_new: bool = False) -> dict:
    source = make_source(cfg.source, **cfg.source_params)
    model = load_model(cfg.checkpoint, vocab_size=source.vocab_size)
    for k in cfg.ks:
        if not isinstance(k, int) or not 1 <= k <= source.length:
            raise InputError(f"window size k={k} must be between 1 and the document length {source.length}")
    origin = trained_on(cfg.checkpoint)
    here = {"source": cfg.source, "source_params": source.params}
    if origin is not None:
        origin_params = make_source(origin["source"], **origin["source_params"]).params
        if (origin["source"], origin_params) != (here["source"], here["source_params"]):
            msg = (
                f"{cfg.checkpoint} was trained on {origin['source']} {origin_params}, not {cfg.source} {source.params}"
            )
            if not cfg.allow_other_source:
                raise InputError(msg + "; pass --allow-other-source to evaluate it there anyway")
            log(f"[yellow]warning:[/yellow] {msg}")
    res = measure_model(
        source,
        model,
        cfg.ks,
        num_docs=cfg.num_docs,
        seed=cfg.seed,
        learned_steps=cfg.learned_steps,
        learned_docs=cfg.learned_docs,
        log=log,
    )
    return {
        "name": model.name,
        "parameters": model.num_parameters,
        "source": repr(source),
        "source_params": source.params,
        "trained_on": origin,
        **res,
    }


def draw(results: dict, out: Path) -> list[Path]:
    from nextk.runs.plots import plot_advantage

    return [plot_advantage([results], out / "advantage_vs_k.png", results["source"])]
