"""Experiments: config → build from registries → train → measure → config.json + results.json.

`measure_model` is the table a user reads for one trained model: excess loss with its interval and,
for each window size k, the checkers' advantage, a learned distinguisher's advantage (fitted on
other documents than it is measured on), the TV ceiling and the Theorem 3 bound (THEORY.md §1–3).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nextk import bounds
from nextk.advantage import advantage, tv_advantage
from nextk.distinguishers import LearnedDistinguisher
from nextk.measure import excess_loss
from nextk.models import MODELS
from nextk.sources import SOURCES
from nextk.stats import Estimate
from nextk.train import train

WINDOW_BUDGET = 4096  # largest V^k for which inner expectations are enumerated (else paired MC)


@dataclass
class DemoConfig:
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


def window_estimator(vocab_size: int, k: int) -> str:
    return "rao_blackwell" if vocab_size**k <= WINDOW_BUDGET else "paired"


def measure_model(
    source,
    model,
    ks,
    *,
    num_docs: int,
    seed: int,
    learned_hidden: int = 16,
    learned_steps: int = 200,
    learned_docs: int = 1024,
    log=print,
) -> dict:
    """Excess loss and, per k, checker / learned / TV advantages and the Theorem 3 bound."""
    n, v = source.length, source.vocab_size
    ex = excess_loss(source, model, num_docs=4 * num_docs, seed=seed + 11)
    kl_total = Estimate(ex.value * n, ex.stderr * n, ex.low * n, ex.high * n, ex.n, ex.method)
    out = {"excess_loss": ex.to_dict(), "kl": kl_total.to_dict(), "windows": []}
    for k in ks:
        if k > n:
            log(f"  skipping k={k}: longer than the document ({n})")
            continue
        est = window_estimator(v, k)
        row = {"k": k, "estimator": est, "checkers": {}}
        for name, check in source.checks.items():
            row["checkers"][name] = advantage(
                check, source, model, k, num_docs=num_docs, estimator=est, seed=seed + 100 + k
            ).to_dict()
        d = LearnedDistinguisher(v, hidden=learned_hidden, steps=learned_steps, seed=seed + 200 + k)
        d.fit(source, model, k, num_docs=learned_docs)
        row["learned"] = advantage(d, source, model, k, num_docs=num_docs, estimator=est, seed=seed + 300 + k).to_dict()
        row["learned"]["train_accuracy"] = d.train_accuracy_
        if v**k <= WINDOW_BUDGET:
            row["tv"] = tv_advantage(source, model, k, num_docs=num_docs, seed=seed + 400 + k).to_dict()
        b = kl_total.map(
            lambda kl, k=k: bounds.theorem3(kl, k, n), method="theorem 3 at the KL estimate and its interval ends"
        )
        row["theorem3"] = b.to_dict()
        out["windows"].append(row)
        log(
            f"  k={k}: "
            + ", ".join(f"{c} {r['value']:+.4f}" for c, r in row["checkers"].items())
            + f", learned {row['learned']['value']:+.4f}"
            + (f", TV {row['tv']['value']:.4f}" if "tv" in row else "")
            + f", bound {b.value:.4f}"
        )
    return out


def run_demo(cfg: DemoConfig, out: Path, log=print, progress: bool = True) -> dict:
    """Train each size, measure it, write config.json and results.json into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    source = SOURCES[cfg.source](**cfg.source_params)
    results = {
        "run": cfg.run_name(),
        "source": repr(source),
        "length": source.length,
        "vocab_size": source.vocab_size,
        "models": [],
    }
    t0 = time.perf_counter()
    for size in cfg.sizes:
        model = MODELS[cfg.model](source.vocab_size, size, seed=cfg.seed)
        log(f"[{cfg.model} hidden={size}] {model.num_parameters} parameters: training {cfg.steps} steps")
        tr = train(
            model,
            source,
            steps=cfg.steps,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            seed=cfg.seed,
            eval_every=cfg.eval_every,
            checkpoint=out / f"{cfg.model}-{size}",
            resume=False,
            progress=progress,
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
            {
                "name": f"{cfg.model}-{size}",
                "size": size,
                "parameters": model.num_parameters,
                "train": tr.to_dict(),
                **m,
            }
        )
        (out / "results.json").write_text(json.dumps(results, indent=2))
    results["seconds"] = time.perf_counter() - t0
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return results
