"""Lemma 12 / Theorem 2 for the constructed boosted RNN: the bit budget and the output error it buys
(docs/theory.md §9.7, re-derived for this construction; the paper's own formulas were lost).

Premise (Lemma 12): q and d are RNNs whose node values are exactly representable in their own
formats; the boosted RNN keeps those formats on the copies of R and D (so the copies reproduce q and
d exactly, Claim 10's "no error before r") and stores the new nodes (counters, pacc, E, I, N, Z, o) in
(I', F'). Q rounds toward zero, so every stored positive value only shrinks. With δ = 2^−F',
E₊ = max(1, e^η), E₋ = min(1, e^η) and ρ the smallest conditional of q:

- Claim 9 (integer bits): every new node is bounded by M = max(V^k + 1, k, τ_c − 1, n, E₊), so
  I' = ⌈log₂(M + 1)⌉ holds every value without saturation;
- pacc after k factors p_i ≤ 1: pacc − kδ ≤ p̃acc ≤ pacc (Lemma 13's additive form);
- a term P·E·I of N or Z: P·E − (kδ·E + δ) ≤ P̃·Ẽ ≤ P·E, and storing the sum loses < δ more, so with
  S = Σ E over the terms with I = 1 (m of them, S ≥ m·E₋) and every P ≥ ρ^k:
  N − (kδ·S + 2δ·m) ≤ Ñ ≤ N with N ≥ ρ^k·S, i.e. Ñ ≥ (1 − λ)·N for λ = (k + 2/E₋)·δ/ρ^k; Z alike;
- the ratio (Lemma 14's form): Ñ/Z̃ lies in [(1 − λ)·q', q'/(1 − λ)], so |Ñ/Z̃ − q'| ≤ q'·λ/(1 − λ); storing
  o loses < δ. Outside the blocks o = pacc = q exactly (error 0).

Claim 10 (`claim10_bound`): |õ − q'| ≤ λ/(1 − λ) + δ (and ≤ q'·λ/(1 − λ) + δ). Lemma 15 (re-derived):
q' ≥ ρ' = e^{−|η|}·ρ. Lemma 16 (re-derived): if õ ≥ (1 − γ)·q' everywhere, the per-document loss grows
by at most −n·log(1 − γ); keeping half of a gain G needs γ = 1 − exp(−G/(2n)) (`gamma_for_gain`), so
the budget F' is the least F with λ/(1 − λ) + δ/ρ' ≤ γ (`lemma12_bits`).
"""

from __future__ import annotations

import math

import numpy as np

from nextk.errors import InputError


def claim9_int_bits(vocab: int, k: int, tau_c: int, length: int, eta: float) -> int:
    """I' = ⌈log₂(M + 1)⌉, M = max(V^k + 1, k, τ_c − 1, n, max(1, e^η)): no new node saturates."""
    m = max(vocab**k + 1, k, tau_c - 1, length, math.exp(max(eta, 0.0)))
    return max(1, math.ceil(math.log2(m + 1)))


def claim10_lambda(frac_bits: int, k: int, eta: float, rho: float) -> float:
    """λ = (k + 2/E₋)·2^−F'/ρ^k: the relative error of N and Z (module docstring)."""
    if not 0 < rho <= 1:
        raise InputError(f"need 0 < rho ≤ 1, got rho={rho}")
    return (k + 2 * math.exp(max(-eta, 0.0))) * 2.0**-frac_bits / rho**k


def claim10_bound(frac_bits: int, k: int, eta: float, rho: float) -> float:
    """The largest |õ − q'| the construction can show with F' fractional bits: λ/(1 − λ) + 2^−F'
    (inf when λ ≥ 1)."""
    lam = claim10_lambda(frac_bits, k, eta, rho)
    return math.inf if lam >= 1 else lam / (1 - lam) + 2.0**-frac_bits


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
    vocab: int,
    k: int,
    eta: float,
    rho: float,
    gamma: float,
    *,
    tau_c: int,
    length: int,
    min_frac: int = 0,
    max_frac: int = 60,
) -> dict:
    """The bit budget: I' from Claim 9 and the least F' ≥ min_frac (the inputs' own fractional bits) whose
    relative output error λ/(1 − λ) + 2^−F'/ρ' is at most γ. Returns int_bits, frac_bits,
    bit_size = 1 + I' + F', the absolute bound (Claim 10) there, γ and ρ'."""
    if not 0 < gamma < 1:
        raise InputError(f"gamma must be in (0, 1), got {gamma}")
    low = rho_prime(rho, eta)
    ib = claim9_int_bits(vocab, k, tau_c, length, eta)
    for fb in range(min_frac, max_frac + 1):
        lam = claim10_lambda(fb, k, eta, rho)
        if lam < 1 and lam / (1 - lam) + 2.0**-fb / low <= gamma:
            return {
                "int_bits": ib,
                "frac_bits": fb,
                "bit_size": 1 + ib + fb,
                "bound": claim10_bound(fb, k, eta, rho),
                "rho_prime": low,
                "gamma": gamma,
            }
    raise InputError(f"no F' ≤ {max_frac} reaches relative error {gamma:.3g}; ρ = {rho:.3g} is too small")


def measured_int_bits(max_abs: np.ndarray) -> int:
    """Integer bits the run needed: ⌈log₂(max |value| + 1)⌉ over the nodes."""
    return int(max(1, math.ceil(math.log2(float(np.max(max_abs)) + 1))))
