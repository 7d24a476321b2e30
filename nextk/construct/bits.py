"""Lemma 12 / Theorem 2 for the constructed boosted RNN: the bit budget and the output error it buys
(docs/theory.md §9.7, re-derived for this construction; the paper's own formulas were lost).

Premise (Lemma 12): q and d are RNNs whose node values are exactly representable in their own
formats; the boosted RNN keeps those formats on the copies of R and D (so the copies reproduce q and
d exactly, Claim 10's "no error before r") and stores the new nodes (counters, pacc, E, I, N, Z, o) in
(I', F'). With δ = 2^−F', E₊ = max(1, e^η), E₋ = min(1, e^η), c = k·E₊ + 2 and j the depth in the block:

- Claim 9 (integer bits): every new node is bounded by M = max(V^k + 1, k, τ_c − 1, n, E₊), so
  I' = ⌈log₂(M + 1)⌉ holds every value without saturation;
- pacc: |p̃acc − pacc| ≤ kδ (k roundings of a product of factors ≤ 1, Lemma 13's additive form);
- N, Z: each accumulated term pacc·E·I has error ≤ (kE₊ + 1)δ, each stored sum one more δ; only the
  V^{k−j−1} (for N) and V^{k−j} (for Z) terms with I = 1 change them, so
  ε_N ≤ V^{k−j−1}·c·δ and ε_Z ≤ V^{k−j}·c·δ;
- the ratio (Lemma 14's form): |Ñ/Z̃ − N/Z| ≤ (ε_N + ε_Z)/(Z_min − ε_Z) with Z ≥ Z_min = E₋·ρ^j·σ^{k−j}
  (ρ: the smallest conditional of q; σ: the smallest row sum Σ_v q(v | ·), 1 for a normalised q),
  plus δ for storing o. Outside the blocks o = pacc = q exactly (error 0).

Claim 10 (`claim10_bound`) is the maximum of that over j. Lemma 15 (re-derived): q' ≥ ρ' = e^{−|η|}ρ.
Lemma 16 (re-derived): if õ ≥ (1 − γ)q' everywhere, the per-document loss grows by at most −n·log(1 − γ);
keeping half of Lemma 1's gain G needs γ = 1 − exp(−G/(2n)) (`gamma_for_gain`), hence the budget
F' = the least F with claim10_bound(F) ≤ γ·ρ' (`lemma12_bits`).
"""

from __future__ import annotations

import math

import numpy as np

from nextk.errors import InputError


def claim9_int_bits(vocab: int, k: int, tau_c: int, length: int, eta: float) -> int:
    """I' = ⌈log₂(M + 1)⌉, M = max(V^k + 1, k, τ_c − 1, n, max(1, e^η)): no new node saturates."""
    m = max(vocab**k + 1, k, tau_c - 1, length, math.exp(max(eta, 0.0)))
    return max(1, math.ceil(math.log2(m + 1)))


def claim10_bound(
    frac_bits: int, vocab: int, k: int, eta: float, rho: float, sigma: float = 1.0, depths=None
) -> float:
    """The largest |õ − q'| the construction can show with F' fractional bits (see the module
    docstring); `depths`: the block depths j that occur (default 0 … k−1). inf when Z_min ≤ ε_Z."""
    if not (0 < rho <= 1 and 0 < sigma):
        raise InputError(f"need 0 < rho ≤ 1 and sigma > 0, got rho={rho}, sigma={sigma}")
    delta = 2.0**-frac_bits
    e_hi, e_lo = math.exp(max(eta, 0.0)), math.exp(min(eta, 0.0))
    c = k * e_hi + 2
    worst = 0.0
    for j in range(k) if depths is None else depths:
        eps_n, eps_z = vocab ** (k - j - 1) * c * delta, vocab ** (k - j) * c * delta
        z_min = e_lo * rho**j * sigma ** (k - j)
        if z_min <= eps_z:
            return math.inf
        worst = max(worst, (eps_n + eps_z) / (z_min - eps_z) + delta)
    return worst


def rho_prime(rho: float, eta: float) -> float:
    """Lemma 15 (re-derived): every boosted conditional is at least e^{−|η|}·ρ."""
    return math.exp(-abs(eta)) * rho


def gamma_for_gain(gain: float, length: int) -> float:
    """Lemma 16 (re-derived): the relative output error γ that costs at most half of a per-document
    gain G: n·(−log(1 − γ)) = G/2."""
    if gain <= 0:
        raise InputError(f"the boosting gain must be positive to budget bits, got {gain}")
    return -math.expm1(-gain / (2 * length))


def lemma12_bits(
    vocab: int, k: int, eta: float, rho: float, gamma: float, *, tau_c: int, length: int,
    sigma: float = 1.0, min_frac: int = 0, max_frac: int = 50,
) -> dict:
    """The bit budget: I' from Claim 9 and the least F' ≥ min_frac (the inputs' own fractional bits)
    with claim10_bound(F') ≤ γ·ρ'. Returns int_bits, frac_bits, bit_size = 1 + I' + F', the bound,
    the target γ·ρ' and ρ'."""
    if not 0 < gamma < 1:
        raise InputError(f"gamma must be in (0, 1), got {gamma}")
    target = gamma * rho_prime(rho, eta)
    ib = claim9_int_bits(vocab, k, tau_c, length, eta)
    for fb in range(min_frac, max_frac + 1):
        bound = claim10_bound(fb, vocab, k, eta, rho, sigma)
        if bound <= target:
            return {"int_bits": ib, "frac_bits": fb, "bit_size": 1 + ib + fb, "bound": bound,
                    "target": target, "rho_prime": rho_prime(rho, eta), "gamma": gamma}
    raise InputError(f"no F' ≤ {max_frac} reaches the error target {target:.3g}; ρ = {rho:.3g} is too small")


def measured_int_bits(max_abs: np.ndarray) -> int:
    """Integer bits the run needed: ⌈log₂(max |value| + 1)⌉ over the nodes."""
    return int(max(1, math.ceil(math.log2(float(np.max(max_abs)) + 1))))
