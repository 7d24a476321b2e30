"""`nextk boost`: boost a checkpoint with a distinguisher and report before/after (THEORY.md §4)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rich.table import Table  # noqa: E402

from nextk.boost import boost, distill  # noqa: E402
from nextk.checkpoint import load_model, save_model  # noqa: E402
from nextk.distinguishers import LearnedDistinguisher, OptimalDistinguisher  # noqa: E402
from nextk.distinguishers.checks import pass_rate  # noqa: E402
from nextk.errors import InputError  # noqa: E402
from nextk.measure import kl  # noqa: E402
from nextk.models import MODELS  # noqa: E402
from nextk.report import errorbar  # noqa: E402


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


def run_boost(
    source, checkpoint: Path, k: int, spec: str, *, num_docs: int, seed: int, distill_steps: int, out: Path, log=print
) -> dict:
    model = load_model(checkpoint, vocab_size=source.vocab_size)
    n = source.length
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
        "lemma1_guarantee_overall": b.search_["lemma1_guarantee_overall"],
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
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(res, indent=2))
    plot_boost(res, out / "boost.png")
    log(boost_table(res))
    log(f"wrote {out}/results.json and boost.png")
    return res


def boost_table(res: dict) -> Table:
    t = Table(title=f"boost with {res['distinguisher']} at k={res['k']}: offset r={res['offset']}, η={res['eta']:.3f}")
    t.add_column("quantity")
    t.add_column("before")
    t.add_column("after")
    f = lambda e: f"{e['value']:.4f} [{e['low']:.4f}, {e['high']:.4f}]"  # noqa: E731
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


def plot_boost(res: dict, path: Path) -> Path:
    offs = res["search"]["offsets"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    xs = [o["offset"] for o in offs]
    errorbar(a1, xs, [o["gain"] for o in offs], fmt="o", label="Δ at chosen η")
    a1.plot(xs, [o["gain_at_half_alpha"]["value"] for o in offs], "s", label="Δ at η = α_r/2")
    a1.plot(xs, [o["lemma1_guarantee"] for o in offs], "k_", markersize=20, label="Lemma 1: |S_r| α_r²/4")
    a1.set_xlabel("offset r")
    a1.set_ylabel("KL decrease Δ (nats)")
    a1.legend(fontsize=8)
    labels, before, after = ["KL"], [res["kl_before"]["value"]], [res["kl_after"]["value"]]
    if "pass_before" in res:
        labels.append(f"pass rate {res['checker']}")
        before.append(res["pass_before"]["value"])
        after.append(res["pass_after"]["value"])
    idx = range(len(labels))
    a2.bar([i - 0.2 for i in idx], before, 0.4, label="before")
    a2.bar([i + 0.2 for i in idx], after, 0.4, label="after")
    a2.set_xticks(list(idx), labels)
    a2.legend()
    fig.suptitle(f"boosting with {res['distinguisher']} (k={res['k']}, η={res['eta']:.2f})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
