"""The measurement panel for one model against its truth (docs/theory.md §1–3).

`measure_model` is the table a user reads for one trained model: the excess loss with its interval
and, for each window size k, every checker's advantage, a learned distinguisher's advantage (fitted on
other documents than it is measured on), the TV ceiling and the Theorem 3 bound. Search, bit-size
sweeps and every run use this one panel.
"""

from __future__ import annotations

from nextk import bounds
from nextk.advantage import advantage, tv_advantage
from nextk.console import quiet
from nextk.distinguishers.learned import LearnedDistinguisher
from nextk.measure import excess_loss
from nextk.stats import Estimate, fmt

WINDOW_BUDGET = 4096  # largest V^k for which inner expectations are enumerated (else paired MC)
UNITS = {
    "excess_loss": "nats per token (KL(p̄‖q̄)/n)",
    "kl": "nats per document (KL(p̄‖q̄) over n tokens)",
    "advantage": "probability difference in [−1, 1], averaged over the m = n − k + 1 starts",
    "theorem3": "bound on |advantage|: sqrt(k·KL/(2m)), KL per document",
}


def window_estimator(vocab_size: int, k: int) -> str:
    """The advantage estimator a panel uses: Rao–Blackwellised while V^k fits, else paired."""
    return "rao_blackwell" if vocab_size**k <= WINDOW_BUDGET else "paired"


def measure_model(
    source,
    model,
    ks,
    *,
    num_docs: int,
    seed: int,
    learned: bool = True,
    learned_hidden: int = 16,
    learned_steps: int = 200,
    learned_docs: int = 1024,
    log=quiet,
) -> dict:
    """Excess loss and, per k, checker / learned / TV advantages and the Theorem 3 bound (dicts of
    Estimates; `UNITS` says the unit of each)."""
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
            d.fit(source, model, k, num_docs=learned_docs)
            row["learned"] = advantage(
                d, source, model, k, num_docs=num_docs, estimator=est, seed=seed + 300 + k
            ).to_dict()
            row["learned"]["train_accuracy"] = d.train_accuracy_
        if v**k <= WINDOW_BUDGET:
            row["tv"] = tv_advantage(source, model, k, num_docs=num_docs, seed=seed + 400 + k).to_dict()
        b = kl_total.map(
            lambda kl, k=k: bounds.theorem3(kl, k, n), method="theorem 3 at the KL estimate and its interval ends"
        )
        row["theorem3"] = b.to_dict()
        out["windows"].append(row)
        parts = [f"{c} {fmt(r)}" for c, r in row["checkers"].items()]
        parts += [f"learned {fmt(row['learned'])}"] if learned else []
        parts += [f"TV {fmt(row['tv'])}"] if "tv" in row else []
        log(f"  k={k}: " + ", ".join(parts) + f", bound {fmt(b.to_dict())}")
    return out
