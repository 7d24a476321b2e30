"""The verdicts of `nextk reproduce`: pure functions from the sweep table (a list of row dicts, nextk.runs.table)
to one section per claim of the paper and the note, and nextk's own observations, labelled as such.

One small module per claim, each with its decision rule in its docstring and its synthetic tables beside it:
`theorem3`, `trends` (nextk's observations: size and length), `lemma1` (Lemmas 1–2), `lemma4`, `theorem2`,
`barrier` (the note). The shared rule — Holm for "violated", intersection–union for "holds", premises — is in
`rules`; the measured error rates of every rule in `calibration` (docs/reproduce.md).
"""

from __future__ import annotations

from nextk.runs.verdicts.barrier import (
    LI_TV_TOLERANCE,
    barrier_hidden,
    barrier_learning,
    barrier_primes,
    barrier_rows,
    barrier_sampling,
)
from nextk.runs.verdicts.lemma1 import lemma1
from nextk.runs.verdicts.lemma4 import PROMISED, lemma4
from nextk.runs.verdicts.rules import (
    ALPHA,
    HOLDS,
    NEXTK,
    NOT_SHOWN,
    NOTE,
    PAPER,
    VERDICTS,
    VIOLATED,
    conclude,
    decide,
    est,
    holm,
    iv,
    model_label,
    num,
    ok_rows,
    section,
    tally,
)
from nextk.runs.verdicts.theorem2 import TOLERANCE, theorem2
from nextk.runs.verdicts.theorem3 import abs_interval, distinguishers, theorem3
from nextk.runs.verdicts.trends import (
    FLAT_MARGIN,
    length_flat,
    size_trend,
    slope,
    trend_groups,
    trend_points,
    trend_value,
)

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


__all__ = [
    "ALPHA", "ANALYSES", "FLAT_MARGIN", "HOLDS", "LI_TV_TOLERANCE", "NEXTK", "NOTE", "NOT_SHOWN", "PAPER", "PROMISED",
    "TOLERANCE", "VERDICTS", "VIOLATED", "abs_interval", "analyse", "barrier_hidden", "barrier_learning",
    "barrier_primes", "barrier_rows", "barrier_sampling", "conclude", "decide", "distinguishers", "est", "holm", "iv",
    "length_flat", "lemma1", "lemma4", "model_label", "num", "ok_rows", "section", "size_trend", "slope", "tally",
    "theorem2", "theorem3", "trend_groups", "trend_points", "trend_value",
]  # fmt: skip
