"""Uniform random d-digit primes, autoregressively (docs/theory.md §7; the note).

The exact next-digit conditional given a prefix is proportional to the number of d-digit primes in
each continuation interval (`ExactCounter`: a sieve up to 10^8, sympy.primepi beyond — exact but its
cost grows with x). The note's deterministic approximation (`ApproxCounter`) replaces the count by
the density integral ∫ dx / ln x (the li integral, Simpson's rule on exact integer widths) while the
interval is wide, and counts exactly with primality tests once it holds ≤ 10^last numbers. Its TV
distance to the exact distribution is computed by enumeration (`approximation_tv`), not assumed.
"""

from __future__ import annotations

import math
import time

import numpy as np
import sympy
import torch

from nextk.errors import TooLargeError
from nextk.lm import make_generator
from nextk.sources.numbers import MAX_SIEVE_DIGITS, primes_below


def density_count(lo: int, hi: int) -> float:
    """∫_lo^hi dx / ln x by Simpson's rule (the li-integral density): exact width, no cancellation."""
    if hi <= lo:
        return 0.0
    lo_f, hi_f = max(float(lo), 2.0), float(hi)
    mid = (lo_f + hi_f) / 2
    return (hi - lo) * (1 / math.log(lo_f) + 4 / math.log(mid) + 1 / math.log(hi_f)) / 6


_SIEVES: dict[int, np.ndarray] = {}  # limit → primes below it, shared by every ExactCounter


def sieved_primes(x: int) -> np.ndarray:
    """Primes below the smallest power of ten above x (≤ 10^8), computed once per power."""
    limit = 10 ** max(len(str(x)), 1)
    if limit not in _SIEVES:
        _SIEVES[limit] = primes_below(limit)
    return _SIEVES[limit]


class ExactCounter:
    """Exact number of primes in [lo, hi): a sieve below 10^8, sympy.primepi above (slow for large x)."""

    name = "exact"

    def pi(self, x: int) -> int:
        if x < 2:
            return 0
        if x < 10**MAX_SIEVE_DIGITS:
            return int(np.searchsorted(sieved_primes(x), x, side="right"))
        return int(sympy.primepi(x))

    def count(self, lo: int, hi: int) -> float:
        return float(self.pi(hi - 1) - self.pi(lo - 1)) if hi > lo else 0.0


class ApproxCounter:
    """The note's approximation: density integral for wide intervals, primality tests for the last
    `last` digits (intervals of at most 10^last numbers)."""

    def __init__(self, last: int = 2):
        self.last, self.name = last, f"li-density + exact last {last}"

    def count(self, lo: int, hi: int) -> float:
        if hi - lo <= 10**self.last:
            return float(sum(1 for v in range(lo, hi) if sympy.isprime(v)))
        return density_count(lo, hi)


def draw_prime(digits: int, counter, g: torch.Generator, max_restarts: int = 100) -> int:
    """A d-digit prime written digit by digit, each digit ∝ counter.count of its interval. An
    approximate counter can lead into an interval with no prime; the draw then restarts."""
    lo_all = 10 ** (digits - 1)
    for _ in range(max_restarts):
        value = 0
        for t in range(digits):
            scale = 10 ** (digits - 1 - t)
            w = np.array(
                [counter.count(max((value * 10 + v) * scale, lo_all), (value * 10 + v + 1) * scale) for v in range(10)]
            )
            if w.sum() <= 0:
                break  # dead end: restart
            u = torch.rand(1, generator=g, dtype=torch.float64).item() * w.sum()
            value = value * 10 + int(min(np.searchsorted(np.cumsum(w), u, side="right"), 9))
        else:
            return value
    raise RuntimeError(f"no {digits}-digit prime reached after {max_restarts} restarts")


def approximation_tv(digits: int, last: int = 2) -> dict:
    """Exact TV between the uniform d-digit prime and the approximate sampler's distribution (with
    restarts, i.e. renormalised over primes), by enumerating every prefix (d ≤ 7)."""
    if digits > 7:
        raise TooLargeError(f"exact TV enumerates 10^{digits} prefixes; the limit is 7 digits")
    primes = primes_below(10**digits)
    primes = primes[primes >= 10 ** (digits - 1)]
    is_prime = np.zeros(10**digits + 1, dtype=np.int64)
    is_prime[primes] = 1
    cum = np.concatenate([[0], np.cumsum(is_prime)])  # exact counts by prefix sums
    log_q = np.zeros(len(primes))
    for t in range(digits):
        r = digits - 1 - t
        width = 10**r
        starts = np.arange(10 ** (t + 1), dtype=np.int64) * width  # every (prefix, v) interval start
        lo = np.maximum(starts, 10 ** (digits - 1))
        hi = starts + width
        if width <= 10**last:
            w = (cum[np.minimum(hi, len(cum) - 1)] - cum[np.minimum(lo, len(cum) - 1)]).astype(float)
        else:
            lo_f, hi_f = np.maximum(lo, 2).astype(float), hi.astype(float)
            simpson = (1 / np.log(lo_f) + 4 / np.log((lo_f + hi_f) / 2) + 1 / np.log(hi_f)) / 6
            w = np.where(hi > lo, (hi - lo) * simpson, 0)
        w = w.reshape(-1, 10)
        cond = w / np.where(w.sum(1, keepdims=True) > 0, w.sum(1, keepdims=True), 1)
        node = primes // (10 ** (r + 1))
        digit = (primes // 10**r) % 10
        log_q += np.log(cond[node, digit])
    q = np.exp(log_q)
    q /= q.sum()  # restarts renormalise over the primes reached
    p = 1.0 / len(primes)
    return {"digits": digits, "last": last, "tv": float(0.5 * np.abs(q - p).sum()), "primes": int(len(primes))}


def prime_costs(digits: list[int], budget_s: float, last: int = 2, seed: int = 0, log=print) -> list[dict]:
    """Seconds per sample of the exact oracle (sieve range only) and of the approximation, per d."""
    rows = []
    exact, approx = ExactCounter(), ApproxCounter(last)
    for d in digits:  # build the sieves outside the timing
        if d <= MAX_SIEVE_DIGITS:
            exact.pi(10**d - 1)
    for d in digits:
        row = {"digits": d}
        for name, counter in (("exact", exact), ("approx", approx)):
            if name == "exact" and d > MAX_SIEVE_DIGITS:
                row[name] = None  # sympy.primepi beyond 10^8: about 1 s per call at 10^10, 30 s at 10^12
                continue
            g, times, t_start = make_generator(seed), [], time.perf_counter()
            while len(times) < 3 or time.perf_counter() - t_start < budget_s / (2 * len(digits)):
                t0 = time.perf_counter()
                draw_prime(d, counter, g)
                times.append(time.perf_counter() - t0)
            row[name] = float(np.mean(times))
        if d <= 7:
            row["tv"] = approximation_tv(d, last)["tv"]
        rows.append(row)
        log(
            f"  primes d={d:2d}: exact {row['exact'] or float('nan'):.2e} s, approx {row['approx']:.2e} s"
            + (f", TV {row['tv']:.4f}" if "tv" in row else "")
        )
    return rows
