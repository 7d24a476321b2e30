"""Theorem 3 (docs/theory.md §3): every measured advantage against sqrt(k·KL/(2(n−k+1))), with its calibration.

One check per (model, k, distinguisher). The signed advantage a and the bound B are estimates; their difference
is judged with the standard error se_a + se_B, which is valid whatever their correlation (they may share
documents). A violation is |a| > B: p_wrong = 2·Φ((B − |â|)/s) (both signs of a, Bonferroni). Support is
|a| < B on both sides (two one-sided tests): p_right = Φ((|â| − B)/s). So |a| = 0.30 [−0.10, 0.70] against a
bound of 0.01 is not "holds": its interval does not lie under the bound.
"""

from __future__ import annotations

import math

import numpy as np

from nextk.runs.verdicts.rules import PAPER, check, columns, conclude, est, iv, model_label, ok_rows, se, z_test

KEY = "theorem3"
TITLE = "Theorem 3: every advantage is under sqrt(k·KL/(2(n−k+1)))"
CLAIM = (
    "For every next-k-token distinguisher d, |a(d)| ≤ sqrt(k·KL(p̄‖q̄)/(2m)), m = n − k + 1 (docs/theory.md §3). "
    "Checked for every model the sweep trained, every k and every distinguisher measured (checkers, the learned "
    "one, the TV ceiling)."
)


def distinguishers(r: dict) -> list[str]:
    """The advantage columns a row holds: tv (the optimal distinguisher), learned, checker_<name>."""
    names = [c for c in r if c.startswith("checker_") and not c.endswith(("_low", "_high", "_stderr", "_n"))]
    return [c for c in ["tv", "learned", *sorted(names)] if r.get(c) is not None]


def abs_interval(e: dict) -> tuple[float, float, float]:
    """|a| with its interval: (value, low, high); the low end is 0 when the interval of a contains 0."""
    lo = e["value"] if e.get("low") is None else e["low"]
    hi = e["value"] if e.get("high") is None else e["high"]
    bottom = 0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi))
    return abs(e["value"]), bottom, max(abs(lo), abs(hi))


def theorem3(rows: list[dict]) -> dict:
    checks, points, models = [], [], set()
    for r in ok_rows(rows):
        bound = est(r, "theorem3")
        if bound is None:
            continue
        for name in distinguishers(r):
            a = est(r, name)
            s_a, s_b = se(a), se(bound)
            s = None if s_a is None or s_b is None else s_a + s_b
            distance = bound["value"] - abs(a["value"])
            p_below, p_right = (1.0, 1.0) if s is None else z_test(distance, s)
            models.add((r.get("cell"), r.get("model_name"), r.get("bit_size"), r.get("step_index")))
            sentence = (
                f"{name} of {model_label(r)} at k={r.get('k')}: |a| = {abs(a['value']):.4f} (a = {iv(a)}) vs "
                f"bound {iv(bound)}; p(|a| > bound) = {min(1.0, 2 * p_below):.3g}, p(|a| < bound) = {p_right:.3g}"
            )
            checks.append(
                check(sentence, min(1.0, 2 * p_below), p_right, premise="" if s is not None else "no interval")
            )
            ratio = abs(a["value"]) / bound["value"] if bound["value"] else (math.inf if a["value"] else 0.0)
            points.append(
                {"cell": r.get("cell"), "model": model_label(r), "k": r.get("k"), "distinguisher": name,
                 "advantage": a, "abs_low": abs_interval(a)[1], "bound": bound, "ratio": ratio}
            )  # fmt: skip
    out = conclude(
        KEY, TITLE, CLAIM, checks, {"kind": KEY, "points": points},
        "no trained model was measured: no row carries a Theorem 3 bound",
        f"{len(points)} advantages of {len(models)} measured models;", whose=PAPER, test=(
            "per advantage: |a| − B with se_a + se_B"
            "; p(|a| > B) = 2·Φ((B − |â|)/s), p(|a| < B) = Φ((|â| − B)/s)"
        ),
    )  # fmt: skip
    for p, c in zip(points, out["checks"]):
        p["status"] = {"violated": "violated", "holds": "under"}.get(c["verdict"], "undecided")
    finite = [p for p in points if math.isfinite(p["ratio"])]
    if finite:
        worst = max(finite, key=lambda p: p["ratio"])
        out["sentence"] += f" Largest |a|/bound: {worst['ratio']:.2f} ({worst['distinguisher']} of {worst['model']})."
    out["counts"] = {v: sum(1 for c in out["checks"] if c["verdict"] == v) for v in ("holds", "violated", "not shown")}
    return out


# ---------------------------------------------------------------------------------------------- calibration

POINTS = 24  # advantages per synthetic table
BOUND, SE_A, SE_B = 0.2, 0.02, 0.01
EFFECT_UNIT = "advantage above the bound (one of 24 points; se of a 0.02, of the bound 0.01)"


def synthetic(rng: np.random.Generator, effect: float) -> list[dict]:
    """A table of 24 TV advantages, each exactly at its bound (effect 0: the claim holds with equality) except
    the first, which exceeds it by `effect`; normal estimates with the standard errors above."""
    rows = []
    for i in range(POINTS):
        truth = BOUND + (effect if i == 0 else 0.0)
        a, b = rng.normal(truth, SE_A), rng.normal(BOUND, SE_B)
        rows.append(
            {"stage": "measure", "cell": f"c{i}", "model_name": f"m{i}", "k": 2}
            | columns("tv", a, SE_A) | columns("theorem3", b, SE_B)
        )  # fmt: skip
    return rows
