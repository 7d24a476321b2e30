"""Tables and plots drawn from results.json alone, so a figure can be redrawn without retraining."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rich.table import Table  # noqa: E402


def errorbar(ax, xs, estimates: list[dict], **kwargs):
    """Plot estimate dicts with their 95% intervals as asymmetric error bars (clamped at 0: an
    interval end can sit a rounding error inside the value, e.g. Wilson at p = 1)."""
    values = [e["value"] for e in estimates]
    err = [
        [max(v - e["low"], 0.0) for v, e in zip(values, estimates)],
        [max(e["high"] - v, 0.0) for v, e in zip(values, estimates)],
    ]
    return ax.errorbar(xs, values, yerr=err, capsize=3, **kwargs)


SHORT = {"rao_blackwell": "RB", "paired": "paired MC", "exact": "exact"}


def fmt(e: dict | None) -> str:
    if e is None:
        return "n/a"
    if e["stderr"] == 0:
        return f"{e['value']:.4f} (exact)"
    return f"{e['value']:+.4f} ±{(e['high'] - e['low']) / 2:.4f}"


def model_table(m: dict) -> Table:
    ex = m["excess_loss"]
    t = Table(
        title=f"{m['name']} ({m['parameters']} params): excess loss {ex['value']:.5f} "
        f"[{ex['low']:.5f}, {ex['high']:.5f}] nats/token (n={ex['n']})"
    )
    t.add_column("k", justify="right")
    checkers = list(m["windows"][0]["checkers"]) if m["windows"] else []
    for c in checkers:
        t.add_column(f"checker '{c}'")
    t.add_column("learned d")
    t.add_column("TV ceiling")
    t.add_column("Theorem 3 bound")
    t.add_column("est.")
    t.caption = "advantage ± 95% half-width over documents; RB = Rao–Blackwellised (exact inner expectations)"
    for w in m["windows"]:
        b = w["theorem3"]
        t.add_row(
            str(w["k"]),
            *[fmt(w["checkers"][c]) for c in checkers],
            fmt(w["learned"]),
            fmt(w.get("tv")),
            f"{b['value']:.4f} ({b['low']:.3f}–{b['high']:.3f})",
            SHORT.get(w["estimator"], w["estimator"]),
        )
    return t


def plot_advantage(results: dict, path: Path) -> Path:
    models = results["models"]
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 4), squeeze=False, sharey=True)
    for ax, m in zip(axes[0], models):
        ks = [w["k"] for w in m["windows"]]
        series = {f"checker {c}": [w["checkers"][c] for w in m["windows"]] for c in m["windows"][0]["checkers"]}
        series["learned"] = [w["learned"] for w in m["windows"]]
        if all("tv" in w for w in m["windows"]):
            series["TV ceiling"] = [w["tv"] for w in m["windows"]]
        for label, es in series.items():
            errorbar(ax, ks, es, marker="o", label=label)
        b = [w["theorem3"] for w in m["windows"]]
        ax.plot(ks, [e["value"] for e in b], "k--", label="Theorem 3 bound")
        ax.fill_between(ks, [e["low"] for e in b], [e["high"] for e in b], color="k", alpha=0.1)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("window size k")
        ax.set_title(f"{m['name']}  (excess loss {m['excess_loss']['value']:.4f})")
        ax.axhline(0, color="gray", lw=0.5)
    axes[0][0].set_ylabel("advantage (95% interval)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_training(results: dict, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in results["models"]:
        h = m["train"]["history"]
        if not h or "excess_loss" not in h[0]:
            continue
        steps = [r["step"] for r in h]
        ex = [r["excess_loss"] for r in h]
        ax.plot(steps, [e["value"] for e in ex], marker=".", label=m["name"])
        ax.fill_between(steps, [e["low"] for e in ex], [e["high"] for e in ex], alpha=0.2)
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("excess loss KL/n (nats/token)")
    ax.set_title("training: exact excess loss on held-out documents")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def draw(out: Path) -> list[Path]:
    """Redraw every plot of a run folder from its results.json."""
    results = json.loads((out / "results.json").read_text())
    return [plot_advantage(results, out / "advantage_vs_k.png"), plot_training(results, out / "training.png")]
