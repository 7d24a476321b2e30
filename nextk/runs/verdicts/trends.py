"""Two of nextk's own observations, not claims of the paper: the advantage against model size, and against the
document length n. Theorem 3 is an upper bound; it makes no monotone-trend claim, so these sections are labelled
observations and their verdicts say nothing about the paper. Each with its calibration below.

- size: per group (source, n, family, k) the least-squares slope of the advantage on log2(size) with its
  Student-t standard error (n − 2 dof); "falls" (holds) when Holm's procedure finds a negative slope in some
  group; "rises" (violated) only when every group's slope is positive at 5% (the observation needs one group).
- length: per group (source, model, k) the change over the measured n range (slope × range); "flat" (holds) when
  in every group the change lies within ±`FLAT_MARGIN` by two one-sided t tests at 5%; "grows" (violated) when
  Holm's procedure finds a change above +FLAT_MARGIN.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
from scipy.stats import linregress
from scipy.stats import t as student_t

from nextk.runs.verdicts.rules import NEXTK, check, conclude, est, iv, ok_rows, z_test
from nextk.runs.verdicts.theorem3 import distinguishers

FLAT_MARGIN = 0.05  # |change of the advantage| over the measured n range that still counts as flat


def slope(xs: list[float], ys: list[float]) -> dict | None:
    """Least-squares slope of ys on xs with a 95% Student-t interval (None with fewer than 3 points or one x)."""
    if len(xs) < 3 or len(set(xs)) < 2:
        return None
    fit = linregress(xs, ys)
    if not math.isfinite(fit.stderr):
        return None
    half = student_t.ppf(0.975, len(xs) - 2) * fit.stderr
    return {"value": fit.slope, "low": fit.slope - half, "high": fit.slope + half, "stderr": fit.stderr,
            "n": len(xs), "intercept": fit.intercept}  # fmt: skip


def trend_value(r: dict) -> tuple[float | None, str]:
    """The advantage a trend is read from: the TV ceiling when measured, else the largest |advantage|."""
    if r.get("tv") is not None:
        return r["tv"], "TV advantage (optimal distinguisher)"
    values = [abs(r[c]) for c in distinguishers(r)]
    return (max(values), "largest |advantage|") if values else (None, "")


def trend_groups(rows: list[dict], x: str, fields: tuple[str, ...]):
    """The measured rows grouped by `fields` and k, in sorted order; only groups where `x` takes two or more
    values, each as (fields' values and k, rows, sorted values of x, what is read)."""
    groups = defaultdict(list)
    for r in ok_rows(rows, "measure"):
        if r.get(x) is not None and r.get("k") is not None and trend_value(r)[0] is not None:
            groups[(*(r.get(f) for f in fields), r["k"])].append(r)
    for group, rs in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        xs = sorted({r[x] for r in rs})
        if len(xs) >= 2:
            yield group, rs, xs, trend_value(rs[0])[1]


def trend_points(rs: list[dict], x: str, name: str, column: str) -> list[dict]:
    return [{x: r[x], "value": trend_value(r)[0], "advantage": est(r, "tv"), name: est(r, column)} for r in rs]


def size_trend(rows: list[dict]) -> dict:
    checks, series = [], []
    for (src, _key, n, family, k), rs, sizes, what in trend_groups(
        rows, "size", ("source_name", "source_key", "length", "family")
    ):
        s = slope([math.log2(r["size"]) for r in rs], [trend_value(r)[0] for r in rs])
        label = f"{src} (n={n}), {family}, k={k}"
        p_wrong, p_right = (1.0, 1.0) if s is None else z_test(-s["value"], s["stderr"], s["n"] - 2)
        sentence = (
            f"{label}: {what} against log2 size, slope {iv(s, '+.4f')} per doubling over sizes "
            f"{', '.join(map(str, sizes))} ({len(rs)} models); p(rises) = {p_wrong:.3g}, p(falls) = {p_right:.3g}"
        )
        checks.append(check(sentence, p_wrong, p_right, premise="" if s else "too few points for an interval"))
        series.append({"label": label, "k": k, "what": what, "slope": s,
                       "points": trend_points(rs, "size", "excess_loss", "excess_loss")})  # fmt: skip
    return conclude(
        "size_trend",
        "nextk's observation: the advantage falls as the model grows",
        "Not a claim of the paper (Theorem 3 is an upper bound, not a trend): nextk's observation that at fixed "
        "source, n and k the TV advantage falls with log2 of the model size, every seed a point. 'holds' reads "
        "'falls in some group, rises in none'; 'violated' reads 'rises in some group'.",
        checks,
        {"kind": "size_trend", "series": series},
        "no group of models with two or more sizes at the same source, n and k",
        f"{len(series)} groups (source, n, family, k);",
        whose=NEXTK,
        test="per group: the slope on log2 size, Student-t with n − 2 dof, one-sided each way",
        exists=True,
    )


def length_flat(rows: list[dict], margin: float = FLAT_MARGIN) -> dict:
    checks, series = [], []
    for (src, _key, family, size, k), rs, ns, what in trend_groups(
        rows, "length", ("source_name", "source_key", "family", "size")
    ):
        span = ns[-1] - ns[0]
        s = slope([r["length"] for r in rs], [trend_value(r)[0] for r in rs])
        label = f"{src}, {family}-{size}, k={k}"
        change = None if s is None else {q: s[q] * span for q in ("value", "low", "high", "stderr")} | {"n": s["n"]}
        if change is None:
            p_wrong = p_right = 1.0
        else:
            dof = s["n"] - 2
            p_wrong, p_below = z_test(margin - change["value"], change["stderr"], dof)
            p_above = z_test(change["value"] + margin, change["stderr"], dof)[1]
            p_right = max(p_below, p_above)
        sentence = (
            f"{label}: {what} changes by {iv(change, '+.4f')} from n = {ns[0]} to {ns[-1]} ({len(rs)} models); "
            f"p(grows by more than {margin}) = {p_wrong:.3g}, p(within ±{margin}) = {p_right:.3g}"
        )
        checks.append(check(sentence, p_wrong, p_right, premise="" if change else "too few points for an interval"))
        series.append({"label": label, "k": k, "what": what,
                       "points": trend_points(rs, "length", "bound", "theorem3")})  # fmt: skip
    return conclude(
        "length_flat",
        "nextk's observation: at fixed k, the advantage stays flat as n grows",
        "Not a claim of the paper: Theorem 3's bound depends on the per-token excess loss, not on n, and nextk "
        "observes whether the advantage itself stays flat. Flat: the change over the measured n range "
        f"(least-squares slope × range) lies within ±{margin}; 'violated' reads 'grows by more than {margin}'.",
        checks,
        {"kind": "length_flat", "series": series, "margin": margin},
        "no group of models measured at two or more lengths n with the same k",
        f"{len(series)} groups (source, model, k);",
        whose=NEXTK,
        test=(
            f"per group: the change over the n range, two one-sided t tests against ±{margin}"
            f"; growth: t against +{margin}"
        ),
    )


# ---------------------------------------------------------------------------------------------- calibration

GROUPS, SIZES, LENGTHS, SEEDS, NOISE = 3, (2, 4, 8, 16), (8, 12, 16, 20), 2, 0.02


def _row(group: int, x: str, value: float, seed: int, tv: float) -> dict:
    other = {"size": 8, "length": 12} | {x: value}
    return {"stage": "measure", "source_name": f"s{group}", "source_key": "{}", "family": "gru", "k": 2,
            "seed": seed, "tv": tv} | other  # fmt: skip


def synthetic_size(rng: np.random.Generator, effect: float) -> list[dict]:
    """3 groups × 4 sizes × 2 seeds, noise sd 0.02: slope 0 per doubling everywhere (effect 0: the boundary), or
    +effect in every group (the observation needs one group, so its opposite is a rise in all of them)."""
    return [
        _row(g, "size", s, seed, 0.2 + effect * math.log2(s) + rng.normal(0, NOISE))
        for g in range(GROUPS) for s in SIZES for seed in range(SEEDS)
    ]  # fmt: skip


def synthetic_length(rng: np.random.Generator, effect: float) -> list[dict]:
    """3 groups × 4 lengths × 2 seeds, noise sd 0.02: a change of exactly +FLAT_MARGIN over n = 8..20 in every
    group (effect 0: the boundary of 'flat') and margin + effect in the first."""
    span = LENGTHS[-1] - LENGTHS[0]
    rows = []
    for g in range(GROUPS):
        change = FLAT_MARGIN + (effect if g == 0 else 0.0)
        for n in LENGTHS:
            for seed in range(SEEDS):
                rows.append(_row(g, "length", n, seed, 0.2 + change * (n - LENGTHS[0]) / span + rng.normal(0, NOISE)))
    return rows
