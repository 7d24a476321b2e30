"""Plots and tables drawn from results dicts alone, so a figure can be redrawn without recomputing.

One style for the whole package: every plotted estimate with its 95% interval (`errorbar`), every
bound in the same colour and line (`BOUND`), the source and its parameters in every title (wrapped to
stay inside the figure), integer ticks where the axis counts something, log axes with at least two
labelled ticks (`log_y`), one y-axis and a legend per panel, and no empty panel (a panel without data
says why, or is left out). Tables put one quantity per row so that every interval stays on one line at
80 columns, and text from data goes through `rich.markup.escape`.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # the one place: files, never a window
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402
from rich.markup import escape  # noqa: E402
from rich.table import Table  # noqa: E402

from nextk.stats import fmt  # noqa: E402

BOUND = {"color": "black", "ls": "--"}  # every bound (Theorem 3, Lemma 1, δ) in every figure
SHORT = {"rao_blackwell": "RB", "paired": "paired MC", "exact": "exact"}


def errorbar(ax, xs, estimates: list[dict], **kwargs):
    """Plot estimate dicts with their 95% intervals as asymmetric error bars (clamped at 0: an
    interval end can sit a rounding error inside the value, e.g. Wilson at p = 1)."""
    values = [e["value"] for e in estimates]
    err = [
        [max(v - e["low"], 0.0) for v, e in zip(values, estimates)],
        [max(e["high"] - v, 0.0) for v, e in zip(values, estimates)],
    ]
    return ax.errorbar(xs, values, yerr=err, capsize=3, **kwargs)


def bound_band(ax, xs, estimates: list[dict], label: str):
    """A bound with its interval: the value as a line, the interval as a band, in the BOUND style."""
    ax.plot(xs, [e["value"] for e in estimates], **BOUND, label=label)
    ax.fill_between(xs, [e["low"] for e in estimates], [e["high"] for e in estimates], color=BOUND["color"], alpha=0.1)


def integer_ticks(*axes) -> None:
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def count_ticks(ax, xs) -> None:
    """An x axis that counts (digits, rounds): a tick at each value drawn, half a unit of room either side
    (a single value gets a readable axis too)."""
    xs = sorted(set(xs))
    if xs:
        ax.set_xticks(xs)
        ax.set_xlim(xs[0] - 0.5, xs[-1] + 0.5)


def wrapped(text: str, width: int) -> str:
    """A title broken into lines of at most `width` characters, so a long source name stays inside the figure."""
    return "\n".join(textwrap.wrap(text, width)) or text


def nice_floor(x: float) -> float:
    """The largest of 1, 2, 5 × 10^j at or below x > 0."""
    e = math.floor(math.log10(x))
    return max(m * 10.0**e for m in (1, 2, 5) if m * 10.0**e <= x * (1 + 1e-12))


def nice_ceil(x: float) -> float:
    """The smallest of 1, 2, 5, 10 × 10^j at or above x > 0."""
    e = math.floor(math.log10(x))
    return min(m * 10.0**e for m in (1, 2, 5, 10) if m * 10.0**e >= x * (1 - 1e-12))


def log_y(ax, estimates: list[dict]) -> None:
    """A logarithmic y axis that labels at least two ticks: ticks at 1, 2, 5 × 10^j, the limits widened to
    the grid values around the data. Intervals reaching 0 or below need a linear part: symlog, linear
    below the smallest positive value's decade."""
    lows = [e["low"] for e in estimates if e.get("low") is not None]
    highs = [e["high"] for e in estimates if e.get("high") is not None]
    values = [e["value"] for e in estimates if e.get("value") is not None]
    if not values:
        return
    pad = 1.15  # a point never sits on the frame
    top = nice_ceil(max(highs + values) * pad) if max(highs + values) > 0 else 1.0
    label = FuncFormatter(lambda y, _: f"{y:g}")
    if lows and min(lows) > 0:
        ax.set_yscale("log")
        bottom = nice_floor(min(lows) / pad)
        ax.set_ylim(bottom, top)
        wide = math.log10(top / bottom) > 3  # over three decades the decades alone are labels enough
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0,) if wide else (1.0, 2.0, 5.0)))
    else:
        positive = [v for v in values + highs if v > 0]
        linthresh = 10.0 ** math.floor(math.log10(min(positive))) if positive else 1e-3
        ax.set_yscale("symlog", linthresh=linthresh)
        ax.set_ylim(min(lows + values + [0.0]) * 1.1, max(top, 10 * linthresh))
    ax.yaxis.set_major_formatter(label)
    ax.yaxis.set_minor_formatter(NullFormatter())


def nothing_to_show(ax, what: str) -> None:
    """A panel with no data says so in words instead of standing empty."""
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, fontsize=9, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def model_table(m: dict, source: str = "") -> Table:
    """One model's panel (nextk.evaluation.measure_model), one row per quantity, grouped by k, so that it
    reads at 80 columns with every interval on one line: the excess loss, then per k each checker's, the
    learned distinguisher's and the TV ceiling's advantage, the learned share of TV and the Theorem 3 bound."""
    t = Table(title=escape(f"{m['name']} ({m['parameters']} params){' on ' + source if source else ''}"))
    t.add_column("k", justify="right")
    t.add_column("quantity")
    t.add_column("estimate [95% interval]", no_wrap=True)
    t.caption = (
        "advantages over documents (RB = Rao–Blackwellised: exact inner expectations); learned d: held-out "
        "advantage, fitted on other documents (fit acc.: its balanced accuracy on its own training pairs); "
        "learned / TV: Fieller interval"
    )
    t.add_row("", f"excess loss, nats/token (n={m['excess_loss']['n']})", fmt(m["excess_loss"], 5), end_section=True)
    for w in m["windows"]:
        est = SHORT.get(w["estimator"], w["estimator"])
        rows = [(f"checker '{c}' ({est})", fmt(e, signed=True)) for c, e in w["checkers"].items()]
        if "learned" in w:
            acc = w["learned"].get("train_accuracy")
            rows.append(
                ("learned d" + ("" if acc is None else f" (fit acc. {acc:.3f})"), fmt(w["learned"], signed=True))
            )
        rows += [("TV ceiling", fmt(w.get("tv"))), ("learned / TV", fmt(w.get("learned_share_of_tv"), 2))]
        rows.append(("Theorem 3 bound", fmt(w["theorem3"])))
        for i, (name, cell) in enumerate(rows):
            t.add_row(str(w["k"]) if i == 0 else "", escape(name), cell, end_section=i == len(rows) - 1)
    return t


def plot_advantage(models: list[dict], path: Path, source: str) -> Path:
    """Per model: each distinguisher's advantage against k with its interval, the Theorem 3 bound."""
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 4), squeeze=False, sharey=True)
    for ax, m in zip(axes[0], models):
        ws = m["windows"]
        ks = [w["k"] for w in ws]
        series = {f"checker {c}": [w["checkers"][c] for w in ws] for c in (ws[0]["checkers"] if ws else {})}
        if ws and all("learned" in w for w in ws):
            share = ws[-1].get("learned_share_of_tv")
            name = "learned" + (f" ({fmt(share, 2)} of TV at k={ws[-1]['k']})" if share else "")
            series[name] = [w["learned"] for w in ws]
        if ws and all("tv" in w for w in ws):
            series["TV ceiling"] = [w["tv"] for w in ws]
        for label, es in series.items():
            errorbar(ax, ks, es, marker="o", label=label)
        bound_band(ax, ks, [w["theorem3"] for w in ws], "Theorem 3 bound")
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("window size k")
        ax.set_title(f"{m['name']} (excess loss {fmt(m['excess_loss'])})", fontsize=9)
        ax.axhline(0, color="gray", lw=0.5)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("advantage (95% interval)")
    fig.suptitle(wrapped(source, 70 * len(models)), fontsize=10)
    return save(fig, path)


def plot_training(models: list[dict], path: Path, source: str) -> Path:
    """Held-out exact excess loss (held-out loss where the source has no exact law) against the optimiser
    step, with intervals, per model; the step whose weights were kept is marked. A run that ended before
    its first evaluation says so in the panel."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    key = "excess_loss"
    if not any(key in r for m in models for r in m["train"]["history"]):
        key = "eval_loss"
    shown = []
    for m in models:
        h = [r for r in m["train"]["history"] if key in r]
        if not h:
            continue
        line = errorbar(ax, [r["step"] for r in h], [r[key] for r in h], marker=".", label=m["name"])
        shown += [r[key] for r in h]
        kept = next((r for r in h if r["step"] == m["train"].get("best_step")), None)
        if kept is not None:
            ax.plot(
                [kept["step"]], [kept[key]["value"]], marker="*", ms=14, ls="none", mfc="none",
                color=line[0].get_color(), label=f"{m['name']}: kept step {kept['step']}",
            )  # fmt: skip
    what = "excess loss KL/n" if key == "excess_loss" else "loss"
    ax.set_title(wrapped(f"training on {source}: {what} on held-out documents", 70), fontsize=9)
    if not shown:
        steps = max((m["train"].get("steps", 0) for m in models), default=0)
        nothing_to_show(
            ax, f"no evaluation point: the run stopped at step {steps}, before its first held-out evaluation"
        )
        return save(fig, path)
    log_y(ax, shown)
    last = max(r["step"] for m in models for r in m["train"]["history"] if key in r)
    ax.set_xlim(0, last * 1.05 + 1)  # from the start of training (one evaluation still gets a readable axis)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel(f"{what} (nats/token)")
    integer_ticks(ax)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: "kept step" in labels[i])  # each curve, then its kept step
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=8)
    return save(fig, path)
