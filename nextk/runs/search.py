"""`nextk search`: Algorithm 1 (with bits, Algorithm 2) repeated over seeds (docs/theory.md §5–6):
how often two sizes sufficed, with its interval, and every run's sizes, losses and decreases."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from nextk.console import quiet
from nextk.runs.common import RESULTS, prepare, write_json
from nextk.search import default_schedule, search_repeats
from nextk.sources import make_source
from nextk.stats import fmt

SHORT_KEYS = {"hidden": "h", "size": "s", "steps_per_token": "τ", "d_model": "d", "layers": "L", "heads": "H"}


@dataclass
class Config:
    source: str  # registry name of the truth
    source_params: dict = field(default_factory=dict)  # its parameters
    eps: float = 0.1  # target advantage ε
    k: int = 2  # window size
    family: str = "paper_rnn"  # model family whose size schedule is searched
    bits: bool = False  # Algorithm 2: bit size in the schedule (quantisation-aware training)
    max_start: int | None = None  # j₀ drawn from 1..max_start (default min(N, 3))
    max_sizes: int = 6  # cap on sizes tried per run
    steps: int = 300  # training steps per size
    lr: float = 5e-3  # AdamW learning rate
    repeats: int = 1  # runs with consecutive seeds
    num_docs: int = 200  # p documents per advantage estimate of each trained size
    seed: int = 0  # every random draw derives from this


def run(cfg: Config, out: Path, *, log=quiet, progress: bool = False, force_new: bool = False) -> dict:
    source = make_source(cfg.source, **cfg.source_params)
    schedule = default_schedule(cfg.family, cfg.bits)  # validates the family first
    prepare(out, cfg, force_new=force_new)
    res = search_repeats(
        source,
        cfg.repeats,
        eps=cfg.eps,
        k=cfg.k,
        family=cfg.family,
        schedule=schedule,
        max_start=cfg.max_start,
        max_sizes=cfg.max_sizes,
        seed=cfg.seed,
        num_docs=cfg.num_docs,
        log=log,
        train_kwargs={"steps": cfg.steps, "lr": cfg.lr, "eval_every": max(cfg.steps // 3, 1)},
    )
    res = {"source": repr(source), "source_params": source.params, **json.loads(json.dumps(res))}  # int keys → str
    write_json(out / RESULTS, res)
    return res


def compact(cfg: dict) -> str:
    return " ".join(f"{SHORT_KEYS.get(k, k)}={v}" for k, v in cfg.items())


def run_table(res: dict) -> Table:
    t = Table(
        title=f"size search: ε={res['eps']}, k={res['k']}, δ={res['delta']:.5f} nats/token; j₀={res['j0']} "
        f"from 1..{res['max_start']} (theory: 1..{res['theoretical_max_start']}); output j={res['stop_index']}"
    )
    for c in ("j", "config", "params", "held-out loss", "excess loss", "decrease vs δ", "TV at k"):
        t.add_column(c)
    for j in res["tried"]:
        js = str(j)
        dec = res["decreases"].get(js)
        tv = res["measurement"].get(js, {}).get("windows", [{}])[0].get("tv")
        t.add_row(
            js + (" ←" if j == res["stop_index"] else ""),
            compact(res["configs"][js]),
            str(res["parameters"][js]),
            fmt(res["losses"][js], 5),
            fmt(res["excess"].get(js), 5),
            "" if dec is None else f"{dec:+.5f} {'>' if dec > res['delta'] else '≤'} δ",
            fmt(tv),
        )
    t.caption = res["departs"]
    return t


def summary(res: dict) -> str:
    two = res["two_sizes"]
    return (
        f"two sizes sufficed in {two['value']:.0%} of {res['repeats']} runs, 95% interval [{two['low']:.2f}, "
        f"{two['high']:.2f}] (Lemma 4 promises ≥ 90% under exact minimisation and j₀ from 1..N)"
    )


def draw(results: dict, out: Path) -> list[Path]:
    return [plot_run(run_res, out / f"search-{i}.png", results["source"]) for i, run_res in enumerate(results["runs"])]


def plot_run(res: dict, path: Path, source: str) -> Path:

    from nextk.runs.plots import BOUND, errorbar, integer_ticks, plt, save

    js = res["tried"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    loss = [res["losses"][str(j)] for j in js]
    errorbar(a1, js, loss, marker="o", label="held-out loss")
    for j, e in zip(js, loss):
        a1.hlines(e["value"] - res["delta"], j + 0.6, j + 1.4, **BOUND, label="L(q_j) − δ" if j == js[0] else None)
    a1.axvline(res["stop_index"], color="g", ls=":", label=f"output j={res['stop_index']}")
    a1.set_ylabel("loss (nats/token)")
    a1.set_title(f"Algorithm 1: δ = {res['delta']:.4g}", fontsize=9)
    meas = res["measurement"]
    if meas:
        for key, label in (("tv", "TV ceiling"), ("learned", "learned")):
            vals = [meas[str(j)]["windows"][0].get(key) for j in js]
            if all(v is not None for v in vals):
                errorbar(a2, js, vals, marker="o", label=label)
        a2.plot(js, [meas[str(j)]["windows"][0]["theorem3"]["value"] for j in js], **BOUND, label="Theorem 3 bound")
        a2.axhline(res["eps"], color="gray", ls=":", label=f"ε = {res['eps']}")
        a2.set_ylabel(f"advantage at k={res['k']}")
    for ax in (a1, a2):
        ax.set_xlabel("size index j")
        ax.legend(fontsize=8)
    integer_ticks(a1, a2)
    fig.suptitle(source, fontsize=10)
    return save(fig, path)


def show(res: dict) -> list:
    return [*(run_table(r) for r in res["runs"]), summary(res)]
