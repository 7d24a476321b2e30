"""Estimates with their intervals (STYLE.md 5): pure functions returning frozen results."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

Z95 = 1.959963984540054  # two-sided 95% normal quantile


@dataclass(frozen=True)
class Estimate:
    """A number a user sees: value, standard error, 95% interval, sample count and method."""

    value: float
    stderr: float
    low: float
    high: float
    n: int
    method: str

    def to_dict(self) -> dict:
        """Plain JSON-safe dict (a non-finite number becomes None, so results.json stays strict JSON)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}

    def __str__(self) -> str:
        if self.stderr == 0.0:
            return f"{self.value:.4g} (exact, {self.method})"
        return (
            f"{self.value:.4g} ± {Z95 * self.stderr:.2g} [{self.low:.4g}, {self.high:.4g}] (n={self.n}, {self.method})"
        )

    def map(self, f, method: str | None = None) -> Estimate:
        """Push a monotone non-decreasing f through the value and the interval ends; the standard error
        is read back from the mapped interval's width (width / (2 · 1.96))."""
        lo, hi = f(self.low), f(self.high)
        return Estimate(f(self.value), (hi - lo) / (2 * Z95), lo, hi, self.n, method or self.method)


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
