"""`nextk demo`: the main job (about 1 minute): GRU-2 and GRU-32 trained on a Dyck language; excess loss
and, at k = 1, 2, 4, 8, checker / learned / TV advantages against the Theorem 3 bound. An interrupted --out
folder resumes.

Config → build from the registries → train (resumable) → `nextk.evaluation.measure_model` →
config.json + results.json → plots drawn from results.json.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.markup import escape

from nextk.bounds import check_window
from nextk.console import quiet
from nextk.errors import InputError
from nextk.evaluation import measure_model
from nextk.models import MODELS
from nextk.runs.common import RESULTS, check_documents, pick, prepare, read_json, write_json
from nextk.sources import make_source
from nextk.stats import fmt
from nextk.train import check_budget, train

MEASURED = "measured.json"  # per model folder: its panel, one window size at a time (what a resume skips)
TARGET_SHARE = 0.5  # the learned distinguisher should reach half of the TV ceiling where TV is large


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
    learned_hidden: int = 32  # width of the learned distinguisher's GRUs (its size bound)
    learned_steps: int = 600  # its optimiser steps (pairwise + pointwise logistic loss on shared-prefix pairs)
    learned_docs: int = 2048  # documents it is fitted on, a quarter held back for τ (other seeds than measured on)
    seed: int = 0  # every random draw derives from this

    def run_name(self) -> str:
        return f"demo-{self.source}-{self.model}-seed{self.seed}"


DemoConfig = Config  # the name earlier releases exported


def run(cfg: Config, out: Path, *, log=quiet, progress: bool = False, force_new: bool = False) -> dict:
    """Train each size (resuming from its checkpoint in `out`), measure it, write results.json."""
    check_budget(steps=cfg.steps, batch_size=cfg.batch_size, eval_every=cfg.eval_every, num_docs=cfg.num_docs)
    source = make_source(cfg.source, **cfg.source_params)
    for k in cfg.ks:  # every option is checked before a model is trained
        check_window(k, source.length)
    if not cfg.sizes or min(cfg.sizes) < 1:
        raise InputError(f"--sizes must be widths ≥ 1, got {cfg.sizes}")
    check_documents(4 * cfg.num_docs + cfg.learned_docs + cfg.batch_size, source.length, "the demo")
    prepare(out, cfg, force_new=force_new, log=log)
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
        log(f"{model.name}: {model.num_parameters} parameters, training {cfg.steps} steps")
        budget = pick(cfg, "steps", "batch_size", "lr", "seed", "eval_every")
        tr = train(model, source, checkpoint=out / model.name, progress=progress, log=log, **budget)
        m = measure_kept(source, model, cfg, tr.to_dict(), out / model.name, log=log)
        kept = kept_step(tr.to_dict())
        log(f"{model.name}: {kept['sentence']}")
        results["models"].append(
            {
                "name": model.name,
                "size": size,
                "parameters": model.num_parameters,
                "train": tr.to_dict(),
                "kept": kept,
                **m,
            }
        )
        write_json(out / RESULTS, results)
    results["seconds"] = time.perf_counter() - t0
    write_json(out / RESULTS, results)
    return results


def measure_kept(source, model, cfg: Config, trained: dict, folder: Path, *, log=quiet) -> dict:
    """`measure_model` one window size at a time, each finished k kept in folder/measured.json and skipped when
    the demo resumes. Every k draws from its own seeds (seed + 100 + k, …), so the panel is the same measured
    in one go or across interruptions. A record for other panel settings or another training state is ignored."""
    panel = pick(cfg, "num_docs", "seed", "learned_hidden", "learned_steps", "learned_docs")
    key = {"panel": panel, "source": source.params, "steps": trained["steps"], "best_step": trained["best_step"]}
    path = folder / MEASURED
    kept = read_json(path) if path.is_file() else {}
    if kept.get("key") != key:
        kept = {"key": key, "windows": {}}
    for k in cfg.ks:
        if str(k) in kept["windows"] and "head" in kept:
            log(f"  k={k}: measured before ({escape(str(path))})")
            continue
        m = measure_model(source, model, [k], log=log, **panel)
        kept["head"] = {name: value for name, value in m.items() if name != "windows"}  # excess loss: same seed
        kept["windows"][str(k)] = m["windows"][0]
        write_json(path, kept)
    if "head" not in kept:  # no window sizes: the excess loss alone
        kept["head"] = measure_model(source, model, [], log=log, **panel)
    return {**kept["head"], "windows": [kept["windows"][str(k)] for k in cfg.ks]}


def kept_step(train: dict) -> dict:
    """Which training step's weights were measured (train() keeps the best held-out evaluation), with its
    held-out excess loss, and the last step's for comparison."""
    hist = train["history"]
    if not hist:
        return {"step": train["steps"], "sentence": f"no held-out evaluation; the weights of step {train['steps']}"}
    best = next((r for r in hist if r["step"] == train["best_step"]), hist[-1])
    last = hist[-1]
    key = "excess_loss" if "excess_loss" in best else "eval_loss"
    what = key.replace("_", " ")
    sentence = f"kept step {best['step']} of {last['step']} (lowest held-out loss): {what} {fmt(best[key], 5)}"
    if best is not last:
        sentence += f"; the last step had {fmt(last[key], 5)}"
    return {"step": best["step"], "last_step": last["step"], key: best[key], "sentence": sentence}


def learned_sentences(results: dict) -> list[str]:
    """Per model, the learned distinguisher's share of the TV ceiling at the largest k, read against the
    target of one half through its interval (a computed sentence, not a fixed one)."""
    out = []
    for m in results["models"]:
        rows = [w for w in m["windows"] if w.get("learned_share_of_tv")]
        if not rows:
            continue
        w = rows[-1]
        share, fit = w["learned_share_of_tv"], w.get("learned_fit", {})
        low, high = share["low"], share["high"]
        if low is not None and low >= TARGET_SHARE:
            verdict = f"at least {TARGET_SHARE:.0%} of the ceiling (the whole interval lies above)"
        elif high is not None and high < TARGET_SHARE:
            verdict = f"below {TARGET_SHARE:.0%} of the ceiling (the whole interval lies below): target missed"
        else:
            verdict = f"not resolved against {TARGET_SHARE:.0%} (the interval contains it)"
        out.append(
            f"{m['name']}, k={w['k']}: learned advantage {fmt(w['learned'])} against TV {fmt(w['tv'])}, "
            f"share {fmt(share, 2)} — {verdict}; fitted accuracy {w['learned']['train_accuracy']:.3f} on "
            f"{fit.get('fit_pairs', '?')} pairs from {fit.get('fit_docs', '?')} documents, measured on "
            f"{w['learned']['n']} others"
        )
    return out


def show(results: dict) -> list:
    """What `nextk demo` prints: per model its panel, which step was kept, and the learned-distinguisher
    sentences."""
    from nextk.runs.plots import model_table

    items: list = []
    for m in results["models"]:
        items.append(model_table(m, results["source"]))
        items.append(m.get("kept", {}).get("sentence", ""))
    items += learned_sentences(results)
    return items


def draw(results: dict, out: Path) -> list[Path]:
    from nextk.runs.plots import plot_advantage, plot_training

    return [
        plot_advantage(results["models"], out / "advantage_vs_k.png", results["source"]),
        plot_training(results["models"], out / "training.png", results["source"]),
    ]
