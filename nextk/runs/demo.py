"""`nextk demo`: two sizes of one model family trained on one source, each measured at several k.

Config → build from the registries → train (resumable) → `nextk.evaluation.measure_model` →
config.json + results.json → plots drawn from results.json.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from nextk.console import quiet
from nextk.evaluation import measure_model
from nextk.models import MODELS
from nextk.runs.common import RESULTS, prepare, write_json
from nextk.sources import make_source
from nextk.train import train


@dataclass
class Config:
    """The default experiment: two GRU sizes trained on a Dyck language, measured at k ∈ {1,2,4,8}."""

    source: str = "dyck"  # registry name in nextk.sources.SOURCES
    source_params: dict = field(default_factory=lambda: {"n_types": 1, "max_depth": 6, "length": 24})
    model: str = "gru"  # registry name in nextk.models.MODELS
    sizes: list = field(default_factory=lambda: [2, 32])  # hidden width of each model trained
    steps: int = 500  # optimiser steps per model
    batch_size: int = 64  # documents per step (fresh samples: infinite data)
    lr: float = 5e-3  # AdamW learning rate
    eval_every: int = 50  # steps between held-out evaluations (training curves)
    ks: list = field(default_factory=lambda: [1, 2, 4, 8])  # window sizes measured
    num_docs: int = 200  # p documents per advantage estimate (interval over documents)
    learned_hidden: int = 16  # width of the learned GRU distinguisher (its size bound)
    learned_steps: int = 400  # optimiser steps of the learned distinguisher
    learned_docs: int = 2048  # documents it is fitted on (disjoint seeds from the measurement)
    seed: int = 0  # every random draw derives from this

    def run_name(self) -> str:
        return f"demo-{self.source}-{self.model}-seed{self.seed}"


DemoConfig = Config  # the name earlier releases exported


def run(cfg: Config, out: Path, *, log=quiet, progress: bool = False, force_new: bool = False) -> dict:
    """Train each size (resuming from its checkpoint in `out`), measure it, write results.json."""
    prepare(out, cfg, force_new=force_new)
    source = make_source(cfg.source, **cfg.source_params)
    results = {
        "run": cfg.run_name(),
        "source": repr(source),
        "source_params": source.params,
        "length": source.length,
        "vocab_size": source.vocab_size,
        "models": [],
    }
    t0 = time.perf_counter()
    for size in cfg.sizes:
        model = MODELS[cfg.model].from_options(
            source.vocab_size, width=size, layers=1, seed=cfg.seed, length=source.length
        )
        log(f"[{model.name}] {model.num_parameters} parameters: training {cfg.steps} steps")
        tr = train(
            model,
            source,
            steps=cfg.steps,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            seed=cfg.seed,
            eval_every=cfg.eval_every,
            checkpoint=out / model.name,
            progress=progress,
            log=log,
        )
        m = measure_model(
            source,
            model,
            cfg.ks,
            num_docs=cfg.num_docs,
            seed=cfg.seed,
            learned_hidden=cfg.learned_hidden,
            learned_steps=cfg.learned_steps,
            learned_docs=cfg.learned_docs,
            log=log,
        )
        results["models"].append(
            {"name": model.name, "size": size, "parameters": model.num_parameters, "train": tr.to_dict(), **m}
        )
        write_json(out / RESULTS, results)
    results["seconds"] = time.perf_counter() - t0
    write_json(out / RESULTS, results)
    return results


def draw(results: dict, out: Path) -> list[Path]:
    from nextk.runs.plots import plot_advantage, plot_training

    return [
        plot_advantage(results["models"], out / "advantage_vs_k.png", results["source"]),
        plot_training(results["models"], out / "training.png", results["source"]),
    ]


def show(results: dict) -> list:
    from nextk.runs.plots import model_table

    return [model_table(m, results["source"]) for m in results["models"]]
