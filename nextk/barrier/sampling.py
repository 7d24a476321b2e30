"""Sampling cost of the factorization distribution in both orders (docs/theory.md §7; Appendix B).

- non-autoregressive: draw two uniform d-digit primes, multiply, write (any order): cheap.
- autoregressive, factors first: p, then q, then N = p·q, each digit from its exact conditional given
  the visible prefix — only prime counting is needed (polynomial given a prime-counting oracle).
- autoregressive, product first: the digits of N, then the factors. Given the visible N the factor
  digits are determined by the factorisation of N, so the sampler must factor N (sympy.factorint);
  an unsorted source (`Factorization(sorted=False)`) then writes the two factors in a uniformly random
  order (a fair coin when p ≠ q), which is the exact conditional of the first factor given N.
  For d ≤ 4 every digit of N is drawn from its exact conditional (prime-pair counts); beyond that N
  is drawn from its exact marginal by a fresh pair whose factors are discarded — the factoring step,
  which is the barrier, is what is timed.
"""

from __future__ import annotations

import math
import time

import numpy as np
import sympy
import torch

from nextk.barrier.primes import ApproxCounter, ExactCounter
from nextk.lm import make_generator
from nextk.sources.factorization import MAX_EXACT_DIGITS, Factorization
from nextk.sources.numbers import MAX_SIEVE_DIGITS, random_digit_prime


def draw_digits(weight, digits: int, g: torch.Generator) -> int:
    """A d-digit number drawn digit by digit: weight(lo, hi) ≥ 0 is the mass of [lo, hi)."""
    value = 0
    for t in range(digits):
        scale = 10 ** (digits - 1 - t)
        w = np.array([weight((value * 10 + v) * scale, (value * 10 + v + 1) * scale) for v in range(10)], dtype=float)
        u = torch.rand(1, generator=g, dtype=torch.float64).item() * w.sum()
        value = value * 10 + int(min(np.searchsorted(np.cumsum(w), u, side="right"), 9))
    return value


def non_autoregressive(src: Factorization, g: torch.Generator) -> str:
    return src.render(random_digit_prime(src.digits, g), random_digit_prime(src.digits, g))


def factors_first_autoregressive(src: Factorization, g: torch.Generator, counter=None) -> str:
    """The two factors digit by digit, then N = p·q (determined). Sorted source: p = max, then q = min;
    with C(x) the number of d-digit primes below x, P(max ∈ [lo,hi)) ∝ C(hi)² − C(lo)², and
    q | p ∝ 2·[q < p] + [q = p]. Unsorted source: p, then q, independent uniform d-digit primes,
    P(∈ [lo,hi)) ∝ C(hi) − C(lo). `counter` counts primes in an interval: exact (default) or the note's
    approximation."""
    d = src.digits
    counter = counter or ExactCounter()
    base = 10 ** (d - 1)
    c = lambda lo, hi: counter.count(max(lo, base), min(hi, 10**d))  # noqa: E731
    if not src.sorted:
        return src.render(draw_digits(c, d, g), draw_digits(c, d, g))
    p = draw_digits(lambda lo, hi: (lambda n, below: n * (2 * below + n))(c(lo, hi), c(base, lo)), d, g)
    q = draw_digits(lambda lo, hi: 2 * c(lo, min(hi, p)) + (lo <= p < hi), d, g)
    return src.render(p, q)


def product_first_autoregressive(src: Factorization, g: torch.Generator) -> tuple[str, float]:
    """N, then the factors of the visible N. Returns (document, seconds spent factoring)."""
    d = src.digits
    if d <= MAX_EXACT_DIGITS:
        n_text = exact_product_digits(src, g)
    else:
        n_text = str(random_digit_prime(d, g) * random_digit_prime(d, g))  # N's exact marginal
    t0 = time.perf_counter()
    factors = sympy.factorint(int(n_text))
    spent = time.perf_counter() - t0
    primes = sorted((f for f, e in factors.items() for _ in range(e)), reverse=True)
    if len(primes) != 2:
        raise AssertionError(f"{n_text} is not a product of two primes: {factors}")
    if not src.sorted and torch.rand(1, generator=g, dtype=torch.float64).item() < 0.5:
        primes.reverse()  # the note's order: either factor first, probability 1/2 each (p ≠ q)
    return src.render(*primes), spent


def exact_product_digits(src: Factorization, g: torch.Generator) -> str:
    """The digits of N drawn one by one from the source's exact conditionals (d ≤ 4)."""
    state = src.start(1)
    out = []
    while True:
        tok = torch.multinomial(state.log_probs[0].exp(), 1, generator=g)
        ch = src.vocab[int(tok)]
        if not ch.isdigit():
            break
        out.append(ch)
        state, _ = src.step(state, tok)
    return "".join(out)


_EXACT, _APPROX = ExactCounter(), ApproxCounter(2)
SAMPLERS = {
    "non_autoregressive": non_autoregressive,
    "autoregressive_factors_first_exact": lambda src, g: factors_first_autoregressive(src, g, _EXACT),
    "autoregressive_factors_first_approx": lambda src, g: factors_first_autoregressive(src, g, _APPROX),
    "autoregressive_product_first": lambda src, g: product_first_autoregressive(src, g)[0],
}
MAX_DIGITS = {"autoregressive_factors_first_exact": MAX_SIEVE_DIGITS}  # exact prime counting via the sieve


def time_sampler(name: str, digits: int, budget_s: float, min_samples: int = 3, seed: int = 0) -> dict:
    """Seconds per sample of one sampler at d digits: samples until budget_s is spent (≥ min_samples)."""
    order = "product_first" if name == "autoregressive_product_first" else "factors_first"
    src = Factorization(digits, order=order)
    g = make_generator(seed)
    SAMPLERS[name](src, g)  # warm-up: one-off tables (sieve, prime-pair support) are not per-sample cost
    times = []
    start = time.perf_counter()
    while len(times) < min_samples or time.perf_counter() - start < budget_s / 4:
        t0 = time.perf_counter()
        SAMPLERS[name](src, g)
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget_s:
            break
    arr = np.array(times)
    return {
        "sampler": name,
        "digits": digits,
        "samples": len(arr),
        "seconds_per_sample": float(arr.mean()),
        "stderr": float(arr.std(ddof=1) / math.sqrt(len(arr))) if len(arr) > 1 else None,
    }


def fit_growth(rows: list[dict]) -> dict:
    """Least-squares fits of seconds per sample against d: exponential (log10 s = a + b·d, b in decades
    per digit) and polynomial (log s = a + c·log d, c the degree)."""
    if len(rows) < 2:
        return {}
    d = np.array([r["digits"] for r in rows], dtype=float)
    s = np.log10(np.array([r["seconds_per_sample"] for r in rows]))
    b, a = np.polyfit(d, s, 1)
    c, _ = np.polyfit(np.log10(d), s, 1)
    return {"decades_per_digit": float(b), "intercept_log10_s": float(a), "polynomial_degree": float(c)}


def sampling_cost(digits: list[int], budget_s: float, log=print, seed: int = 0) -> dict:
    """Time every sampler for d in `digits`, each with an equal share of budget_s; a sampler stops
    growing d once the next size, extrapolated from the last two, would not fit its share."""
    out = {}
    share = budget_s / len(SAMPLERS)
    for name in SAMPLERS:
        rows, spent = [], 0.0
        for d in digits:
            if d > MAX_DIGITS.get(name, 10**9):
                break
            if len(rows) >= 2:
                a, b = rows[-2], rows[-1]
                ratio = b["seconds_per_sample"] / a["seconds_per_sample"]
                growth = ratio ** ((d - b["digits"]) / (b["digits"] - a["digits"]))
                if 3 * b["seconds_per_sample"] * max(growth, 1.0) > share - spent:
                    log(f"  {name}: stopping before d={d} (time budget)")
                    break
            t0 = time.perf_counter()
            row = time_sampler(name, d, (share - spent) / 4, seed=seed)
            spent += time.perf_counter() - t0
            rows.append(row)
            log(f"  {name:36s} d={d:2d}: {row['seconds_per_sample']:.2e} s/sample ({row['samples']} samples)")
        out[name] = {"rows": rows, "fit": fit_growth(rows)}
    return out
