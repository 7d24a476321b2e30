"""The paper's bounds as functions (docs/theory.md §3–5)."""

from __future__ import annotations

import math
import numbers

from nextk.errors import InputError
from nextk.stats import Estimate


def check_window(k: int, n: int) -> int:
    """The one window-size check: 1 ≤ k ≤ n; returns the number of starts m = n − k + 1."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise InputError(f"document length n must be a positive integer, got {n!r}")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= n:
        raise InputError(f"window size k={k} must be between 1 and the document length {n}")
    return n - k + 1


def theorem3(kl: float | Estimate, k: int, n: int) -> float | Estimate:
    """Theorem 3 (docs/theory.md §3): |a(d)| ≤ sqrt(k · KL(p̄‖q̄) / (2m)), m = n − k + 1, KL per document in
    nats. A negative KL estimate (sampling noise) is clipped at 0. Given an Estimate of the KL (as
    `measure.kl` returns), returns the bound as an Estimate whose interval maps the KL's interval."""
    m = check_window(k, n)
    check_real("KL", kl)
    if isinstance(kl, Estimate):
        return kl.map(lambda v: math.sqrt(k * max(v, 0.0) / (2 * m)), method=f"theorem 3 at the KL ({kl.method})")
    return math.sqrt(k * max(kl, 0.0) / (2 * m))


def check_real(name: str, value) -> None:
    """A bound's real argument must be a number (or an Estimate of one), not NaN."""
    if isinstance(value, Estimate):
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:
        raise InputError(f"{name} must be a number, got {value!r}")


def blocks_lower(k: int, n: int) -> int:
    """max(1, ⌊m/k⌋), m = n − k + 1 (docs/theory.md §4): the number of blocks the Lemma 1 bound counts. The
    paper writes ⌊m/k⌋, which is 0 when m < k (k > (n+1)/2); every offset r < m still has a block there,
    so the bound holds with 1 and a zero guarantee is never reported."""
    m = check_window(k, n)
    return max(1, m // k)


def lemma1_guarantee(alpha: float, k: int, n: int) -> float:
    """Lemma 1 (docs/theory.md §4): boosting with advantage α lowers KL by ≥ max(1, ⌊m/k⌋) · α² / 4 nats
    (the paper's ⌊m/k⌋ α²/4, which is 0 for k > (n+1)/2, with the floor at one block)."""
    check_real("alpha", alpha)
    return blocks_lower(k, n) * alpha**2 / 4


def lemma1_guarantee_tight(alpha: float, k: int, n: int) -> float:
    """The tighter form of Lemma 1 (docs/theory.md §4, Cauchy–Schwarz over offsets): the best offset and
    step lower KL by ≥ m · α² / (4 · min(k, m)) nats, m = n − k + 1; never below lemma1_guarantee."""
    m = check_window(k, n)
    check_real("alpha", alpha)
    return m * alpha**2 / (4 * min(k, m))


def search_delta(eps: float, k: int, n: int) -> float:
    """Stop threshold of Algorithm 1 (docs/theory.md §5): δ(ε, k, n) = max(1, ⌊m/k⌋) · ε² / (4n) per token
    (the paper's ⌊m/k⌋ with the floor at one block, so δ > 0 for every k ≤ n and ε ≠ 0)."""
    check_real("accuracy ε", eps)
    return blocks_lower(k, n) * eps**2 / (4 * n)


def search_max_start(eps: float, k: int, n: int, vocab_size: int) -> int:
    """N = ⌈10 · log V / δ⌉ (docs/theory.md §5): makes "two sizes suffice" hold with probability ≥ 0.9."""
    check_real("accuracy ε", eps)
    if not eps > 0:
        raise InputError(f"accuracy ε must be > 0, got {eps}")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, numbers.Integral) or vocab_size < 1:
        raise InputError(f"vocab_size must be a positive integer, got {vocab_size!r}")
    return math.ceil(10 * math.log(vocab_size) / search_delta(eps, k, n))
