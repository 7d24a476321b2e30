"""Theorem 3 (docs/theory.md §3): every measured advantage against sqrt(k·KL/(2(n−k+1))), with its calibration.

One check per (model, k, distinguisher), tested on the KL scale: |a| ≤ sqrt(k·KL/(2m)) ⇔ KL ≥ c·a², c = 2m/k,
m = n − k + 1. The bound itself is a poor thing to test with a normal standard error: near KL = 0 the square root
of the KL's interval is badly skewed (and clipped at 0). Both estimates are judged by their own standard errors
(the KL's from the row's `kl` columns; without them, read back from the bound's interval mapped to the KL scale):

- violated when KL̂ + z·se_KL < c·(|â| − z·se_a)² (the upper bound of KL below the threshold at the lower bound
  of |a|). Under the claim, KL̂ + z·se_KL < KL with probability Φ(−z) and |â| − z·se_a > |a| with probability
  ≤ 2Φ(−z) (both signs of a), so p(|a| > bound) = 3Φ(−z*) at the z* where the two sides meet (union bound;
  a component with no error adds nothing: an exact KL leaves 2Φ(−z*));
- holds when KL̂ − z·se_KL > c·(|â| + z·se_a)²: p(|a| < bound) = 2Φ(−z*) likewise.

So |a| = 0.30 [−0.10, 0.70] against a bound of 0.01 is not "holds": its interval does not lie under the bound.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

from nextk.runs.verdicts.rules import PAPER, check, columns, conclude, crossing_z, est, iv, model_label, ok_rows, se
from nextk.stats import Z95

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
        kl, c = kl_of(r, bound)
        for name in distinguishers(r):
            a = est(r, name)
            s_a = se(a)
            p_wrong, p_right = (1.0, 1.0) if kl is None or s_a is None else kl_test(kl, abs(a["value"]), s_a, c)
            models.add((r.get("cell"), r.get("model_name"), r.get("bit_size"), r.get("step_index")))
            sentence = (
                f"{name} of {model_label(r)} at k={r.get('k')}: |a| = {abs(a['value']):.4f} (a = {iv(a)}) vs "
                f"bound {iv(bound)} (KL {kl_text(kl)}); p(|a| > bound) = {p_wrong:.3g}, p(|a| < bound) = {p_right:.3g}"
            )
            checks.append(
                check(
                    sentence,
                    p_wrong,
                    p_right,
                    premise="" if kl is not None and s_a is not None else "no interval or no length",
                )
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
            "per advantage, on the KL scale (KL ≥ 2m·a²/k): p(|a| > B) = 3Φ(−z*) where KL̂ + z·se_KL = "
            "2m(|â| − z·se_a)²/k, p(|a| < B) = 2Φ(−z*) where KL̂ − z·se_KL = 2m(|â| + z·se_a)²/k (union bounds)"
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


def kl_of(r: dict, bound: dict) -> tuple[tuple[float, float] | None, float]:
    """(KL̂, se_KL) of a row and c = 2m/k: the row's `kl` estimate when it has one (as every measured row of
    nextk.runs.table does), else the bound's value and upper end mapped back to the KL scale (KL = c·B²). A bound
    of 0 may be a KL estimate clipped at 0 (its value lost, even with both ends 0 and no width): None, no test;
    an exact KL of 0 is tested through the `kl` columns."""
    k, n = r.get("k"), r.get("length")
    if not (k and n):  # no window: the claim's threshold is unknown
        return None, 0.0
    c, b, hi = 2 * (n - k + 1) / k, bound["value"], bound.get("high")
    kl = est(r, "kl")
    if kl is not None and se(kl) is not None:
        return (kl["value"], se(kl)), c
    if hi is None or b <= 0:
        return None, c
    value = c * b**2
    return (value, max(c * hi**2 - value, 0.0) / Z95), c


def kl_test(kl: tuple[float, float], a: float, s_a: float, c: float) -> tuple[float, float]:
    """(p(|a| > bound), p(|a| < bound)) for the claim KL ≥ c·a² (the module docstring's union bounds)."""
    value, s_kl = kl
    w = (1.0 if s_kl > 0 else 0.0) + (2.0 if s_a > 0 else 0.0)
    r = (1.0 if s_kl > 0 else 0.0) + (1.0 if s_a > 0 else 0.0)
    if w == 0:  # both exact
        return (0.0 if value < c * a * a else 1.0), (0.0 if value > c * a * a else 1.0)
    z_w = crossing_z(lambda z: c * max(a - z * s_a, 0.0) ** 2 - (value + z * s_kl))
    z_r = crossing_z(lambda z: (value - z * s_kl) - c * max(a + z * s_a, 0.0) ** 2)
    return min(1.0, w * float(ndtr(-z_w))), min(1.0, r * float(ndtr(-z_r)))


def kl_text(kl: tuple[float, float] | None) -> str:
    return "n/a" if kl is None else f"{kl[0]:.5f} ± {kl[1]:.5f} se"


# ---------------------------------------------------------------------------------------------- calibration

# the quick table's shape (nextk.runs.reproduce_specs.quick_spec): 8 models at n = 12 (widths 2..16, two seeds)
# and 2 at each n of 8, 12, 16, 20; k ∈ {1, 2, 4}; three distinguishers (tv, learned, one checker) → 144 checks
LENGTHS = (12,) * 8 + (8, 8, 12, 12, 16, 16, 20, 20)
KS = (1, 2, 4)
NAMES = ("tv", "learned", "checker_valid")
POINTS = len(LENGTHS) * len(KS) * len(NAMES)
SE_A = (0.01, 0.05)  # the range of an advantage's standard error (100 documents)
EFFECT_UNIT = (
    f"advantage above its bound at one of {POINTS} points (quick table's shape; se of a 0.03 there, 0.01–0.05 "
    "elsewhere; half the models with KL 0–0.005 ± 0.001–0.005, half 0.02–0.2 ± 0.005–0.02)"
)


def synthetic(rng: np.random.Generator, effect: float) -> list[dict]:
    """A table of the quick shape: per model a true KL (half near 0, where the bound's interval is skewed, half
    moderate) and its normal estimate; every advantage exactly at its bound (effect 0: the claim holds with
    equality) except the first of a moderate model, which exceeds it by `effect`."""
    from nextk import bounds  # the bound's columns as nextk.evaluation writes them
    from nextk.stats import Estimate

    rows = []
    for j, n in enumerate(LENGTHS):
        near = j % 2 == 1
        kl = rng.uniform(0.0, 0.005) if near else rng.uniform(0.02, 0.2)
        s_kl = rng.uniform(0.001, 0.005) if near else rng.uniform(0.005, 0.02)
        kl_hat = rng.normal(kl, s_kl)
        kl_est = Estimate(kl_hat, s_kl, kl_hat - Z95 * s_kl, kl_hat + Z95 * s_kl, 400, "synthetic")
        for k in KS:
            bound = bounds.theorem3(kl, k, n)
            row = {"stage": "measure", "cell": f"c{j}", "model_name": f"m{j}", "k": k, "length": n}
            row |= columns("kl", kl_hat, s_kl)
            b = bounds.theorem3(kl_est, k, n)
            row |= {"theorem3": b.value, "theorem3_low": b.low, "theorem3_high": b.high, "theorem3_stderr": b.stderr}
            for name in NAMES:
                first = j == 0 and k == KS[0] and name == NAMES[0]
                s_a = 0.03 if first else rng.uniform(*SE_A)
                truth = bound + (effect if first else 0.0)
                row |= columns(name, rng.normal(truth, s_a) * rng.choice((-1, 1)), s_a)
            rows.append(row)
    return rows
