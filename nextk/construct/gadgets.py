"""Appendix C (Lemma 18) building blocks and Claim 1's counters, as transition functions
(docs/theory.md §9.2). Every gadget returns a `Lin` built from ReLU, product and reciprocal only.

Values such as counters, digits, tokens and bits live on a grid of spacing ε (ε = 1 for integers;
the paper's "machine precision" for fixed point, ε = 2^−F). On that grid

    1[x ≥ c] = (ReLU(x − c + ε) − ReLU(x − c)) / ε          (two ReLUs; exact on the grid)
    1[x = c] = 1[x ≥ c] − 1[x ≥ c + ε]                      (three distinct ReLUs: a hat)

and everything else is composed from them: if-else (two products), Boolean AND/OR of bits as one
threshold of their sum, base-b increment of k digits (Lemma 18.4), e^{η·d} of a bit d (affine).
"""

from __future__ import annotations

import math

from nextk.construct.expr import Lin, const, lin, relu


def ge(x, c: float, eps: float = 1.0) -> Lin:
    """1[x ≥ c] for x on the ε-grid (Lemma 18.1)."""
    x = lin(x)
    return (relu(x - c + eps) - relu(x - c)) / eps


def le(x, c: float, eps: float = 1.0) -> Lin:
    """1[x ≤ c] for x on the ε-grid."""
    return ge(-lin(x), -c, eps)


def eq(x, c: float, eps: float = 1.0) -> Lin:
    """1[x = c] for x on the ε-grid (Lemma 18.1)."""
    return ge(x, c, eps) - ge(x, c + eps, eps)


def equal(x, y, eps: float = 1.0) -> Lin:
    """1[x = y] for two variables on the ε-grid (Lemma 18.1, indicator of equality)."""
    return eq(lin(x) - lin(y), 0.0, eps)


def if_else(cond, a, b) -> Lin:
    """a if cond = 1 else b, for an indicator cond ∈ {0, 1} (Lemma 18.2): cond·a + (1 − cond)·b."""
    cond = lin(cond)
    return cond * lin(a) + (1 - cond) * lin(b)


def AND(*bits) -> Lin:
    """1[all bits are 1] = 1[Σ b ≥ m] (Lemma 18.3); 1 for no bits."""
    if not bits:
        return const(1.0)
    return ge(sum((lin(b) for b in bits), const(0.0)), len(bits))


def OR(*bits) -> Lin:
    """1[some bit is 1] = 1[Σ b ≥ 1] (Lemma 18.3); 0 for no bits."""
    if not bits:
        return const(0.0)
    return ge(sum((lin(b) for b in bits), const(0.0)), 1)


def NOT(bit) -> Lin:
    """1 − b (Lemma 18.3)."""
    return 1 - lin(bit)


def increment(digits, base: int, when=1) -> list[Lin]:
    """Lemma 18.4: the next values of k base-`base` digits (digits[0] most significant) when `when`
    = 1, the same digits when 0; (b−1 … b−1) wraps to (0 … 0). Digit i gains the carry
    AND(when, d_j = b−1 for all j > i) and loses b when it is itself b−1 and receives the carry."""
    digits = [lin(d) for d in digits]
    k, top = len(digits), base - 1
    full = [eq(d, top) for d in digits]
    out = []
    for i in range(k):
        carry_in = AND(when, *full[i + 1 :])
        carry_out = AND(when, *full[i:])
        out.append(digits[i] + carry_in - base * carry_out)
    return out


def exp_bit(bit, eta: float) -> Lin:
    """Lemma 18.5: e^{η·d} for a bit d ∈ {0, 1} is the affine map 1 + (e^η − 1)·d."""
    return 1 + math.expm1(eta) * lin(bit)


def counter_next(c, modulus: int, inc=1) -> Lin:
    """Claim 1's counter: c ← (c + 1) mod M when inc = 1, c otherwise (c an integer in 0..M−1)."""
    if modulus == 1:
        return const(0.0)
    return lin(c) + inc - modulus * AND(inc, eq(c, modulus - 1))


def capped_next(c, cap: int, inc=1) -> Lin:
    """c ← min(c + 1, cap) when inc = 1, c otherwise: a counter that stops at `cap`."""
    return lin(c) + AND(inc, NOT(ge(c, cap)))


def mux(sel, values) -> Lin:
    """values[sel] for an integer selector sel ∈ {0, …, len(values)−1}: Σ_i 1[sel = i]·values[i]."""
    return sum((eq(sel, i) * lin(v) for i, v in enumerate(values)), const(0.0))


def in_range(x, lo: int, hi: int) -> Lin:
    """1[lo ≤ x ≤ hi] for an integer x (the empty range gives 0)."""
    if hi < lo:
        return const(0.0)
    return AND(ge(x, lo), le(x, hi))
