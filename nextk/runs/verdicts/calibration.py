"""The measured error rates of every verdict rule, by simulation on synthetic tables (no training).

Each section's module draws tables beside its rule (`synthetic(rng, effect)`): effect 0 puts the claim exactly
at its boundary (true, with equality, at every place), effect > 0 violates it by that much at one place. Over
many tables, `calibrate` measures the rate of a false "violated" at the boundary (target ≤ 5%), and at each
violation size the rate of "violated" (power) and of a false "holds"; `effect_80` is the size at which the power
reaches 80%, found by bisection between the grid's sizes (power grows with the size): the smallest size measured
with power ≥ 80%, within a sixteenth of the grid step of the last size below. Rates carry their Wilson 95%
intervals.

Regenerate the table of docs/reproduce.md with

    python -m nextk.runs.verdicts.calibration --tables 2000
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass

import numpy as np

from nextk.errors import check_option
from nextk.runs.verdicts.rules import HOLDS, VIOLATED
from nextk.stats import Estimate, wilson

# the modules by name (the package exports the sections' functions under the same names)
barrier, lemma1, lemma4, theorem2, theorem3, trends = (
    importlib.import_module(f"nextk.runs.verdicts.{m}")
    for m in ("barrier", "lemma1", "lemma4", "theorem2", "theorem3", "trends")
)
# section → (its rule, its synthetic tables, the unit of the effect, the grid of violation sizes)
SECTIONS = {
    "theorem3": (theorem3.theorem3, theorem3.synthetic, theorem3.EFFECT_UNIT, (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)),
    "size_trend": (trends.size_trend, trends.synthetic_size, "slope per doubling in all three groups (noise sd 0.02)",
                   (0.01, 0.015, 0.02, 0.025, 0.03, 0.04)),
    "length_flat": (trends.length_flat, trends.synthetic_length,
                    "change over n = 8..20 above +0.05 in one group of three (noise sd 0.02)",
                    (0.03, 0.05, 0.07, 0.09, 0.12, 0.15)),
    "lemma1": (lemma1.lemma1, lemma1.synthetic, lemma1.EFFECT_UNIT, (0.02, 0.04, 0.06, 0.08, 0.1, 0.12)),
    "lemma4": (lemma4.observation, lemma4.synthetic, lemma4.EFFECT_UNIT, (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8)),
    "theorem2": (theorem2.theorem2, theorem2.synthetic, theorem2.EFFECT_UNIT, (0.005, 0.01, 0.015, 0.02, 0.025, 0.03)),
    "barrier_sampling": (barrier.barrier_sampling, barrier.synthetic_sampling,
                         barrier.EFFECT_UNITS["barrier_sampling"], (0.03, 0.06, 0.09, 0.12, 0.15, 0.2)),
    "barrier_learning": (barrier.barrier_learning, barrier.synthetic_learning,
                         barrier.EFFECT_UNITS["barrier_learning"], (0.05, 0.08, 0.1, 0.12, 0.15, 0.2)),
    "barrier_hidden": (barrier.barrier_hidden, barrier.synthetic_hidden,
                       barrier.EFFECT_UNITS["barrier_hidden"], (0.05, 0.08, 0.1, 0.12, 0.15, 0.2)),
    "barrier_primes": (barrier.barrier_primes, barrier.synthetic_primes,
                       barrier.EFFECT_UNITS["barrier_primes"], (0.001, 0.01)),
}  # fmt: skip
POWER = 0.8
# the violation size at which each rule reached 80% power (bisection, 4 halvings) in the run of docs/reproduce.md
# (`--tables 300`, seed 0); the report re-measures its rates there, and tests/test_calibration.py checks the power
STATED = {
    "theorem3": 0.1531, "size_trend": 0.02219, "length_flat": 0.07125, "lemma1": 0.04875, "lemma4": 0.625,
    "theorem2": 0.01125, "barrier_sampling": 0.07125, "barrier_learning": 0.1063, "barrier_hidden": 0.1038,
    "barrier_primes": 6.25e-05,
}  # fmt: skip


@dataclass(frozen=True)
class Calibration:
    """One rule's measured rates: a false "violated" at the claim's boundary, and per violation size the
    rate of "violated" (power) and of a false "holds"; `effect_80` the smallest size with power ≥ 0.8."""

    section: str
    tables: int
    unit: str
    false_violated: Estimate
    false_holds_at_boundary: Estimate  # "holds" at the boundary: wrong for an observation ("falls" at slope 0)
    effects: tuple[float, ...]
    power: tuple[Estimate, ...]
    false_holds: tuple[Estimate, ...]
    effect_80: float | None
    seed: int
    power_80: Estimate | None = None  # the power and false-"holds" rate measured at effect_80
    false_holds_80: Estimate | None = None

    def to_dict(self) -> dict:
        return {
            "section": self.section, "tables": self.tables, "unit": self.unit, "seed": self.seed,
            "false_violated": self.false_violated.to_dict(),
            "holds_at_boundary": self.false_holds_at_boundary.to_dict(),
            "effects": list(self.effects), "power": [p.to_dict() for p in self.power],
            "false_holds": [h.to_dict() for h in self.false_holds], "effect_80": self.effect_80,
            "power_80": self.power_80.to_dict() if self.power_80 else None,
            "false_holds_80": self.false_holds_80.to_dict() if self.false_holds_80 else None,
        }  # fmt: skip


def rates(section: str, effect: float, tables: int, rng: np.random.Generator) -> tuple[Estimate, Estimate]:
    """(rate of "violated", rate of "holds") over `tables` synthetic tables at one effect."""
    rule, draw, _, _ = SECTIONS[section]
    verdicts = [rule(draw(rng, effect))["verdict"] for _ in range(tables)]
    method = f"wilson, {tables} synthetic tables at effect {effect}"
    return (
        wilson(sum(v == VIOLATED for v in verdicts), tables, method),
        wilson(sum(v == HOLDS for v in verdicts), tables, method),
    )


def calibrate(
    section: str,
    *,
    tables: int = 2000,
    effects: tuple[float, ...] | None = None,
    seed: int = 0,
    bisect: int = 4,
) -> Calibration:
    """Measure `section`'s rule at the claim's boundary and at each violation size of `effects` (default: the
    section's grid), `tables` synthetic tables each, from `seed`; then `bisect` halvings of the interval where the
    power crosses 80% (from 0 when the first size already reaches it)."""
    check_option("section", section, tuple(SECTIONS))
    _, _, unit, grid = SECTIONS[section]
    effects = tuple(grid if effects is None else effects)
    rng = np.random.default_rng(seed)
    false_violated, holds0 = rates(section, 0.0, tables, rng)
    power, false_holds = [], []
    for e in effects:
        v, h = rates(section, e, tables, rng)
        power.append(v)
        false_holds.append(h)
    i80 = next((i for i, p in enumerate(power) if p.value >= POWER), None)
    e80 = p80 = h80 = None
    if i80 is not None:
        lo, (e80, p80, h80) = (effects[i80 - 1] if i80 else 0.0), (effects[i80], power[i80], false_holds[i80])
        for _ in range(bisect):
            mid = (lo + e80) / 2
            v, h = rates(section, mid, tables, rng)
            if v.value >= POWER:
                e80, p80, h80 = mid, v, h
            else:
                lo = mid
    return Calibration(
        section, tables, unit, false_violated, holds0, effects, tuple(power), tuple(false_holds), e80, seed, p80, h80
    )


def summary(tables: int = 400, seed: int = 0) -> dict:
    """Per section, the rates re-measured at the boundary and at its STATED size (as the report prints them)."""
    out = {}
    for section in SECTIONS:
        c = calibrate(section, tables=tables, effects=(STATED[section],), seed=seed, bisect=0)
        out[section] = {"tables": tables, "seed": seed, "unit": c.unit, "effect": STATED[section],
                        "false_violated": c.false_violated.to_dict(), "power": c.power[0].to_dict(),
                        "false_holds": c.false_holds[0].to_dict()}  # fmt: skip
    return out


def sentence(rates: dict | None) -> str:
    """The report's line on a rule's measured error rates (from `summary`)."""
    if not rates:
        return "not measured in this report (python -m nextk.runs.verdicts.calibration; docs/reproduce.md)"
    p = lambda e: f"{100 * e['value']:.1f}% [{100 * e['low']:.1f}, {100 * e['high']:.1f}]"  # noqa: E731
    return (
        f"false 'violated' when the claim holds with equality {p(rates['false_violated'])}; at a violation of "
        f"{rates['effect']} ({rates['unit']}) 'violated' {p(rates['power'])} (power), false 'holds' "
        f"{p(rates['false_holds'])} — {rates['tables']} synthetic tables each, Wilson 95% intervals"
    )


def pct(e: Estimate) -> str:
    return f"{100 * e.value:.1f}% [{100 * e.low:.1f}, {100 * e.high:.1f}]"


def markdown_table(results: list[Calibration]) -> str:
    """The table of docs/reproduce.md: per section the false-violated rate, the power and false-holds rate at the
    80%-power size, and that size in the section's unit."""
    lines = [
        '| section | false "violated" at the boundary | "holds" at the boundary | violation size for 80% power | '
        'power there | false "holds" there | unit of the size |',
        "|---|---|---|---|---|---|---|",
    ]
    for c in results:
        if c.effect_80 is None:
            at, p, h = f"> {c.effects[-1]} (power {pct(c.power[-1])})", "–", "–"
        else:
            at, p, h = f"{c.effect_80:.4g}", pct(c.power_80), pct(c.false_holds_80)
        row = [c.section, pct(c.false_violated), pct(c.false_holds_at_boundary), at, p, h, c.unit]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Measure the error rates of nextk reproduce's verdict rules.")
    parser.add_argument("--tables", type=int, default=2000, help="synthetic tables per effect size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--section", action="append", choices=list(SECTIONS), help="default: every section")
    args = parser.parse_args(argv)
    results = [calibrate(s, tables=args.tables, seed=args.seed) for s in args.section or SECTIONS]
    print(f"{args.tables} synthetic tables per size, seed {args.seed}; rates with Wilson 95% intervals.\n")
    print(markdown_table(results))


if __name__ == "__main__":
    main()
