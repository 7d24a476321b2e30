"""Estimates with their intervals (docs/theory.md §8): pure functions returning frozen results."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

Z95 = 1.959963984540054  # two-sided 95% normal quantile


@dataclass(frozen=True)
class Estimate:
    """A number a user sees: value, standard error, 95% interval, sample count and method.

    What is an Estimate, precisely: every estimator and measure returns one (`advantage`,
    `tv_advantage`, `kl`, `entropy`, `excess_loss`, `loss`, `wilson`, `theorem3` given an Estimate).
    Records kept for JSON — `TrainResult.history`, `SearchResult.losses`/`.excess`/`.measurement`,
    `Boosted.search_`, every results.json — hold the same numbers as `Estimate.to_dict()` dicts
    (value, stderr, low, high, n, method); `Estimate.from_dict` turns one back into an Estimate.
    """

    value: float
    stderr: float
    low: float
    high: float
    n: int
    method: str

    def to_dict(self) -> dict:
        """Plain JSON-safe dict (a non-finite number becomes None, so results.json stays strict JSON)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> Estimate:
        """The inverse of to_dict (None, written for a non-finite number, becomes nan)."""
        nan = float("nan")
        return cls(*(nan if d[k] is None else d[k] for k in ("value", "stderr", "low", "high")), d["n"], d["method"])

    def __str__(self) -> str:
        return fmt(self, detail=True)

    def map(self, f, method: str | None = None) -> Estimate:
        """Push a monotone non-decreasing f through the value and the interval ends; the standard error
        is read back from the mapped interval's width (width / (2 · 1.96))."""
        lo, hi = f(self.low), f(self.high)
        return Estimate(f(self.value), (hi - lo) / (2 * Z95), lo, hi, self.n, method or self.method)


def fmt(e: Estimate | dict | None, digits: int = 4, *, signed: bool = False, detail: bool = False) -> str:
    """The one way nextk prints an estimate: value and 95% interval, "(exact)" when it has no error;
    `detail` adds the sample count and method. Takes an Estimate or its dict (as in results.json)."""
    if e is None:
        return "n/a"
    d = e.to_dict() if isinstance(e, Estimate) else e
    spec = f"{'+' if signed else ''}.{digits}f"
    num = lambda x: "nan" if x is None else format(x, spec)  # noqa: E731
    if d.get("stderr") == 0 and not d.get("n"):  # exact(): no samples; a sampled zero spread keeps its n
        out = f"{num(d['value'])} (exact)"
        return out[:-1] + f", {d['method']})" if detail else out
    out = f"{num(d['value'])} [{num(d['low'])}, {num(d['high'])}]"
    return out + f" (n={d['n']}, {d['method']})" if detail else out


def mean_estimate(values: Tensor, method: str) -> Estimate:
    """Mean of iid values with a normal 95% interval."""
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    n = v.numel()
    if n == 0:
        raise ValueError("no samples to estimate from")
    mean = v.mean().item()
    se = (v.std(unbiased=True).item() / math.sqrt(n)) if n > 1 else float("nan")
    return Estimate(mean, se, mean - Z95 * se, mean + Z95 * se, n, method)


def exact(value: float, method: str) -> Estimate:
    return Estimate(float(value), 0.0, float(value), float(value), 0, method)


def wilson(successes: int, n: int, method: str = "wilson") -> Estimate:
    """A proportion with its Wilson 95% interval."""
    if n == 0:
        raise ValueError("no trials")
    p = successes / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return Estimate(p, math.sqrt(p * (1 - p) / n), centre - half, centre + half, n, method)
