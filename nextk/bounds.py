"""The paper's bounds as functions (THEORY.md §3–5)."""

from __future__ import annotations

import math


def _check(kl: float, k: int, n: int) -> int:
    if not 1 <= k <= n:
        raise ValueError(f"window size k={k} must be between 1 and n={n}")
    return n - k + 1


def theorem3(kl: float, k: int, n: int) -> float:
    """Theorem 3 (THEORY.md §3): |a(d)| ≤ sqrt(k · KL(p̄‖q̄) / (2m)), m = n − k + 1, KL total in nats.
    A negative KL estimate (sampling noise) is clipped at 0."""
    m = _check(kl, k, n)
    return math.sqrt(k * max(kl, 0.0) / (2 * m))


def lemma1_guarantee(alpha: float, k: int, n: int) -> float:
    """Lemma 1 (THEORY.md §4): boosting with advantage α lowers KL by ≥ ⌊m/k⌋ α² / 4 nats."""
    m = _check(0.0, k, n)
    return (m // k) * alpha**2 / 4


def search_delta(eps: float, k: int, n: int) -> float:
    """Stop threshold of Algorithm 1 (THEORY.md §5): δ(ε, k, n) = ⌊m/k⌋ ε² / (4n) per token."""
    m = _check(0.0, k, n)
    return (m // k) * eps**2 / (4 * n)


def search_max_start(eps: float, k: int, n: int, vocab_size: int) -> int:
    """N = ⌈10 · log V / δ⌉ (THEORY.md §5): makes "two sizes suffice" hold with probability ≥ 0.9."""
    delta = search_delta(eps, k, n)
    if delta <= 0:
        raise ValueError(f"δ(ε={eps}, k={k}, n={n}) = 0: need ⌊m/k⌋ ≥ 1 and ε > 0")
    return math.ceil(10 * math.log(vocab_size) / delta)
