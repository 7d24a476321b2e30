"""The decision rule every verdict of `nextk reproduce` shares (docs/reproduce.md, "How a verdict is decided").

A section checks one claim at one or more places (a model, a group, an offset, a d). Each check is a one-sided
test in both directions, stated before the data:

- `p_wrong`: the p-value of "the data lie on the wrong side" against the claim held exactly (its boundary);
- `p_right`: the p-value of "the data lie on the claimed side" against the claim failing at its boundary.

The section is **violated** when Holm's step-down procedure at level `ALPHA` rejects at least one p_wrong (so the
familywise rate of a false "violated" is ≤ ALPHA when the claim holds everywhere; for "any rejection" Holm and
Bonferroni agree, Holm also names which checks). It **holds** when every check's p_right is ≤ ALPHA — an
intersection–union test, whose rate of a false "holds" is ≤ ALPHA without correction — and every premise was
met; a claim that only needs one place (`exists=True`: a trend in some group, a difference at some d) holds when
Holm rejects at least one p_right instead, and is violated only when every check's p_wrong is ≤ ALPHA (its
negation holds at every place: intersection–union, level ALPHA) — one place on the wrong side does not refute
"some place is on the claimed side". Otherwise it is **not shown**, and the sentence names what is missing.
Exact computations (no sampling) give p-values 0 or 1. The measured error rates of each rule are in
`nextk.runs.verdicts.calibration`.
"""

from __future__ import annotations

import math

from scipy.special import ndtr, stdtr
from scipy.stats import binomtest

from nextk.stats import Z95

HOLDS, VIOLATED, NOT_SHOWN = "holds", "violated", "not shown"
VERDICTS = (HOLDS, VIOLATED, NOT_SHOWN)
ALPHA = 0.05  # a section's familywise rate of a false "violated", and of a false "holds"
PAPER, NOTE, NEXTK = (
    "paper",
    "note",
    "nextk",
)  # whose claim a section checks; NEXTK: an observation, no verdict on the paper


# ---------------------------------------------------------------------------------------------- reading rows


def ok_rows(rows: list[dict], stage: str | None = None) -> list[dict]:
    """Rows of finished cells (status "ok"), optionally of one stage ("measure", "boost", "bits", …)."""
    return [r for r in rows if r.get("status", "ok") == "ok" and (stage is None or r.get("stage") == stage)]


def est(row: dict, name: str) -> dict | None:
    """The estimate a row holds under `name` (columns name, name_low, name_high, …), or None."""
    v = row.get(name)
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    return {k: row.get(f"{name}_{k}") for k in ("low", "high", "stderr", "n")} | {"value": v}


def se(e: dict | None) -> float | None:
    """An estimate's standard error: its own, else read back from a 95% interval's width; 0 for an exact value
    (low = high = value); None when neither is known."""
    if e is None:
        return None
    s = e.get("stderr")
    if s is not None and math.isfinite(s):
        return float(s)
    lo, hi = e.get("low"), e.get("high")
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return (hi - lo) / (2 * Z95)


def num(x, fmt: str = ".4f") -> str:
    """A number that may be missing or infinite: None is 'n/a', ±inf is '+∞' / '−∞'."""
    if x is None:
        return "n/a"
    if isinstance(x, (int, float)) and math.isinf(x):
        return "+∞" if x > 0 else "−∞"
    return format(x, fmt)


def iv(e: dict | None, fmt: str = ".4f") -> str:
    """'0.1234 [0.1000, 0.1500]'; '(exact)' when the interval has no width; '(no interval)' when it is missing."""
    if e is None or e.get("value") is None:
        return "n/a"
    v, lo, hi = e["value"], e.get("low"), e.get("high")
    if lo is None or hi is None:
        return f"{num(v, fmt)} (no interval)"
    if lo == hi == v:
        return f"{num(v, fmt)} (exact)"
    return f"{num(v, fmt)} [{num(lo, fmt)}, {num(hi, fmt)}]"


def model_label(r: dict) -> str:
    name = r.get("model_name") or "-".join(str(x) for x in (r.get("family") or "model", r.get("size")) if x is not None)
    src = r.get("source_name") or r.get("source") or "source"
    return f"{name} on {src} (n={r.get('length')})"


# ---------------------------------------------------------------------------------------------- tests


def z_test(distance: float, stderr: float | None, dof: int | None = None) -> tuple[float, float]:
    """(p_wrong, p_right) for a signed distance from the claim's boundary (positive: on the claimed side) with
    its standard error; Student-t with `dof` degrees of freedom when given, else normal. An exact distance
    (stderr 0) gives 0 or 1."""
    if stderr is None or not math.isfinite(distance):
        if math.isinf(distance):  # e.g. a gain of −∞: certain
            return (0.0, 1.0) if distance < 0 else (1.0, 0.0)
        return 1.0, 1.0
    if stderr == 0:
        return (0.0 if distance < 0 else 1.0), (0.0 if distance > 0 else 1.0)
    z = distance / stderr
    if dof is None:
        return float(ndtr(z)), float(ndtr(-z))
    return float(stdtr(dof, z)), float(stdtr(dof, -z))


def binomial_test(successes: int, n: int, p0: float) -> tuple[float, float]:
    """(p of "rate < p0", p of "rate > p0") by the exact one-sided binomial tests (scipy.stats.binomtest), whose
    size is at most the level at every n (the normal score test's is not: 11% at n = 6, p0 = 0.9)."""
    if n == 0:
        return 1.0, 1.0
    less = binomtest(successes, n, p0, alternative="less").pvalue
    greater = binomtest(successes, n, p0, alternative="greater").pvalue
    return float(less), float(greater)


def crossing_z(gap, lo: float = -40.0, hi: float = 40.0) -> float:
    """The z where gap(z), a non-increasing function, crosses 0 (bisection; ±40 when it does not): the
    confidence multiplier at which a test built from one-sided bounds at z starts to reject."""
    if gap(hi) >= 0:
        return hi
    if gap(lo) < 0:
        return lo
    for _ in range(40):  # 80 / 2⁴⁰: far below any z that matters
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if gap(mid) >= 0 else (lo, mid)
    return (lo + hi) / 2


def holm(pvalues: list[float], alpha: float = ALPHA) -> list[bool]:
    """Holm's step-down procedure: which of the hypotheses are rejected at familywise level alpha."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    rejected = [False] * len(pvalues)
    for rank, i in enumerate(order):
        if pvalues[i] > alpha / (len(pvalues) - rank):
            break
        rejected[i] = True
    return rejected


def check(verdict_sentence: str, p_wrong: float, p_right: float, *, premise: str = "", **extra) -> dict:
    """One place where the claim is tested: its sentence, both p-values and an unmet premise ('' when met)."""
    return {"sentence": verdict_sentence, "p_wrong": p_wrong, "p_right": p_right, "premise": premise, **extra}


def decide(checks: list[dict], *, exists: bool = False, applicable: bool = False, alpha: float = ALPHA) -> str:
    """The section's verdict from its checks (the module docstring's rule); writes each check's own verdict:
    violated (Holm-rejected p_wrong; under `exists` every p_wrong ≤ alpha, since one place on the claimed side makes an
    existential claim true), holds (p_right ≤ alpha, or Holm-rejected under `exists`), else not shown.
    A check with an unmet premise cannot hold; a violation needs its premise met too. `applicable`: checks with an
    unmet premise are no test of the claim (a setting that did not draw j₀ from 1..N): the section is decided on
    the others, and is not shown when there are none."""
    if exists:  # "violated" denies every place: intersection–union, every check on the wrong side at alpha
        every = bool(checks) and all(not c["premise"] and c["p_wrong"] <= alpha for c in checks)
        wrong = [every] * len(checks)
    else:
        wrong = holm([c["p_wrong"] if not c["premise"] else 1.0 for c in checks], alpha)
    right = holm([c["p_right"] for c in checks], alpha) if exists else [c["p_right"] <= alpha for c in checks]
    for c, w, r in zip(checks, wrong, right):
        c["verdict"] = VIOLATED if w else (HOLDS if r and not c["premise"] else NOT_SHOWN)
    if not checks:
        return NOT_SHOWN
    if any(wrong):
        return VIOLATED
    met = [c for c in checks if not c["premise"]]
    if applicable:
        checks = met
        if not met:
            return NOT_SHOWN
    if exists:
        return HOLDS if any(c["verdict"] == HOLDS for c in met) else NOT_SHOWN
    return HOLDS if len(met) == len(checks) and all(c["verdict"] == HOLDS for c in checks) else NOT_SHOWN


def tally(checks: list[dict]) -> str:
    counts = {v: sum(1 for c in checks if c.get("verdict") == v) for v in VERDICTS}
    return ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "no checks"


def missing(checks: list[dict], alpha: float = ALPHA) -> str:
    """What a "not shown" section lacks, from its checks: unmet premises, then intervals too wide."""
    premises = sorted({c["premise"] for c in checks if c["premise"]})
    wide = sum(1 for c in checks if c.get("verdict") == NOT_SHOWN and not c["premise"])
    parts = [f"premise not met: {p}" for p in premises]
    if wide:
        parts.append(
            f"{wide} of {len(checks)} checks are on neither side at level {alpha} (more samples, seeds or budget)"
        )
    return "; ".join(parts)


RULE = (
    "Rule (stated before the data): violated when Holm's procedure at familywise level 5% finds a check on the "
    "wrong side; holds when every check lies on the claimed side at level 5% (intersection–union) and every "
    "premise was met; otherwise not shown."
)
RULE_EXISTS = (
    "Rule (stated before the data): violated when every place lies on the wrong side at level 5% (intersection–"
    "union: the claim needs only one place, so one place on the wrong side does not refute it); holds when "
    "Holm's procedure at familywise level 5% finds at least one place on the claimed side (a premise met); "
    "otherwise not shown."
)


def section(
    key: str,
    title: str,
    claim: str,
    checks: list[dict],
    *,
    verdict: str,
    sentence: str,
    figure: dict | None,
    whose: str = PAPER,
    rule: str = RULE,
    evidence: list[str] | None = None,
    **extra,
) -> dict:
    """A section of the report: key, title, claim, whose claim it is, the rule, the verdict and its sentence,
    evidence (one sentence per check, each with its verdict), checks and the figure's data."""
    ev = evidence if evidence is not None else [f"[{c['verdict']}] {c['sentence']}" for c in checks]
    return {
        "key": key,
        "title": title,
        "claim": claim,
        "whose": whose,
        "rule": rule,
        "verdict": verdict,
        "sentence": sentence,
        "evidence": ev,
        "checks": checks,
        "figure": figure,
        **extra,
    }


def conclude(
    key: str,
    title: str,
    claim: str,
    checks: list[dict],
    figure: dict | None,
    empty: str,
    head: str,
    *,
    whose: str = PAPER,
    exists: bool = False,
    applicable: bool = False,
    more: list[str] | tuple[str, ...] = (),
    **extra,
) -> dict:
    """The end of a section: "not shown" with the sentence `empty` when there are no checks; else the verdict of
    `decide`, said by `head`, the tally and (when not shown) what is missing."""
    rule = RULE_EXISTS if exists else RULE
    if not checks:
        return section(
            key, title, claim, [], verdict=NOT_SHOWN, sentence=empty, figure=figure, whose=whose, rule=rule,
            evidence=list(more), **extra,
        )  # fmt: skip
    verdict = decide(checks, exists=exists, applicable=applicable)
    sentence = f"{head} {len(checks)} checks: {tally(checks)}."
    if verdict == NOT_SHOWN:
        sentence += " Not shown: " + (missing(checks) or "no place on the claimed side") + "."
    elif any(c["premise"] for c in checks):
        unmet = sorted({c["premise"] for c in checks if c["premise"]})
        sentence += " Counted neither way (premise not met): " + "; ".join(unmet) + "."
    evidence = [f"[{c['verdict']}] {c['sentence']}" for c in checks] + list(more)
    return section(
        key, title, claim, checks, verdict=verdict, sentence=sentence, figure=figure, whose=whose, rule=rule,
        evidence=evidence, **extra,
    )  # fmt: skip


def columns(name: str, value: float, stderr: float, n: int | None = None) -> dict:
    """An estimate as table columns (name, name_low, name_high, name_stderr, name_n) with a normal 95% interval,
    as the synthetic tables of the calibration write them."""
    half = Z95 * stderr
    out = {name: value, f"{name}_low": value - half, f"{name}_high": value + half, f"{name}_stderr": stderr}
    return out | ({f"{name}_n": n} if n is not None else {})
