"""The verdicts of `nextk reproduce`: pure functions from the sweep table (a list of row dicts, nextk.runs.table)
to one section per claim of the paper and the note.

Every section ends in a verdict — "holds", "violated" or "not shown" (at this budget) — computed only from the
measured numbers and their 95% intervals, and says it in a sentence that carries those numbers. A section is a
dict: key, title, claim, verdict, sentence, evidence (one sentence per check), checks (each with its own verdict
and numbers), figure (the data its plot is drawn from). Rules, in short (docs/reproduce.md explains each):

- an inequality the theory proves (Theorem 3, Lemma 1) is *violated* only where the two intervals are disjoint
  on the wrong side; it *holds* when it was checked at least once and never violated (values on the wrong side
  within the intervals are counted and named);
- a trend (advantage against size) *holds* where a least-squares slope's 95% Student-t interval lies on the
  claimed side, is *violated* where it lies on the other side, and is *not shown* otherwise;
- "flat" (advantage against n at fixed k) *holds* when the interval of the change over the measured range of n
  lies within ±`FLAT_MARGIN`, is *violated* when it lies above +`FLAT_MARGIN`;
- a frequency (Algorithm 1 stopping after two sizes) is compared by its Wilson interval with the promised 0.9;
  below it counts as a violation only where the theorem's premise (j₀ drawn from 1..N) was met;
- the barrier's comparisons reuse `nextk.barrier.conclusions` (two estimates differ when their intervals do not
  overlap) and read its verdicts as support for the note's claim, against it, or neither.
"""

from __future__ import annotations

import math
from collections import defaultdict

from scipy.stats import linregress
from scipy.stats import t as student_t

from nextk.stats import wilson

HOLDS, VIOLATED, NOT_SHOWN = "holds", "violated", "not shown"
VERDICTS = (HOLDS, VIOLATED, NOT_SHOWN)
FLAT_MARGIN = 0.05  # |change of the advantage| over the measured n range that still counts as flat
PROMISED = 0.9  # Lemma 4: two sizes suffice with probability ≥ 0.9
LI_TV_TOLERANCE = 0.05  # the li-density approximation counts as close when its exact TV is at most this


# ---------------------------------------------------------------------------------------------- helpers


def ok_rows(rows: list[dict], stage: str | None = None) -> list[dict]:
    """Rows of finished cells (status "ok"), optionally of one stage ("measure", "boost", "bits", …)."""
    return [r for r in rows if r.get("status", "ok") == "ok" and (stage is None or r.get("stage") == stage)]


def est(row: dict, name: str) -> dict | None:
    """The estimate a row holds under `name` (columns name, name_low, name_high, …), or None."""
    v = row.get(name)
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    return {k: row.get(f"{name}_{k}") for k in ("low", "high", "stderr", "n")} | {"value": v}


def iv(e: dict | None, fmt: str = ".4f") -> str:
    """'0.1234 [0.1000, 0.1500]'; '(exact)' when the interval has no width; '(no interval)' when it is missing."""
    if e is None or e.get("value") is None:
        return "n/a"
    v, lo, hi = e["value"], e.get("low"), e.get("high")
    if lo is None or hi is None:
        return f"{v:{fmt}} (no interval)"
    if lo == hi == v:
        return f"{v:{fmt}} (exact)"
    return f"{v:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def num(x, fmt: str = ".4f") -> str:
    """A number that may be missing or infinite (η = +∞ is boosting's rejection limit)."""
    if x is None:
        return "n/a"
    if isinstance(x, (int, float)) and math.isinf(x):
        return "+∞" if x > 0 else "−∞"
    return format(x, fmt)


def high(e: dict) -> float:
    return e["value"] if e.get("high") is None else e["high"]


def low(e: dict) -> float:
    return e["value"] if e.get("low") is None else e["low"]


def abs_interval(e: dict) -> tuple[float, float, float]:
    """|a| with its interval: (value, low, high); the low end is 0 when the interval of a contains 0."""
    lo, hi = low(e), high(e)
    bottom = 0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi))
    return abs(e["value"]), bottom, max(abs(lo), abs(hi))


def combine(checks: list[dict], *, lenient: bool = False) -> str:
    """Violated if any check is; otherwise holds if every check holds (lenient: if any does); else not shown."""
    verdicts = [c["verdict"] for c in checks]
    if VIOLATED in verdicts:
        return VIOLATED
    if verdicts and (all(v == HOLDS for v in verdicts) or (lenient and HOLDS in verdicts)):
        return HOLDS
    return NOT_SHOWN


def tally(checks: list[dict]) -> str:
    counts = {v: sum(1 for c in checks if c["verdict"] == v) for v in VERDICTS}
    return ", ".join(f"{n} {v}" for v, n in counts.items() if n)


def section(
    key: str,
    title: str,
    claim: str,
    checks: list[dict],
    *,
    verdict: str | None = None,
    sentence: str = "",
    evidence: list[str] | None = None,
    figure: dict | None = None,
    **extra,
) -> dict:
    v = verdict or combine(checks)
    return {
        "key": key,
        "title": title,
        "claim": claim,
        "verdict": v,
        "sentence": sentence,
        "evidence": evidence if evidence is not None else [c["sentence"] for c in checks],
        "checks": checks,
        "figure": figure,
        **extra,
    }


def not_shown(
    key: str, title: str, claim: str, figure: dict | None, sentence: str, evidence: list[str] | None = None
) -> dict:
    """A section with nothing to check: verdict "not shown", `sentence` says what was not measured."""
    return section(key, title, claim, [], verdict=NOT_SHOWN, figure=figure, sentence=sentence, evidence=evidence)


def conclude(
    key: str,
    title: str,
    claim: str,
    checks: list[dict],
    figure: dict | None,
    empty: str,
    head: str,
    sentences: dict[str, str] | None = None,
    *,
    strict: bool = False,
    more: list[str] | tuple[str, ...] = (),
    empty_evidence: list[str] | None = None,
) -> dict:
    """The end of a section, from its key, title, claim, checks and figure: "not shown" with the sentence `empty`
    (and `empty_evidence`) when there are no checks; else the checks' combined verdict — it holds when any check
    holds and none is violated, or when `strict` only when every check holds (`combine`) — said by `head` and then
    `sentences[verdict]`, with the checks' sentences and then `more` as evidence."""
    if not checks:
        return not_shown(key, title, claim, figure, empty, empty_evidence)
    verdict = combine(checks, lenient=not strict)
    return section(
        key,
        title,
        claim,
        checks,
        verdict=verdict,
        sentence=head + (sentences[verdict] if sentences else ""),
        evidence=[c["sentence"] for c in checks] + list(more),
        figure=figure,
    )


def slope(xs: list[float], ys: list[float]) -> dict | None:
    """Least-squares slope of ys on xs with a 95% Student-t interval (None with fewer than 3 points or one x)."""
    if len(xs) < 3 or len(set(xs)) < 2:
        return None
    fit = linregress(xs, ys)
    if not math.isfinite(fit.stderr):
        return None
    half = student_t.ppf(0.975, len(xs) - 2) * fit.stderr
    return {
        "value": fit.slope,
        "low": fit.slope - half,
        "high": fit.slope + half,
        "stderr": fit.stderr,
        "n": len(xs),
        "intercept": fit.intercept,
    }


def model_label(r: dict) -> str:
    name = r.get("model_name") or "-".join(str(x) for x in (r.get("family") or "model", r.get("size")) if x is not None)
    src = r.get("source_name") or r.get("source") or "source"
    return f"{name} on {src} (n={r.get('length')})"


def distinguishers(r: dict) -> list[str]:
    """The advantage columns a row holds: tv (the optimal distinguisher), learned, checker_<name>."""
    names = [c for c in r if c.startswith("checker_") and not c.endswith(("_low", "_high", "_stderr", "_n"))]
    return [c for c in ["tv", "learned", *sorted(names)] if r.get(c) is not None]


def trend_value(r: dict) -> tuple[float | None, str]:
    """The advantage a trend is read from: the TV ceiling when measured, else the largest |advantage|."""
    if r.get("tv") is not None:
        return r["tv"], "TV advantage (optimal distinguisher)"
    values = [abs(r[c]) for c in distinguishers(r)]
    return (max(values), "largest |advantage|") if values else (None, "")


# ---------------------------------------------------------------------------------------------- Theorem 3


def theorem3(rows: list[dict]) -> dict:
    """Every measured advantage (checkers, learned, TV) of every trained model against sqrt(k·KL/(2(n−k+1)))."""
    title = "Theorem 3: every advantage is under sqrt(k·KL/(2(n−k+1)))"
    claim = (
        "For every next-k-token distinguisher d, |a(d)| ≤ sqrt(k·KL(p̄‖q̄)/(2m)), m = n − k + 1 "
        "(docs/theory.md §3). Checked for every model the sweep trained, every k and every distinguisher "
        "measured."
    )
    points, models = [], set()
    for r in ok_rows(rows):
        bound = est(r, "theorem3")
        if bound is None:
            continue
        for name in distinguishers(r):
            a = est(r, name)
            val, bottom, _ = abs_interval(a)
            status = "violated" if bottom > high(bound) else ("above value" if val > bound["value"] else "under")
            models.add((r.get("cell"), r.get("model_name"), r.get("bit_size")))
            points.append(
                {
                    "cell": r.get("cell"),
                    "model": model_label(r),
                    "k": r.get("k"),
                    "distinguisher": name,
                    "advantage": a,
                    "abs_low": bottom,
                    "bound": bound,
                    "status": status,
                    "ratio": val / bound["value"] if bound["value"] else (math.inf if val else 0.0),
                }
            )
    figure = {"kind": "theorem3", "points": points}
    if not points:
        return not_shown(
            "theorem3", title, claim, figure, "no trained model was measured: no row carries a Theorem 3 bound"
        )

    def describe(p):
        return (
            f"{p['distinguisher']} of {p['model']} at k={p['k']}: |a| = {abs(p['advantage']['value']):.4f} "
            f"(a = {iv(p['advantage'])}) vs bound {iv(p['bound'])}"
        )

    bad = [p for p in points if p["status"] == "violated"]
    above = [p for p in points if p["status"] == "above value"]
    checks = [{"verdict": VIOLATED, "sentence": "violation beyond the intervals: " + describe(p), **p} for p in bad]
    ks = sorted({p["k"] for p in points if p["k"] is not None})
    finite = [p for p in points if math.isfinite(p["ratio"])]
    worst = max(finite, key=lambda p: p["ratio"]) if finite else points[0]
    head = f"{len(points)} advantages of {len(models)} measured models (k ∈ {{{', '.join(map(str, ks))}}})"
    if bad:
        sentence = (
            f"{head}: {len(bad)} exceed the bound beyond their intervals — the lower end of |a|'s interval is "
            f"above the upper end of the bound's. "
            + "; ".join(describe(p) for p in bad[:3])
            + (f"; and {len(bad) - 3} more" if len(bad) > 3 else "")
        )
    else:
        checks.append({"verdict": HOLDS, "sentence": f"{head}: none exceeds the bound beyond the intervals"})
        sentence = (
            f"{head}: every one is under the bound or within the intervals of it; the largest |a|/bound is "
            f"{worst['ratio']:.2f} ({describe(worst)})"
        )
    if above:
        sentence += (
            f". {len(above)} lie above the bound's value but inside the intervals (not a violation): "
            + "; ".join(describe(p) for p in above[:2])
        )
    evidence = [c["sentence"] for c in checks] + [
        "above the bound's value within the intervals: " + describe(p) for p in above
    ]
    return section(
        "theorem3",
        title,
        claim,
        checks,
        sentence=sentence,
        evidence=evidence,
        figure=figure,
        counts={"points": len(points), "violated": len(bad), "above_value": len(above)},
    )


# ---------------------------------------------------------------------------------------------- trends


def trend_groups(rows: list[dict], x: str, fields: tuple[str, ...]):
    """The measured rows a trend is read from, grouped by `fields` and k, in sorted order; only the groups in
    which `x` takes two or more values, each as (fields' values and k, rows, sorted values of x, what is read)."""
    groups = defaultdict(list)
    for r in ok_rows(rows, "measure"):
        if r.get(x) is not None and r.get("k") is not None and trend_value(r)[0] is not None:
            groups[(*(r.get(f) for f in fields), r["k"])].append(r)
    for group, rs in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        xs = sorted({r[x] for r in rs})
        if len(xs) >= 2:
            yield group, rs, xs, trend_value(rs[0])[1]


def trend_points(rs: list[dict], x: str, name: str, column: str) -> list[dict]:
    """A trend's points for its figure: x, the value read, the TV advantage, and the estimate `column` as `name`."""
    return [{x: r[x], "value": trend_value(r)[0], "advantage": est(r, "tv"), name: est(r, column)} for r in rs]


def size_trend(rows: list[dict]) -> dict:
    """Advantage against model size at fixed source, n and k: the slope on log2(size) with its interval."""
    checks, series = [], []
    fields = ("source_name", "source_key", "length", "family")
    for (src, _key, n, family, k), rs, sizes, what in trend_groups(rows, "size", fields):
        xs, ys = [math.log2(r["size"]) for r in rs], [trend_value(r)[0] for r in rs]
        s = slope(xs, ys)
        ex = slope(
            [math.log2(r["size"]) for r in rs if r.get("excess_loss") is not None],
            [r["excess_loss"] for r in rs if r.get("excess_loss") is not None],
        )
        label = f"{src} (n={n}), {family}, k={k}"
        if s is None:
            verdict, word = NOT_SHOWN, "too few points for an interval"
        elif s["high"] < 0:
            verdict, word = HOLDS, "falls (the interval is below 0)"
        elif s["low"] > 0:
            verdict, word = VIOLATED, "rises (the interval is above 0)"
        else:
            verdict, word = NOT_SHOWN, "no trend shown (the interval contains 0)"
        sentence = (
            f"{label}: {what} against log2 size, slope {iv(s, '+.4f')} per doubling over sizes "
            f"{', '.join(map(str, sizes))} ({len(rs)} models): {word}"
        )
        if ex is not None:
            sentence += f"; excess loss slope {iv(ex, '+.5f')} nats/token per doubling"
        checks.append({"verdict": verdict, "sentence": sentence, "group": label, "slope": s, "excess_slope": ex})
        points = trend_points(rs, "size", "excess_loss", "excess_loss")
        series.append({"label": label, "k": k, "what": what, "slope": s, "points": points})
    return conclude(
        "size_trend",
        "The advantage falls as the model grows",
        "A larger model reaches a lower excess loss, so by Theorem 3 a smaller advantage: at fixed source, n and "
        "k the advantage should fall as the size grows. Read from the TV advantage (the optimal distinguisher) "
        "against log2 of the size, every seed a point; 95% Student-t interval of the slope.",
        checks,
        {"kind": "size_trend", "series": series},
        "no group of models with two or more sizes at the same source, n and k",
        f"{len(checks)} groups (source, n, family, k): {tally(checks)}. ",
        {
            HOLDS: "The advantage falls with size where a trend is shown, and rises nowhere.",
            VIOLATED: "The advantage rises with size in at least one group, beyond its interval.",
            NOT_SHOWN: "No group shows a trend beyond its interval at this budget.",
        },
    )


def length_flat(rows: list[dict], margin: float = FLAT_MARGIN) -> dict:
    """Advantage against the document length n at fixed source, model and k: the change over the n range."""
    checks, series = [], []
    fields = ("source_name", "source_key", "family", "size")
    for (src, _key, family, size, k), rs, ns, what in trend_groups(rows, "length", fields):
        span = ns[-1] - ns[0]
        s = slope([r["length"] for r in rs], [trend_value(r)[0] for r in rs])
        b = slope(
            [r["length"] for r in rs if r.get("theorem3") is not None],
            [r["theorem3"] for r in rs if r.get("theorem3") is not None],
        )
        label = f"{src}, {family}-{size}, k={k}"
        change = None if s is None else {k_: s[k_] * span for k_ in ("value", "low", "high")} | {"n": s["n"]}
        bchange = None if b is None else {k_: b[k_] * span for k_ in ("value", "low", "high")}
        if change is None:
            verdict, word = NOT_SHOWN, "too few points for an interval"
        elif -margin <= change["low"] and change["high"] <= margin:
            verdict, word = HOLDS, f"flat (the interval lies within ±{margin})"
        elif change["low"] > margin:
            verdict, word = VIOLATED, f"grows by more than {margin} (the interval lies above +{margin})"
        elif change["high"] < -margin:
            verdict, word = NOT_SHOWN, f"falls by more than {margin} (not flat, but no growth)"
        else:
            verdict, word = NOT_SHOWN, f"the interval crosses the margin ±{margin}: neither flat nor growing shown"
        sentence = (
            f"{label}: {what} changes by {iv(change, '+.4f')} from n = {ns[0]} to {ns[-1]} ({len(rs)} models): {word}"
        )
        if bchange is not None:
            sentence += f"; the Theorem 3 bound changes by {iv(bchange, '+.4f')}"
        checks.append(
            {"verdict": verdict, "sentence": sentence, "group": label, "change": change, "bound_change": bchange}
        )
        points = trend_points(rs, "length", "bound", "theorem3")
        series.append({"label": label, "k": k, "what": what, "points": points})
    return conclude(
        "length_flat",
        "At fixed k, the advantage stays flat as n grows",
        "Theorem 3's bound sqrt(k·KL/(2(n−k+1))) depends on the per-token excess loss, not on n: for fixed k "
        f"the advantage should not grow with the document length. Flat means the 95% interval of the change "
        f"over the measured n range (least-squares slope × range) lies within ±{margin}.",
        checks,
        {"kind": "length_flat", "series": series, "margin": margin},
        "no group of models measured at two or more lengths n with the same k",
        f"{len(checks)} groups (source, model, k): {tally(checks)}. ",
        {
            HOLDS: f"Where the interval is narrow enough, the advantage stays within ±{margin} across n; it "
            f"grows beyond that nowhere.",
            VIOLATED: f"The advantage grows with n by more than {margin} in at least one group.",
            NOT_SHOWN: "No group pins the change down to within the margin at this budget.",
        },
    )


# ---------------------------------------------------------------------------------------------- Lemma 1


def squared_interval(a: dict, blocks: int) -> dict:
    """|S_r|·α²/4 with its interval from α's interval (the square's range over it)."""
    _, bottom, top = abs_interval(a)
    return {"value": blocks * a["value"] ** 2 / 4, "low": blocks * bottom**2 / 4, "high": blocks * top**2 / 4}


def at_least(gain: dict, ref: dict, below: str, reaches: str, within: str) -> tuple[str, str]:
    """A gain against what it should reach, as (verdict, word): violated when its interval lies wholly below ref's
    (`below`); else it holds, with `reaches` when its value reaches ref's and `within` when only the intervals do."""
    if high(gain) < low(ref):
        return VIOLATED, below
    return HOLDS, reaches if gain["value"] >= ref["value"] else within


def lemma1(rows: list[dict]) -> dict:
    """Boosting's gain at (r, α_r/2) against |S_r|α_r²/4, and the searched (r, η) against both."""
    rs = [r for r in ok_rows(rows, "boost") if r.get("offset") is not None]
    checks, points, chosen = [], [], []
    for r in rs:
        a, g = est(r, "alpha"), est(r, "gain_at_half_alpha")
        if a is None or g is None or r.get("blocks") is None:
            continue
        guar = squared_interval(a, r["blocks"])
        label = f"{model_label(r)}, d = {r.get('distinguisher')}, k={r.get('k')}, offset r={r['offset']}"
        verdict, word = at_least(
            g,
            guar,
            "below the guarantee beyond the intervals",
            "at least the guarantee",
            "below the guarantee's value but within the intervals (not a violation)",
        )
        sentence = (
            f"{label}: Δ(r, α_r/2) = {iv(g)} vs |S_r|α_r²/4 = {iv(guar)} (α_r = {iv(a)}, |S_r| = {r['blocks']}): {word}"
        )
        checks.append(
            {
                "verdict": verdict,
                "sentence": sentence,
                "kind": "half_alpha",
                "within_noise": verdict == HOLDS and g["value"] < guar["value"],
            }
        )
        points.append(
            {
                "label": label,
                "guarantee": guar,
                "gain_at_half_alpha": g,
                "alpha": a,
                "gain": est(r, "gain"),
                "offset": r["offset"],
                "cell": r.get("cell"),
            }
        )
    by_cell = defaultdict(list)
    for r in rs:
        by_cell[(r.get("cell"), r.get("step_index"))].append(r)
    for rows_ in by_cell.values():
        r0 = rows_[0]
        cg = est(r0, "chosen_gain")
        halves = [(est(r, "gain_at_half_alpha"), r) for r in rows_ if est(r, "gain_at_half_alpha") is not None]
        if cg is None or not halves:
            continue
        best, best_row = max(halves, key=lambda x: x[0]["value"])
        tight = r0.get("lemma1_guarantee_tight")
        label = f"{model_label(r0)}, d = {r0.get('distinguisher')}, k={r0.get('k')}"
        verdict, word = at_least(
            cg,
            best,
            "below the best Δ(r, α_r/2) beyond the intervals",
            "beats the best Δ(r, α_r/2)",
            "below the best Δ(r, α_r/2) in value, within the intervals (not a violation)",
        )
        if verdict == HOLDS and tight is not None and high(cg) < tight:
            verdict, word = VIOLATED, "below the overall guarantee m·a²/(4·min(k, m)) beyond its interval"
        sentence = (
            f"{label}: the searched (r={r0.get('chosen_offset')}, η={num(r0.get('chosen_eta'), '.3f')}) "
            f"gains Δ = {iv(cg)} vs the best Δ(r, α_r/2) = {iv(best)} (r={best_row['offset']})"
            + (f" and the overall guarantee m·a²/(4·min(k, m)) = {tight:.4f}" if tight is not None else "")
            + f": {word}"
        )
        checks.append({"verdict": verdict, "sentence": sentence, "kind": "searched"})
        chosen.append({"label": label, "chosen_gain": cg, "best_half": best, "tight": tight})
    half = [c for c in checks if c.get("kind") == "half_alpha"]
    searched = [c for c in checks if c.get("kind") == "searched"]
    noise = sum(1 for c in half if c.get("within_noise"))
    # every check holds or is violated, so the verdict is: violated if any check is, else holds
    return conclude(
        "lemma1",
        "Lemma 1: boosting lowers the KL by at least |S_r|·α_r²/4",
        "Boosting q with a distinguisher on the blocks S_r at step η = α_r/2 lowers KL(p̄‖q̄) by "
        "Δ ≥ |S_r|·α_r²/4 (docs/theory.md §4); the searched offset and step (nextk.boost) should do at least as "
        "well, and at least m·a²/(4·min(k, m)) overall. Δ and α_r are measured on held-out documents.",
        checks,
        {"kind": "lemma1", "points": points, "chosen": chosen},
        "no boosting run was measured",
        (
            f"{len(half)} offsets: Δ(r, α_r/2) ≥ |S_r|α_r²/4 violated beyond the intervals at "
            f"{sum(c['verdict'] == VIOLATED for c in half)}"
            + (f" ({noise} below the guarantee's value within the intervals)" if noise else "")
            + f"; {len(searched)} searched (r, η): below Δ(r, α_r/2) or the overall guarantee beyond the intervals "
            f"at {sum(c['verdict'] == VIOLATED for c in searched)}."
        ),
    )


# ---------------------------------------------------------------------------------------------- Lemma 4


def lemma4(rows: list[dict], promised: float = PROMISED) -> dict:
    """Algorithm 1: how often two sizes sufficed (Wilson interval) against 0.9, and its output's advantage at k."""
    groups = defaultdict(list)
    for r in ok_rows(rows, "search"):
        if r.get("bit_size") is None and r.get("two_sizes") is not None:
            groups[
                (r.get("source_name"), r.get("source_key"), r.get("length"), r.get("family"), r.get("eps"), r.get("k"))
            ].append(r)
    checks, figure_groups = [], []
    for (src, _key, n, family, eps, k), rs in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        label = f"{src} (n={n}), {family}, ε={eps}, k={k}"
        two = sum(1 for r in rs if r["two_sizes"])
        w = wilson(two, len(rs)).to_dict()
        premise = all((r.get("max_start") or 0) >= (r.get("theoretical_max_start") or math.inf) for r in rs)
        starts = sorted({r.get("max_start") for r in rs if r.get("max_start") is not None})
        theory = sorted({r.get("theoretical_max_start") for r in rs if r.get("theoretical_max_start") is not None})
        departs = (
            ""
            if premise
            else (
                f" j₀ was drawn from 1..{max(starts, default='?')}, not 1..N = "
                f"{max(theory, default='?')}: Lemma 4's premise is not met"
            )
        )
        head = f"{label}: two sizes sufficed in {two} of {len(rs)} runs, {iv(w, '.2f')} (Wilson) vs {promised}"
        if w["low"] >= promised:
            verdict, word = HOLDS, f"at least {promised}"
        elif w["high"] < promised and premise:
            verdict, word = VIOLATED, f"below {promised} beyond the interval"
        elif w["high"] < promised:
            verdict, word = NOT_SHOWN, f"below {promised}, but not a violation:{departs}"
            departs = ""
        else:
            verdict, word = NOT_SHOWN, f"the interval contains {promised}"
        checks.append(
            {
                "verdict": verdict,
                "sentence": f"{head}: {word}." + (f"{departs}." if departs else ""),
                "kind": "two_sizes",
                "share": w,
                "premise": premise,
            }
        )
        # the output's advantage at k, for the bounded-size distinguishers
        within, beyond, tvs = [], [], []
        for r in rs:
            bounded = [c for c in distinguishers(r) if c != "tv"]
            if not bounded:
                continue
            worst = max(bounded, key=lambda c: abs_interval(est(r, c))[1])
            (beyond if abs_interval(est(r, worst))[1] > eps else within).append((r, worst))
            if r.get("tv") is not None:
                tvs.append(est(r, "tv"))
        if within or beyond:
            desc = "; ".join(
                f"run seed {r.get('run_seed')}: {c} {iv(est(r, c))} at j={r.get('stop_index')}"
                for r, c in (beyond or within)[:3]
            )
            tv_text = (
                (
                    f"; TV ceiling (context) from {min(t['value'] for t in tvs):.4f} to "
                    f"{max(t['value'] for t in tvs):.4f}"
                )
                if tvs
                else ""
            )
            if not beyond:
                verdict, word = HOLDS, f"every output's bounded-size advantage is within ε = {eps}"
            elif premise:
                verdict, word = VIOLATED, f"{len(beyond)} outputs exceed ε = {eps} beyond the intervals"
            else:
                verdict, word = (
                    NOT_SHOWN,
                    (
                        f"{len(beyond)} outputs exceed ε = {eps} beyond the intervals, but the "
                        f"premise (j₀ from 1..N, exact minimisation) is not met"
                    ),
                )
            checks.append(
                {
                    "verdict": verdict,
                    "kind": "output",
                    "sentence": f"{label}: {word} ({len(within) + len(beyond)} outputs; {desc}{tv_text}).",
                }
            )
        figure_groups.append(
            {
                "label": label,
                "share": w,
                "promised": promised,
                "eps": eps,
                "outputs": [
                    {
                        "run_seed": r.get("run_seed"),
                        "stop_index": r.get("stop_index"),
                        "sizes_tried": r.get("sizes_tried"),
                        "tv": est(r, "tv"),
                        "learned": est(r, "learned"),
                        "theorem3": est(r, "theorem3"),
                        **{c: est(r, c) for c in distinguishers(r) if c.startswith("checker_")},
                    }
                    for r in rs
                ],
            }
        )
    plural = "setting" if len(groups) == 1 else "settings"
    return conclude(
        "lemma4",
        "Lemma 4 / Theorem 1: Algorithm 1 stops after two sizes, and its output is hard to distinguish",
        f"With j₀ drawn uniformly from 1..N, N = ⌈10 log V/δ⌉, Algorithm 1 stops after two sizes with probability "
        f"≥ {promised}, and under exact loss minimisation its output is (ε, k)-indistinguishable for the "
        "distinguishers the next size can absorb (docs/theory.md §5). Measured over repeated runs: the share "
        "that stopped after two sizes with its Wilson 95% interval, and the output's advantage at k for the "
        "bounded-size distinguishers (checkers, the learned one) against ε; the TV ceiling is context, not a "
        "test (the optimal distinguisher has no size bound).",
        checks,
        {"kind": "lemma4", "groups": figure_groups},
        "no run of Algorithm 1 finished",
        f"{len(groups)} {plural}, {len(checks)} checks: {tally(checks)}. "
        + " ".join(c["sentence"] for c in checks if c.get("kind") == "two_sizes"),
        strict=True,
    )


# ---------------------------------------------------------------------------------------------- Theorem 2


def matches_float(q: dict, ref: dict) -> bool:
    """A quantised model's excess loss is as good as the float model's: its interval reaches down to the float's."""
    return low(q) <= high(ref)


def theorem2(rows: list[dict]) -> dict:
    """Loss and advantage against bit size (every node in fixed point); the smallest sufficient bit size per n."""
    cells = defaultdict(list)
    for r in ok_rows(rows, "bits"):
        cells[(r.get("cell"), r.get("step_index"))].append(r)
    checks, series, bstar = [], [], []
    for rs in sorted(cells.values(), key=lambda rs: (rs[0].get("length") or 0, str(rs[0].get("cell")))):
        ref = next((r for r in rs if r.get("bit_size") is None), None)
        qs = sorted((r for r in rs if r.get("bit_size") is not None), key=lambda r: r["bit_size"])
        if ref is None or not qs or est(ref, "excess_loss") is None:
            continue
        f_ex = est(ref, "excess_loss")
        ok = [est(r, "excess_loss") is not None and matches_float(est(r, "excess_loss"), f_ex) for r in qs]
        first = next((i for i in range(len(qs)) if all(ok[i:])), None)
        label = model_label(ref) + f", k={ref.get('k')}"
        if first is None:
            verdict = NOT_SHOWN
            sentence = (
                f"{label}: float excess loss {iv(f_ex)}; even b = {qs[-1]['bit_size']} gives "
                f"{iv(est(qs[-1], 'excess_loss'))}: no tested bit size matches the float model"
            )
        else:
            q = qs[first]
            verdict = HOLDS
            bstar.append((ref.get("length"), q["bit_size"]))
            tv = f"; TV {iv(est(q, 'tv'))} vs float {iv(est(ref, 'tv'))}" if q.get("tv") is not None else ""
            below = (
                f"; below it, b = {qs[first - 1]['bit_size']} gives {iv(est(qs[first - 1], 'excess_loss'))}"
                if first > 0
                else ""
            )
            sentence = (
                f"{label}: b* = {q['bit_size']} (I={q.get('int_bits')}, F={q.get('frac_bits')}): excess loss "
                f"{iv(est(q, 'excess_loss'))} vs float {iv(f_ex)}{tv}{below}"
            )
        checks.append({"verdict": verdict, "sentence": sentence, "length": ref.get("length")})
        series.append(
            {
                "label": label,
                "length": ref.get("length"),
                "float": {"excess_loss": f_ex, "tv": est(ref, "tv"), "loss": est(ref, "loss")},
                "bstar": None if first is None else qs[first]["bit_size"],
                "points": [
                    {
                        "bit_size": r["bit_size"],
                        "excess_loss": est(r, "excess_loss"),
                        "tv": est(r, "tv"),
                        "loss": est(r, "loss"),
                        "theorem3": est(r, "theorem3"),
                    }
                    for r in qs
                ],
            }
        )
    lengths = sorted({n for n, _ in bstar if n is not None})
    if len(lengths) >= 2 and all(c["verdict"] == HOLDS for c in checks):
        by_n = {n: max(b for m, b in bstar if m == n) for n in lengths}
        grows = by_n[lengths[-1]] > max(by_n[n] for n in lengths[:-1])
        text = ", ".join(f"n={n}: {b}" for n, b in by_n.items())
        checks.append(
            {
                "verdict": NOT_SHOWN if grows else HOLDS,
                "kind": "independence",
                "sentence": f"b* by n ({text}): "
                + (
                    "the largest n needs more bits than every smaller n: independence of n not shown at this budget"
                    if grows
                    else "the largest n needs no more bits than a smaller one"
                ),
            }
        )
    evidence_alg2 = []
    for r in ok_rows(rows, "search"):
        if r.get("bit_size") is not None:
            evidence_alg2.append(
                f"Algorithm 2 ({model_label(r)}, ε={r.get('eps')}, k={r.get('k')}, run seed {r.get('run_seed')}): "
                f"output j={r.get('stop_index')} at b = {r['bit_size']} bits after {r.get('sizes_tried')} sizes; "
                f"TV {iv(est(r, 'tv'))}, bound {iv(est(r, 'theorem3'))}"
            )
    found = ", ".join(f"{b} bits at n={n}" for n, b in bstar) or "none"
    return conclude(
        "theorem2",
        "Theorem 2: a bit size independent of n suffices",
        "With every node value in fixed point, a bit size polynomial in k, 1/ε and the distinguishers' size — and "
        "independent of n — suffices (Algorithm 2, docs/theory.md §6). Measured: a trained RNN's excess loss and "
        "advantage at each bit size b = 1 + I + F, against the same model in floating point; b* is the smallest "
        "tested b from which on every quantised excess loss's interval reaches the float model's. This is an "
        "existence claim: a finite sweep can support it, not refute it.",
        checks,
        {"kind": "theorem2", "series": series},
        "no bit-size sweep was measured",
        f"{len(series)} models swept over bit sizes; the float model's excess loss is reached at {found}. ",
        {
            HOLDS: "A fixed bit size suffices at every n measured.",
            NOT_SHOWN: "Not every model reached its float excess loss at a tested bit size, or b* grew with n.",
            VIOLATED: "",
        },
        strict=True,
        more=evidence_alg2,
        empty_evidence=evidence_alg2,
    )


# ---------------------------------------------------------------------------------------------- the barrier


def barrier_rows(rows: list[dict], aspect: str) -> list[dict]:
    return [r for r in ok_rows(rows, "barrier") if r.get("aspect") == aspect]


def barrier_sampling(rows: list[dict]) -> dict:
    """The growth of the cost per sample in d, product-first against each other sampler."""
    word = {"a_higher": HOLDS, "b_higher": VIOLATED}
    checks = [
        {"verdict": word.get(r.get("verdict"), NOT_SHOWN), "sentence": r.get("sentence") or ""}
        for r in barrier_rows(rows, "sampling_versus")
    ]
    stops = [r.get("sentence") for r in barrier_rows(rows, "sampling_growth") if r.get("sentence")]
    return conclude(
        "barrier_sampling",
        "Barrier: sampling product-first costs grow faster than the easy samplers'",
        "Product-first factorization documents are as hard to sample token by token as factoring N (the paper's "
        "Appendix B, the note): the cost per sample of the product-first autoregressive sampler should grow "
        "faster in the digits d than the non-autoregressive and factors-first samplers'. Growth is the fitted "
        "decades per digit with a 95% Student-t interval (nextk.barrier.conclusions).",
        checks,
        {"kind": "barrier", "name": "sampling_cost"},
        "the sampling costs were not measured (no barrier run finished)",
        f"{len(checks)} comparisons of growth: {tally(checks)}. ",
        {
            HOLDS: "Product-first grows faster than every other sampler (intervals disjoint).",
            VIOLATED: "Another sampler grows faster than product-first (intervals disjoint).",
            NOT_SHOWN: "Not every comparison separates at this budget (more digits or time are needed).",
        },
        strict=True,
        more=stops,
    )


def barrier_learning(rows: list[dict]) -> dict:
    """Valid rate and excess loss per d, factors-first against product-first at equal size and budget."""
    checks = []
    for r in barrier_rows(rows, "learning"):
        v, sentence = r.get("verdict"), r.get("sentence") or ""
        if r.get("item") == "validity":
            verdict = {"b_higher": HOLDS, "a_higher": VIOLATED}.get(v, NOT_SHOWN)
        else:  # excess loss: lower is better
            verdict = {"a_higher": HOLDS}.get(v, NOT_SHOWN)
            if v == "b_higher":
                sentence += " (product-first's excess loss is lower: reported, not counted against the claim)"
        checks.append({"verdict": verdict, "sentence": sentence, "digits": r.get("digits")})
    return conclude(
        "barrier_learning",
        "Barrier: the factors-first order is learned better than product-first",
        "At equal model size and training budget, a GRU trained on factors-first documents (p, q, N) should "
        "write valid documents more often than one trained product-first (N, p, q), whose conditionals after N "
        "require factoring; its excess loss should be lower too. Compared per d by 95% intervals. Only the valid "
        "rate — sampling correct documents, what the barrier is about — can contradict the claim: a lower excess "
        "loss of product-first is reported, not counted against it (the loss also prices the digits both orders "
        "share, and at small d both orders are a table the model can memorise).",
        checks,
        {"kind": "barrier", "name": "learning"},
        "learning by order was not measured (no barrier run finished)",
        f"{len(checks)} comparisons (valid rate and excess loss per d): {tally(checks)}. ",
        {
            HOLDS: "Factors-first is learned better where the intervals separate, and worse nowhere.",
            VIOLATED: "Product-first is learned better somewhere, beyond the intervals.",
            NOT_SHOWN: "No comparison separates at this budget.",
        },
    )


def barrier_hidden(rows: list[dict]) -> dict:
    """The hidden stream and the seed prefix against the plain product-first model: valid rate and visible TV."""
    checks, bars = [], []
    for r in barrier_rows(rows, "hidden"):
        v = r.get("verdict")
        if r.get("item", "").endswith("validity"):
            verdict = {"a_higher": HOLDS, "b_higher": VIOLATED}.get(v, NOT_SHOWN)
            bars.append(
                {"variant": r.get("variant"), "validity": est(r, "variant_validity"), "plain": est(r, "plain_validity")}
            )
        else:
            verdict = HOLDS if v == "lower" else NOT_SHOWN
        checks.append({"verdict": verdict, "sentence": r.get("sentence") or ""})
    return conclude(
        "barrier_hidden",
        "Barrier: a hidden stream or a seed prefix beats the plain model",
        "The note's ways around the barrier: writing hidden scratch tokens (p′, q′) before the visible document, "
        "or a hidden random seed, makes the product-first document easy to produce autoregressively. A model "
        "trained that way should write valid visible documents more often, and its visible distribution should "
        "be closer in TV to the truth, than the plain product-first model of the same size and budget.",
        checks,
        {"kind": "barrier_hidden", "bars": bars},
        "the hidden stream and seed prefix were not measured (no barrier run finished)",
        f"{len(checks)} comparisons (valid rate, visible TV): {tally(checks)}. ",
        {
            HOLDS: "A hidden variant beats the plain model where the measurements separate, and loses nowhere.",
            VIOLATED: "The plain model is better somewhere, beyond the intervals.",
            NOT_SHOWN: "No improvement over the plain model is shown at this budget.",
        },
    )


def barrier_primes(rows: list[dict], tolerance: float = LI_TV_TOLERANCE) -> dict:
    title = "Barrier: random primes autoregressively through the li approximation"
    claim = (
        "A uniform random d-digit prime can be written digit by digit when the next digit's weight is a "
        "prime count; the note's deterministic li-density approximation of those counts should keep the "
        f"sampler close to uniform. Measured: its exact TV to the uniform prime, by enumeration (holds when "
        f"at most {tolerance} at every d enumerated). The randomized-task rows (a uniform 3-digit number) are "
        "context."
    )
    main = barrier_rows(rows, "primes")
    tvs = [r for r in barrier_rows(rows, "primes_tv") if r.get("tv") is not None]
    extra = [r.get("sentence") for r in barrier_rows(rows, "uniformity") if r.get("sentence")]
    figure = {"kind": "barrier", "name": "primes"}
    if not main or not tvs:
        return not_shown(
            "barrier_primes", title, claim, figure, "no exact TV of the li approximation was computed", extra
        )
    worst = max(tvs, key=lambda r: r["tv"])
    ok = worst["tv"] <= tolerance
    per_d = ", ".join(f"d={r['digits']}: {r['tv']:.4f}" for r in sorted(tvs, key=lambda r: r["digits"]))
    sentence = (
        f"exact TV (by enumeration) at most {worst['tv']:.4f} (d = {worst['digits']}), "
        + (f"within the tolerance {tolerance}" if ok else f"above the tolerance {tolerance}")
        + f": {per_d}"
    )
    check = {"verdict": HOLDS if ok else NOT_SHOWN, "sentence": sentence, "max_tv": worst["tv"]}
    return section(
        "barrier_primes",
        title,
        claim,
        [check],
        sentence=sentence,
        figure=figure,
        evidence=[main[0].get("sentence") or sentence, *extra],
    )


# ---------------------------------------------------------------------------------------------- all of them

ANALYSES = (
    theorem3,
    size_trend,
    length_flat,
    lemma1,
    lemma4,
    theorem2,
    barrier_sampling,
    barrier_learning,
    barrier_hidden,
    barrier_primes,
)


def analyse(rows: list[dict]) -> list[dict]:
    """Every section, in the order of the report."""
    return [analysis(rows) for analysis in ANALYSES]
