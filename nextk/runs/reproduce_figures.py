"""The figures of `nextk reproduce`, each drawn from the data its section carries (nextk.runs.verdicts) — or, for
the barrier, from the barrier run's results — so a report can be redrawn without recomputing anything."""

from __future__ import annotations

import functools
import math
from pathlib import Path

from nextk.runs.plots import BOUND, errorbar, plt, save

VIOLATION = {"color": "red", "marker": "x", "s": 60, "zorder": 5}


def _e(e: dict | None) -> dict:
    """An estimate for errorbar (missing interval ends drawn as no error)."""
    if e is None:
        return {"value": math.nan, "low": math.nan, "high": math.nan}
    v = e["value"]
    return {
        "value": v,
        "low": v if e.get("low") is None else e["low"],
        "high": v if e.get("high") is None else e["high"],
    }


def _abs(e: dict) -> dict:
    e = _e(e)
    lo, hi = e["low"], e["high"]
    bottom = 0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi))
    return {"value": abs(e["value"]), "low": bottom, "high": max(abs(lo), abs(hi))}


def _grid(n: int, width: float = 4.2, height: float = 3.4):
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.axis("off")
    return fig, flat[:n]


def _pair(title: str):
    """Two panels side by side under the section's title."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    fig.suptitle(title, fontsize=10)
    return fig, axes


def _drawer(key: str):
    """A drawer (fig_data, path, title) -> the saved figure's path, or None when fig_data holds no `key` items, from
    draw(items, fig_data, title) -> the figure."""

    def wrap(draw):
        @functools.wraps(draw)
        def drawer(fig_data: dict, path: Path, title: str) -> Path | None:
            items = fig_data.get(key) or []
            return save(draw(items, fig_data, title), path) if items else None

        return drawer

    return wrap


@_drawer("points")
def theorem3(points: list[dict], fig_data: dict, title: str):
    fig, ax = plt.subplots(figsize=(6.5, 5))
    kinds = {}
    for p in points:
        kind = "checker" if p["distinguisher"].startswith("checker_") else p["distinguisher"]
        kinds.setdefault(kind, []).append(p)
    for kind, ps in kinds.items():
        xs = [p["bound"]["value"] for p in ps]
        errorbar(ax, xs, [_abs(p["advantage"]) for p in ps], fmt="o", ms=3, alpha=0.7, label=f"|a|, {kind}")
    bad = [p for p in points if p["status"] == "violated"]
    if bad:
        xs, ys = [p["bound"]["value"] for p in bad], [abs(p["advantage"]["value"]) for p in bad]
        ax.scatter(xs, ys, **VIOLATION, label="violation (intervals disjoint)")
    top = max(max(p["bound"]["value"] for p in points), max(abs(p["advantage"]["value"]) for p in points)) * 1.05
    ax.plot([0, top], [0, top], **BOUND, label="|a| = bound")
    ax.set_xlabel("Theorem 3 bound sqrt(k·KL/(2(n−k+1)))")
    ax.set_ylabel("|advantage| (95% interval)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return fig


def _trend(series: list[dict], x: str, xlabel: str, more, title: str):
    """One panel per series: the advantage against x (the TV advantage with its interval, else the value read) and
    what more(ax, series, its points) adds, under the section's title."""
    fig, axes = _grid(len(series))
    for ax, s in zip(axes, series):
        pts = sorted(s["points"], key=lambda p: p[x])
        ests = [_e(p["advantage"]) if p["advantage"] else _e({"value": p["value"]}) for p in pts]
        errorbar(ax, [p[x] for p in pts], ests, fmt="o", ms=4, label=s["what"])
        more(ax, s, pts)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("advantage")
        ax.set_title(s["label"], fontsize=8)
        ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=10)
    return fig


def _slope_line(ax, s: dict, pts: list[dict]) -> None:
    """The fitted slope against log2 of the size, on a log2 axis."""
    sl = s.get("slope")
    if sl:
        xs = sorted({p["size"] for p in pts})
        label = f"slope {sl['value']:+.3f} [{sl['low']:+.3f}, {sl['high']:+.3f}]/doubling"
        ax.plot(xs, [sl["intercept"] + sl["value"] * math.log2(x) for x in xs], color="gray", lw=1, label=label)
    ax.set_xscale("log", base=2)


def _bound_marks(ax, s: dict, pts: list[dict]) -> None:
    """The Theorem 3 bound at each n where it was measured."""
    bounds = [p for p in pts if p.get("bound")]
    if bounds:
        xs, ys = [p["length"] for p in bounds], [p["bound"]["value"] for p in bounds]
        ax.plot(xs, ys, "_", ms=12, color=BOUND["color"], label="Theorem 3 bound")


@_drawer("series")
def size_trend(series: list[dict], fig_data: dict, title: str):
    return _trend(series, "size", "model size (width)", _slope_line, title)


@_drawer("series")
def length_flat(series: list[dict], fig_data: dict, title: str):
    flat = f" (flat: change within ±{fig_data.get('margin')})"
    return _trend(series, "length", "document length n", _bound_marks, title + flat)


@_drawer("chosen")
def lemma1(chosen: list[dict], fig_data: dict, title: str):
    """Left: per offset, Δ at η = α_A/2 (held out) against |S_r|α_A²/4 (α_A fitted on other documents), when the
    run recorded them (context: an identity per document); right: each run's KL drop against |S_r|(ηα_r − η²)."""
    points = fig_data.get("points") or []
    fig, (a1, a2) = _pair(title)
    if points:
        xs = [p["guarantee"]["value"] for p in points]
        errorbar(a1, xs, [_e(p["gain_at_half_alpha"]) for p in points], fmt="o", ms=4, label="Δ(r, α_A/2), held out")
        top = max(max(xs), max(p["gain_at_half_alpha"]["value"] for p in points)) * 1.05
        a1.plot([0, top], [0, top], **BOUND, label="Δ = |S_r|α_A²/4")
        a1.set_xlabel("Lemma 1 guarantee |S_r|·α_A²/4 (nats, α_A fitted)")
        a1.set_ylabel("gain Δ at η = α_A/2 (nats, held out)")
        a1.legend(fontsize=7)
    else:
        a1.axis("off")
        a1.text(0.5, 0.5, "per-offset check not shown:\nneeds α_r fitted on other documents\nthan Δ(α_r/2)",
                ha="center", va="center", fontsize=9)  # fmt: skip
    idx = list(range(len(chosen)))
    errorbar(
        a2, [i - 0.1 for i in idx], [_e(c["chosen_gain"]) for c in chosen], fmt="o", label="KL drop of q′ at (r, η)"
    )
    errorbar(a2, [i + 0.1 for i in idx], [_e(c["guarantee"]) for c in chosen], fmt="_", ms=14, color=BOUND["color"],
             label="|S_r|(ηα_r − η²)")  # fmt: skip
    a2.set_xticks(idx, [str(i + 1) for i in idx])
    a2.set_xlabel("boosting run")
    a2.set_ylabel("KL(p̄‖q̄) − KL(p̄‖q̄′) (nats)")
    a2.set_title("the boosted model against Lemma 1", fontsize=8)
    a2.legend(fontsize=7)
    return fig


@_drawer("groups")
def lemma4(groups: list[dict], fig_data: dict, title: str):
    fig, (a1, a2) = _pair(title)
    idx = list(range(len(groups)))
    errorbar(a1, idx, [g["share"] for g in groups], fmt="o", label="two sizes sufficed (Wilson 95%)")
    a1.axhline(groups[0]["promised"], **BOUND, label=f"promised {groups[0]['promised']}")
    a1.set_xticks(idx, [g["label"] for g in groups], fontsize=6, rotation=15)
    a1.set_ylim(-0.05, 1.05)
    a1.set_ylabel("share of runs")
    a1.legend(fontsize=7)
    x = 0
    for g in groups:
        outs = g["outputs"]
        for key, marker in (("learned", "o"), ("tv", "s")):
            pts = [(x + i, _abs(o[key])) for i, o in enumerate(outs) if o.get(key)]
            if pts:
                errorbar(
                    a2,
                    [p for p, _ in pts],
                    [e for _, e in pts],
                    fmt=marker,
                    ms=4,
                    label=("|a| learned" if key == "learned" else "TV (context)") if x == 0 else None,
                )
        a2.hlines(
            g["eps"], x - 0.4, x + len(outs) - 0.6, color="gray", ls=":", label=f"ε = {g['eps']}" if x == 0 else None
        )
        x += len(outs) + 1
    a2.set_xlabel("run (output of Algorithm 1)")
    a2.set_ylabel("advantage at k of the output")
    a2.legend(fontsize=7)
    return fig


@_drawer("series")
def theorem2(series: list[dict], fig_data: dict, title: str):
    fig, (a1, a2) = _pair(title)
    for s in series:
        pts = s["points"]
        b = [p["bit_size"] for p in pts]
        line = errorbar(a1, b, [_e(p["excess_loss"]) for p in pts], marker="o", ms=4, label=s["label"])
        color = line[0].get_color()
        a1.axhline(s["float"]["excess_loss"]["value"], color=color, ls=":", lw=1)
        if s.get("bstar") is not None:
            a1.axvline(s["bstar"], color=color, ls="--", lw=0.8)
        tv = [(p["bit_size"], _e(p["tv"])) for p in pts if p.get("tv")]
        if tv:
            errorbar(a2, [x for x, _ in tv], [e for _, e in tv], marker="s", ms=4, color=color, label=s["label"])
            if s["float"].get("tv"):
                a2.axhline(s["float"]["tv"]["value"], color=color, ls=":", lw=1)
    a1.set_yscale("symlog", linthresh=1e-3)
    a1.set_ylabel("excess loss (nats/token); dotted: float; dashed: b*")
    a2.set_ylabel("TV advantage at k; dotted: float")
    for ax in (a1, a2):
        ax.set_xlabel("bit size b = 1 + I + F")
        ax.legend(fontsize=6)
    return fig


@_drawer("bars")
def barrier_hidden(bars: list[dict], fig_data: dict, title: str):
    fig, ax = plt.subplots(figsize=(6, 4))
    labels = ["plain (product first)"] + [b["variant"] for b in bars]
    ests = [_e(bars[0]["plain"])] + [_e(b["validity"]) for b in bars]
    errorbar(ax, list(range(len(labels))), ests, fmt="o")
    ax.set_xticks(list(range(len(labels))), labels, fontsize=8)
    ax.set_ylabel("valid visible documents (Wilson 95%)")
    ax.set_title(title, fontsize=9)
    return fig


DRAWERS = {
    "theorem3": theorem3,
    "size_trend": size_trend,
    "length_flat": length_flat,
    "lemma1": lemma1,
    "lemma4": lemma4,
    "theorem2": theorem2,
    "barrier_hidden": barrier_hidden,
}
