"""Independent references for tests: brute-force enumeration in plain Python/NumPy.

Nothing here calls nextk's estimators, tries or boosting code. Whole-string probabilities of a model
(`q.log_prob`) are the only input taken from the code base; they are tested on their own elsewhere.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch


def strings(v: int, n: int) -> list[tuple[int, ...]]:
    return list(itertools.product(range(v), repeat=n))


def whole_probs(model, v: int, n: int) -> dict[tuple[int, ...], float]:
    """p̄(x) for every x ∈ Σ^n, by the model's whole-string log-probability."""
    xs = strings(v, n)
    lp = model.log_prob(torch.tensor(xs, dtype=torch.long)).double().exp().tolist()
    return dict(zip(xs, lp))


def marginal(probs: dict, prefix: tuple) -> float:
    """Σ of p̄(x) over the strings that begin with `prefix`."""
    t = len(prefix)
    return sum(p for x, p in probs.items() if x[:t] == prefix)


def judge(d, x: tuple, s: int, k: int) -> float:
    return float(d(torch.tensor([x], dtype=torch.long), s, k)[0])


def block_starts(n: int, k: int, offset: int) -> list[int]:
    return list(range(offset, n - k + 1, k))


def boosted_probs(q, d, k: int, offset: int, eta: float, v: int, n: int) -> dict[tuple[int, ...], float]:
    """q̄'(x) = q̄(x) Π_s e^{η d(x_<s, x_s:s+k)} / Z_s(x_<s) with Z_s = Σ_w q(w | x_<s) e^{η d(x_<s, w)},
    every q(w | x_<s) a ratio of sums of q̄ over Σ^n (eq. 1.3 by enumeration)."""
    qbar = whole_probs(q, v, n)
    z_cache: dict[tuple, float] = {}
    out = {}
    for x, px in qbar.items():
        w = px
        for s in block_starts(n, k, offset):
            if x[:s] not in z_cache:
                z_cache[x[:s]] = block_z(qbar, d, x[:s], k, eta, v, n)
            w *= math.exp(eta * judge(d, x, s, k)) / z_cache[x[:s]]
        out[x] = w
    return out


def block_z(qbar: dict, d, pre: tuple, k: int, eta: float, v: int, n: int) -> float:
    """Z_s(x_<s) = Σ_w q(w | x_<s) e^{η d(x_<s, w)}, q(w | x_<s) a ratio of marginals of q̄."""
    base, s = marginal(qbar, pre), len(pre)
    pad = (0,) * (n - s - k)  # d never reads past its window
    return sum(
        marginal(qbar, pre + w) / base * math.exp(eta * judge(d, pre + w + pad, s, k)) for w in strings(v, k)
    )


def conditionals(probs: dict, x: tuple, v: int) -> np.ndarray:
    """(n, V) next-token conditionals along x from a whole-string table: ratios of prefix marginals
    (rows after a zero-probability prefix are NaN: undefined)."""
    n = len(x)
    out = np.full((n, v), np.nan)
    for t in range(n):
        base = marginal(probs, x[:t])
        if base > 0:
            out[t] = [marginal(probs, x[:t] + (c,)) / base for c in range(v)]
    return out


def gain(p, q, d, k: int, offset: int, eta: float, v: int, n: int) -> float:
    """Δ(r, η) = Σ_s E_p[η d(x_<s, x_s:s+k) − log Z_s(x_<s)] by enumerating Σ^n under p̄ and q̄."""
    pbar, qbar = whole_probs(p, v, n), whole_probs(q, v, n)
    total = 0.0
    for x, px in pbar.items():
        if px == 0:
            continue
        for s in block_starts(n, k, offset):
            total += px * (eta * judge(d, x, s, k) - math.log(block_z(qbar, d, x[:s], k, eta, v, n)))
    return total


def advantage_at(p, q, d, k: int, s: int, v: int, n: int) -> float:
    """E_{x∼p̄}[d(x_<s, x_s:s+k) − E_{w∼q(·|x_<s)} d(x_<s, w)] at one start s, by enumeration."""
    pbar, qbar = whole_probs(p, v, n), whole_probs(q, v, n)
    windows = strings(v, k)
    true = sum(px * judge(d, x, s, k) for x, px in pbar.items() if px > 0)
    fake = 0.0
    for pre in strings(v, s):
        pp = marginal(pbar, pre)
        if pp == 0:
            continue
        base = marginal(qbar, pre)
        fake += pp * sum(marginal(qbar, pre + w) / base * judge(d, pre + w + (0,) * (n - s - k), s, k) for w in windows)
    return true - fake
