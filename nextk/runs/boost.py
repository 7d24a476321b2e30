"""`nextk boost`: boost a checkpoint with a distinguisher and report before/after (docs/theory.md §4)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from nextk.boost import boost, distill
from nextk.checkpoint import load_model, save_model
from nextk.console import quiet
from nextk.distinguishers import LearnedDistinguisher, OptimalDistinguisher
from nextk.distinguishers.checks import pass_rate
from nextk.errors import InputError
from nextk.measure import kl
from nextk.models import MODELS
from nextk.runs.common import RESULTS, prepare, write_json
from nextk.sources import make_source
from nextk.stats import fmt


@dataclass
class Config:
    checkpoint: str  # model.safetensors or its run folder: the q to boost
    source: str  # registry name of the truth p
    source_params: dict  # its parameters
    k: int = 4  # window size
    distinguisher: str = "check"  # check | check:NAME | learned | optimal
    num_docs: int = 256  # p documents for choosing (r, η), and as many for reporting Δ
    distill_steps: int = 0  # also distill the boosted model into a fresh network (0: no)
    seed: int = 0  # every random draw derives from this


def pick_distinguisher(spec: str, source, model, k: int, seed: int):
    if spec == "learned":
        return "learned", LearnedDistinguisher(source.vocab_size, seed=seed).fit(source, model, k)
    if spec == "optimal":
        return "optimal", OptimalDistinguisher(source, model, k)
    if spec.startswith("check"):
        name = spec.partition(":")[2] or next(iter(source.checks), "")
        if name not in source.checks:
            raise InputError(f"source has no checker {name!r}; it has {sorted(source.checks)}")
        return f"check:{name}", source.checks[name]
    raise InputError(f"unknown distinguisher {spec!r}; use check, check:NAME, learned or optimal")


def run(cfg: Config, out: Path, *, log=quiet, progress: bool = False, force_new: bool = False) -> dict:
    source = make_source(cfg.source, **cfg.source_params)
    model = load_model(cfg.checkpoint, vocab_size=source.vocab_size)
    k, spec, num_docs, seed, distill_steps = cfg.k, cfg.distinguisher, cfg.num_docs, cfg.seed, cfg.distill_steps
    n = source.length
    prepare(out, cfg, force_new=force_new)
    name, d = pick_distinguisher(spec, source, model, k, seed)
    b = boost(model, d, k, p=source, num_docs=num_docs, seed=seed)
    kl_q, kl_b = kl(source, model, num_docs=num_docs, seed=seed + 1), kl(source, b, num_docs=num_docs, seed=seed + 1)
    check_name = next(iter(source.checks), None)
    res = {
        "distinguisher": name,
        "k": k,
        "length": n,
        "offset": b.offset,
        "eta": b.eta,
        "search": b.search_,
        "kl_before": kl_q.to_dict(),
        "kl_after": kl_b.to_dict(),
        "source": repr(source),
        "source_params": source.params,
        "model": model.name,
        "lemma1_guarantee_overall": b.search_["lemma1_guarantee_overall"],
        "lemma1_guarantee_tight": b.search_["lemma1_guarantee_tight"],
    }
    if check_name:
        check = source.checks[check_name]
        res["checker"] = check_name
        res["pass_before"] = pass_rate(check, model.sample(num_docs, n, generator=seed + 2)).to_dict()
        res["pass_after"] = pass_rate(check, b.sample(num_docs, generator=seed + 2)).to_dict()
        res["acceptance"] = b.acceptance_
    if distill_steps:
        fresh = MODELS[model.family](**model.config)
        distill(b, fresh, num_docs=4 * num_docs, steps=distill_steps, seed=seed, progress=False)
        save_model(fresh, out / "distilled.safetensors")
        res["kl_distilled"] = kl(source, fresh, num_docs=num_docs, seed=seed + 1).to_dict()
    write_json(out / RESULTS, res)
    return res


def table(res: dict) -> Table:
    t = Table(title=f"boost with {res['distinguisher']} at k={res['k']}: offset r={res['offset']}, η={res['eta']:.3f}")
    t.add_column("quantity")
    t.add_column("before")
    t.add_column("after")
    f = fmt
    t.add_row("KL(p̄‖q̄) nats", f(res["kl_before"]), f(res["kl_after"]))
    if "pass_before" in res:
        t.add_row(f"pass rate '{res['checker']}'", f(res["pass_before"]), f(res["pass_after"]))
    if "kl_distilled" in res:
        t.add_row("KL after distilling", "", f(res["kl_distilled"]))
    g = res["search"]["gain"]
    t.add_row("gain Δ (held out)", "", f(g))
    for o in res["search"]["offsets"]:
        t.add_row(
            f"  offset {o['offset']}: α_r {o['alpha']['value']:+.4f}",
            f"Lemma 1 ≥ {o['lemma1_guarantee']:.4f}",
            f"Δ {o['gain']['value']:.4f} at η={o['eta']:.2f}; {o['gain_at_half_alpha']['value']:.4f} at α_r/2",
        )
    return t


def draw(res: dict, out: Path) -> list[Path]:

    from nextk.runs.plots import BOUND, errorbar, integer_ticks, plt, save

    offs = res["search"]["offsets"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    xs = [o["offset"] for o in offs]
    errorbar(a1, xs, [o["gain"] for o in offs], fmt="o", label="Δ at chosen η")
    a1.plot(xs, [o["gain_at_half_alpha"]["value"] for o in offs], "s", label="Δ at η = α_r/2")
    guarantee = [o["lemma1_guarantee"] for o in offs]
    a1.plot(xs, guarantee, "_", markersize=20, color=BOUND["color"], label="Lemma 1: |S_r| α_r²/4")
    a1.set_xlabel("offset r")
    a1.set_ylabel("KL decrease Δ (nats)")
    a1.legend(fontsize=8)
    labels = ["KL (nats)"] + ([f"pass rate {res['checker']}"] if "pass_before" in res else [])
    keys = ["kl"] + (["pass"] if "pass_before" in res else [])
    for shift, when in ((-0.2, "before"), (0.2, "after")):
        ests = [res[f"{key}_{when}"] for key in keys]
        errorbar(a2, [i + shift for i in range(len(keys))], ests, fmt="o", label=when)
    a2.set_xticks(list(range(len(labels))), labels)
    a2.legend()
    integer_ticks(a1)
    fig.suptitle(f"{res['model']} on {res['source']}: boosting with {res['distinguisher']} (k={res['k']})", fontsize=10)
    return [save(fig, out / "boost.png")]


def show(res: dict) -> list:
    return [table(res)]
