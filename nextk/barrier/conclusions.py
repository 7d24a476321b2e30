"""The barrier report's conclusions, computed from the measured numbers and their 95% intervals.

Every function is pure: result dicts in, (sentence, flag) out. A comparison of two estimates has one
of four verdicts: "a_higher" / "b_higher" (the intervals do not overlap), "overlap" (no difference
shown) or "undetermined" (an interval is missing). The sentences go into summary.md, the plot titles
and results.json ("conclusions"); nothing the report concludes is a fixed string.
"""

from __future__ import annotations

import math

from scipy.stats import chi2, linregress, ncx2
from scipy.stats import t as student_t

from nextk.barrier.sampling import MAX_DIGITS
from nextk.stats import Z95, wilson

LABELS = {
    "non_autoregressive": "non-autoregressive",
    "autoregressive_factors_first_exact": "factors-first (exact counts)",
    "autoregressive_factors_first_approx": "factors-first (li approximation)",
    "autoregressive_product_first": "product-first",
    "product_first": "product-first",
    "factors_first": "factors-first",
}
NO_INTERVAL = {"value": None, "stderr": None, "low": None, "high": None}


def label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " "))


def interval_text(e: dict, fmt: str = ".3f") -> str:
    """'0.893 [0.873, 0.911]'; an exact computation (stderr 0, method naming it exact) prints '(exact)', a
    missing interval end '(no interval)'."""
    if e.get("value") is None:
        return "n/a"
    if e.get("stderr") == 0 and "exact" in e.get("method", ""):
        return f"{e['value']:{fmt}} (exact)"
    if e.get("low") is None or e.get("high") is None:
        return f"{e['value']:{fmt}} (no interval)"
    return f"{e['value']:{fmt}} [{e['low']:{fmt}}, {e['high']:{fmt}}]"


def seconds_text(value: float | None, stderr: float | None) -> str:
    """Seconds with a 95% normal interval when a standard error was recorded, else marked as a bare mean."""
    if value is None:
        return "n/a"
    if stderr is None:
        return f"{value:.2e} (mean, no interval recorded)"
    return f"{value:.2e} [{value - Z95 * stderr:.2e}, {value + Z95 * stderr:.2e}]"


def verdict(a: dict, b: dict) -> str:
    """'a_higher', 'b_higher', 'overlap' or 'undetermined' from two estimate dicts' intervals."""
    ends = (a.get("low"), a.get("high"), b.get("low"), b.get("high"))
    if any(v is None or not math.isfinite(v) for v in ends):
        return "undetermined"
    if a["low"] > b["high"]:
        return "a_higher"
    if b["low"] > a["high"]:
        return "b_higher"
    return "overlap"


def compare_rates(
    a: dict,
    b: dict,
    name_a: str,
    name_b: str,
    *,
    quantity: str = "valid rate",
    no_effect: str = "no order effect shown at this budget",
    higher: str = "is higher",
    fmt: str = ".3f",
) -> tuple[str, str]:
    """Two estimates of one quantity → ('<a> <quantity> A [lo, hi] vs <b> B [lo, hi]: <conclusion>', verdict)."""
    v = verdict(a, b)
    head = f"{name_a} {quantity} {interval_text(a, fmt)} vs {name_b} {interval_text(b, fmt)}: "
    if v == "overlap":
        return head + f"the intervals overlap, {no_effect}", v
    if v == "undetermined":
        return head + "no interval on one side (e.g. a fit through two points), no comparison", v
    return head + f"{name_a if v == 'a_higher' else name_b} {higher}, the intervals do not overlap", v


def fit_slope(xs: list[float], ys: list[float], method: str) -> dict:
    """Least-squares slope of ys on xs with a 95% Student-t interval (n − 2 dof) as an estimate dict;
    two points give the slope without an interval, fewer give no value."""
    n = len(xs)
    if n < 2 or len(set(xs)) < 2:
        return {**NO_INTERVAL, "n": n, "method": method}
    fit = linregress(xs, ys)
    if n == 2:
        return {**NO_INTERVAL, "value": float(fit.slope), "n": n, "method": method}
    half = float(student_t.ppf(0.975, n - 2)) * fit.stderr
    lo, hi = float(fit.slope - half), float(fit.slope + half)
    return {"value": float(fit.slope), "stderr": float(fit.stderr), "low": lo, "high": hi, "n": n, "method": method}


def growth(rows: list[dict]) -> dict:
    """Sampling cost growth in decades per digit: slope of log10(seconds per sample) on d."""
    ys = [math.log10(r["seconds_per_sample"]) for r in rows]
    return fit_slope([r["digits"] for r in rows], ys, "least squares of log10 s on d, t interval")


def degree(rows: list[dict]) -> dict:
    """Polynomial degree of the sampling cost: slope of log10(seconds per sample) on log10 d."""
    ys = [math.log10(r["seconds_per_sample"]) for r in rows]
    return fit_slope([math.log10(r["digits"]) for r in rows], ys, "least squares of log10 s on log10 d, t interval")


def growth_sentence(rows_a: list[dict], rows_b: list[dict], name_a: str, name_b: str) -> tuple[str, str]:
    """Fitted cost growth of two samplers (rows of `sampling_cost`) compared by their intervals."""
    return compare_rates(
        growth(rows_a),
        growth(rows_b),
        name_a,
        name_b,
        quantity="cost growth (decades/digit)",
        no_effect="no difference in growth shown",
        higher="grows faster",
        fmt=".2f",
    )


def stop_sentence(name: str, rows: list[dict], requested: list[int], limit: int | None = None) -> tuple[str, str]:
    """Why a sampler's sweep ended. `sampling_cost` runs the requested d in order and breaks at the first
    it skips, so a sampler stopped early iff it has fewer rows than requested d; when the next d exceeds
    the sampler's own `limit` (exact prime counting) the limit stopped it, otherwise the time budget did.
    Flag: 'complete', 'budget', 'limit' or 'no rows'."""
    if not rows:
        return f"{name}: no size was timed", "no rows"
    last, top = rows[-1]["digits"], max(requested)
    if len(rows) >= len(requested):
        return f"{name} reached every requested d (up to {top})", "complete"
    if limit is not None and requested[len(rows)] > limit:
        return f"{name} stopped after d = {last} at its own limit d ≤ {limit}, not by the time budget", "limit"
    return f"the time budget stopped {name} after d = {last} (requested up to {top})", "budget"


def cohens_w_interval(row: dict) -> dict:
    """Cohen's w with the noise floor removed, sqrt(λ/N), λ = max(χ² − dof, 0), with a 95% interval from
    inverting the noncentral χ² distribution of the statistic in its noncentrality λ."""
    stat, dof, n = row["chi2"], row["dof"], row["valid"]
    method = "noncentral chi-square inversion"
    if not n or stat is None or not math.isfinite(stat):
        return {**NO_INTERVAL, "n": n or 0, "method": method}

    def cdf(lam: float) -> float:
        return float(chi2.cdf(stat, dof) if lam == 0 else ncx2.cdf(stat, dof, lam))

    def lam_at(target: float) -> float:  # λ with P(χ²_dof(λ) ≤ stat) = target; the cdf falls as λ grows
        if cdf(0.0) <= target:
            return 0.0
        lo, hi = 0.0, max(stat, 1.0)
        while cdf(hi) > target:
            lo, hi = hi, 2 * hi
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if cdf(mid) > target else (lo, mid)
        return (lo + hi) / 2

    low, high = math.sqrt(lam_at(0.975) / n), math.sqrt(lam_at(0.025) / n)
    value = math.sqrt(max(stat - dof, 0.0) / n)
    return {"value": value, "stderr": (high - low) / (2 * Z95), "low": low, "high": high, "n": n, "method": method}


def invalid_rate(row: dict) -> dict:
    """The share of samples with a leading zero, with its Wilson interval."""
    return wilson(round(row["invalid_rate"] * row["samples"]), row["samples"], "wilson").to_dict()


def uniformity_sentence(row: dict, alpha: float = 0.05) -> tuple[str, str]:
    """χ² uniformity verdict at level alpha, with Cohen's w and the invalid rate and their intervals.
    Flag: 'rejected', 'not rejected' or 'undetermined'."""
    tail = (
        f"Cohen's w (noise floor removed) {interval_text(cohens_w_interval(row))}; "
        f"invalid rate {interval_text(invalid_rate(row))}"
    )
    p = row.get("p_value")
    if p is None or not math.isfinite(p):
        return f"{row['model']}: no valid sample to test; {tail}", "undetermined"
    flag = "rejected" if p < alpha else "not rejected"
    test = f"χ² {row['chi2']:.1f} on {row['dof']} dof, p = {p:.3g}"
    return f"{row['model']}: uniformity {flag} at the {alpha:.0%} level ({test}); {tail}", flag


def tv_sentence(row: dict, plain: dict) -> tuple[str, str]:
    """A hidden variant's visible TV (an upper bound) against the plain model's (exact). Both are computed
    by enumeration, not sampled, so they compare directly. Flag: 'lower' or 'not shown lower'."""
    bound, exact = row["visible_tv"], plain["visible_tv"]
    head = f"{row['variant']}: visible TV ≤ {bound:.4f} (upper bound) vs plain {exact:.4f} (exact)"
    if bound < exact:
        return f"{head}: the hidden variant is closer to the true visible distribution", "lower"
    return f"{head}: the bound is not below the plain model's TV, no improvement shown", "not shown lower"


def primes_sentence(rows: list[dict]) -> tuple[str, str]:
    """The li-density approximation's exact TV (enumeration) over the d where it was computed."""
    tv = [(r["digits"], r["tv"]) for r in rows if r.get("tv") is not None]
    if not tv:
        return "no exact TV of the li-density approximation was computed (every d beyond enumeration)", "none"
    d_max, worst = max(tv, key=lambda x: x[1])
    ds = [d for d, _ in tv]
    where = f"d = {ds[0]}" if len(ds) == 1 else f"d = {min(ds)}–{max(ds)}, largest at d = {d_max}"
    return (
        f"li-density approximation: exact TV to the uniform prime (by enumeration) at most {worst:.4f} ({where})",
        f"max_tv={worst:.6g}",
    )


def conclusions(res: dict, requested_digits: list[int]) -> dict:
    """Every conclusion of the barrier report from its result dicts: sentences with their flags."""
    out: dict = {}
    if "sampling" in res:
        s = res["sampling"]
        targets = [n for n in s if "product_first" in n]
        versus = []
        for a in targets:
            for b in (n for n in s if n not in targets):
                sent, v = growth_sentence(s[a]["rows"], s[b]["rows"], label(a), label(b))
                versus.append({"a": a, "b": b, "sentence": sent, "verdict": v})
        stopped = {}
        for n, v in s.items():
            sent, flag = stop_sentence(label(n), v["rows"], requested_digits, MAX_DIGITS.get(n))
            last = v["rows"][-1]["digits"] if v["rows"] else None
            stopped[n] = {"sentence": sent, "flag": flag, "last_digits": last, "requested_max": max(requested_digits)}
        out["sampling"] = {
            "growth": {n: growth(v["rows"]) for n, v in s.items()},
            "degree": {n: degree(v["rows"]) for n, v in s.items()},
            "versus": versus,
            "stopped": stopped,
        }
    if "primes" in res:
        out["primes"] = dict(zip(("sentence", "flag"), primes_sentence(res["primes"])))
    if "learning" in res:
        by = {(r["digits"], r["order"]): r for r in res["learning"]}
        out["learning"] = {"validity": [], "excess_loss": []}
        for d in sorted({r["digits"] for r in res["learning"]}):
            if (d, "product_first") not in by or (d, "factors_first") not in by:
                continue
            a, b = by[(d, "product_first")], by[(d, "factors_first")]
            for key, quantity in (("validity", "valid rate"), ("excess_loss", "excess loss (nats/token)")):
                sent, v = compare_rates(a[key], b[key], "product-first", "factors-first", quantity=quantity)
                out["learning"][key].append({"digits": d, "sentence": f"d = {d}: {sent}", "verdict": v})
    if "hidden" in res:
        plain, out["hidden"] = res["hidden"][0], []
        for r in res["hidden"][1:]:
            sent, v = compare_rates(
                r["validity"], plain["validity"], r["variant"], plain["variant"], no_effect="no difference shown"
            )
            out["hidden"].append({"variant": r["variant"], "sentence": sent, "verdict": v})
            sent, v = tv_sentence(r, plain)
            out["hidden"].append({"variant": r["variant"], "sentence": sent, "verdict": v})
    if "uniformity" in res:
        out["uniformity"] = []
        for r in res["uniformity"]:
            sent, v = uniformity_sentence(r)
            out["uniformity"].append({"model": r["model"], "sentence": sent, "verdict": v})
    return out


def sampling_headline(c: dict) -> str:
    """One line for the sampling plot: product-first's growth against the others and who was stopped."""
    versus = c["versus"]
    target = label(versus[0]["a"]) if versus else "product-first"
    faster = [label(x["b"]) for x in versus if x["verdict"] == "a_higher"]
    if not faster:
        head = f"no faster growth of {target} shown"
    elif len(faster) == len(versus):
        others = faster[0] if len(faster) == 1 else f"all {len(faster)} others"
        head = f"{target} grows faster than {others} (95% intervals disjoint)"
    else:
        head = f"{target} grows faster than {len(faster)} of {len(versus)} others (95% intervals disjoint)"
    budget = [f"{label(n)} after d = {v['last_digits']}" for n, v in c["stopped"].items() if v["flag"] == "budget"]
    return head + ("; the budget stopped " + ", ".join(budget) if budget else "; the budget stopped no sampler")


def order_headline(items: list[dict], quantity: str) -> str:
    """One line per learning panel: at which d each order is higher, and where no effect is shown."""
    words = {
        "a_higher": "product-first higher",
        "b_higher": "factors-first higher",
        "overlap": "no order effect shown",
        "undetermined": "undetermined",
    }
    groups: dict[str, list[int]] = {}
    for x in items:
        groups.setdefault(x["verdict"], []).append(x["digits"])
    parts = [f"{words[v]} at d = {', '.join(map(str, ds))}" for v, ds in groups.items()]
    return f"{quantity}: " + ("; ".join(parts) if parts else "nothing compared")
