"""The measurement panel for one model against its truth (docs/theory.md §1–3).

`measure_model` is the table a user reads for one trained model: the excess loss with its interval
and, for each window size k, every checker's advantage, a learned distinguisher's advantage (fitted on
other documents than it is measured on), the TV ceiling and the Theorem 3 bound. Search, bit-size
sweeps and every run use this one panel.

The learned distinguisher's row carries its held-out advantage (`learned`), how it was fitted
(`learned_fit`: fitted accuracy, threshold, documents, pairs, steps) and, where the TV ceiling is
computed, the share of the ceiling it reaches (`learned_share_of_tv`, a ratio of two independent
estimates with Fieller's 95% interval).
"""

from __future__ import annotations

import math

from nextk import bounds
from nextk.advantage import WINDOW_BUDGET, advantage, resolve_estimator, tv_advantage
from nextk.console import quiet
from nextk.distinguishers.learned import LearnedDistinguisher
from nextk.measure import excess_loss
from nextk.stats import Z95, Estimate, fmt

UNITS = {
    "excess_loss": "nats per token (KL(p̄‖q̄)/n)",
    "kl": "nats per document (KL(p̄‖q̄) over n tokens)",
    "advantage": "probability difference in [−1, 1], averaged over the m = n − k + 1 starts",
    "theorem3": "bound on |advantage|: sqrt(k·KL/(2m)), KL per document",
    "learned_share_of_tv": "learned advantage / TV ceiling (1 = the optimal distinguisher)",
}


def window_estimator(vocab_size: int, k: int) -> str:
    """The advantage estimator a panel uses: the package default ("auto", nextk.advantage)."""
    return resolve_estimator("auto", vocab_size, k)


def measure_model(
    source,
    model,
    ks,
    *,
    num_docs: int,
    seed: int,
    learned: bool = True,
    learned_hidden: int = 32,
    learned_steps: int = 300,
    learned_docs: int = 1024,
    log=quiet,
) -> dict:
    """Excess loss and, per k, checker / learned / TV advantages and the Theorem 3 bound (dicts of
    Estimates; `UNITS` says the unit of each). The learned distinguisher is fitted on `learned_docs`
    documents of seed + 200 + k and measured on `num_docs` others (seed + 300 + k)."""
    n, v = source.length, source.vocab_size
    ex = excess_loss(source, model, num_docs=4 * num_docs, seed=seed + 11)
    kl_total = Estimate(ex.value * n, ex.stderr * n, ex.low * n, ex.high * n, ex.n, ex.method)
    out = {"excess_loss": ex.to_dict(), "kl": kl_total.to_dict(), "units": UNITS, "windows": []}
    for k in ks:
        bounds.check_window(k, n)
        est = window_estimator(v, k)
        row = {"k": k, "estimator": est, "checkers": {}}
        for name, check in source.checks.items():
            row["checkers"][name] = advantage(
                check, source, model, k, num_docs=num_docs, estimator=est, seed=seed + 100 + k
            ).to_dict()
        if learned:
            d = LearnedDistinguisher(v, hidden=learned_hidden, steps=learned_steps, seed=seed + 200 + k)
            d.fit(source, model, k, num_docs=learned_docs, seed=seed + 200 + k)
            learned_adv = advantage(d, source, model, k, num_docs=num_docs, estimator=est, seed=seed + 300 + k)
            row["learned"] = {**learned_adv.to_dict(), "train_accuracy": d.train_accuracy_}
            row["learned_fit"] = d.summary()
        if v**k <= WINDOW_BUDGET:
            tv = tv_advantage(source, model, k, num_docs=num_docs, seed=seed + 400 + k)
            row["tv"] = tv.to_dict()
            if learned:
                row["learned_share_of_tv"] = share_of_ceiling(learned_adv, tv).to_dict()
        b = kl_total.map(
            lambda kl, k=k: bounds.theorem3(kl, k, n), method="theorem 3 at the KL estimate and its interval ends"
        )
        row["theorem3"] = b.to_dict()
        out["windows"].append(row)
        parts = [f"{c} {fmt(r)}" for c, r in row["checkers"].items()]
        if learned:
            share = row.get("learned_share_of_tv")
            parts.append(
                f"learned {fmt(row['learned'])} (fitted accuracy {d.train_accuracy_:.3f}"
                + (f", {fmt(share, 2)} of TV)" if share else ")")
            )
        parts += [f"TV {fmt(row['tv'])}"] if "tv" in row else []
        log(f"  k={k}: " + ", ".join(parts) + f", bound {fmt(b.to_dict())}")
    return out


def share_of_ceiling(a: Estimate, ceiling: Estimate) -> Estimate:
    """a / ceiling for two independent estimates (measured on different documents), with Fieller's 95%
    interval: the ρ with (a − ρ·c)² ≤ z² (se_a² + ρ² se_c²). When the ceiling is not clearly above 0
    (c² ≤ z² se_c²) the interval is unbounded and its ends are reported as None (JSON null)."""
    c, sa, sc = ceiling.value, a.stderr, ceiling.stderr
    method = "ratio of independent estimates (learned / TV, different documents), Fieller 95% interval"
    if c == 0:
        return Estimate(math.nan, math.nan, -math.inf, math.inf, min(a.n, ceiling.n), method)
    rho = a.value / c
    se = math.sqrt(sa**2 + rho**2 * sc**2) / abs(c)  # delta method
    qa, qb, qc = c**2 - Z95**2 * sc**2, -2 * a.value * c, a.value**2 - Z95**2 * sa**2
    disc = qb**2 - 4 * qa * qc
    if qa <= 0 or disc < 0:
        return Estimate(rho, se, -math.inf, math.inf, min(a.n, ceiling.n), method + " (unbounded)")
    root = math.sqrt(disc)
    low, high = sorted(((-qb - root) / (2 * qa), (-qb + root) / (2 * qa)))
    return Estimate(rho, se, low, high, min(a.n, ceiling.n), method)
