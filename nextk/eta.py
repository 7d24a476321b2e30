"""The choice of the step η (docs/theory.md §4): the maximiser of the concave gain Δ(η) on fitting documents.

The step η is infinite only when that is proven. When d accepts every true window of p in the blocks,
Δ(η) increases without bound in η toward the rejection limit: η → +∞ conditions q's blocks on d = 1, and
Δ∞ = −Σ_s E_p log P_q(d = 1 | x_{<s}). But a finite sample in which d accepted every window does not show
P_p(d = 0) = 0, and one violating document makes the limit's KL infinite. So the limit η = +∞ is taken
only when P_p(d = 0) = 0 on the blocks is proven (`support_proof`): exactly, by enumerating p's support,
or because d is one of p's own checks (a rule every document of p keeps). Otherwise η maximises Δ under
the largest violation rate the sample allows, ε = 1 − 0.05^{1/N} (the one-sided 95% Clopper–Pearson bound
at 0 violations in N documents), per block: a finite step. Symmetrically for η → −∞ when d rejects every
true window. Otherwise the maximum is interior and Δ'(η) = 0 there (`choose_eta`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor

from nextk.errors import MAX_ENUMERATION, InputError, TooLargeError
from nextk.gain import CONFIDENCE, gain_derivative, gain_per_doc, selection_beta, violation_bound
from nextk.measure import support
from nextk.tilted import _judge

ETA_BRACKET = 2.0**20  # the root of Δ'(η) is bracketed by doubling up to this |η| (a finite maximum lies far below)


@dataclass(frozen=True)
class EtaChoice:
    """The step that maximises the mean gain on the fitting documents (`choose_eta`).

    kind: "interior" (a finite η with Δ'(η) = 0 to solver precision), "limit +inf" / "limit -inf" (d
    accepts / rejects every true window and P_p(d = 0) = 0 (resp. 1) is proven: η = ±∞ conditions q on
    d = 1 / d = 0), "guarded +" / "guarded -" (d accepted / rejected every fitting window but that is not
    proven: the finite maximum of Δ(η) − |η| Σ_s ε_s, ε_s the violation rate the sample allows), "given",
    or "flat" (d is constant on the true and on q's windows: Δ ≡ 0, η = 0)."""

    eta: float
    kind: str
    gain: float  # mean Δ per document at η on the fitting documents (the limit Δ±∞ for a limit)
    derivative: float  # Δ'(η) there: ≈ 0 at an interior maximum; 0⁺ approaching a limit
    proof: str | None = None  # how P_p(d = 0) = 0 (resp. 1) was proven, for a limit
    violation_bound: float | None = None  # ε per block, for a guarded step

    def to_dict(self) -> dict:
        return {
            "eta": self.eta if math.isfinite(self.eta) else None,
            "kind": self.kind,
            "gain_fit": self.gain if math.isfinite(self.gain) else None,
            "derivative_fit": self.derivative,
            "proof": self.proof,
            "violation_bound": self.violation_bound,
        }


def support_proof(
    p, d, k: int, blocks: list[int], side: int, budget: int = MAX_ENUMERATION, cache: dict | None = None
) -> str | None:
    """How P_p(d = 0 on some block of `blocks`) = 0 (side +1; for side −1: d = 1) is proven, or None:
    d is one of p's own checks (side +1 only: a rule every document of p keeps), or the exact enumeration
    of p's support (within `budget` strings) finds no document of positive probability with a violation.
    `cache`: a dict kept across calls for one p, so its support is enumerated once."""
    if side > 0:
        for name, check in (getattr(p, "checks", None) or {}).items():
            if check is d:
                return f"d is p.checks[{name!r}], a rule every document of p keeps"
    if not getattr(p, "exact", False):
        return None
    cache = {} if cache is None else cache
    if "support" not in cache:
        try:
            cache["support"] = support(p, budget)[0]
        except TooLargeError:
            cache["support"] = None
    x = cache["support"]
    if x is None:
        return None
    for s in blocks:
        dd = _judge(d, x[:, : s + k], s, k)
        if bool(((dd == 0) if side > 0 else (dd != 0)).any()):
            return None
    return f"exact enumeration of p's support ({len(x):,} documents): d = {1 if side > 0 else 0} on every block"


def choose_eta(
    D: Tensor, beta: Tensor, blocks: list[int], proof: str | None = None, windows: int | None = None
) -> EtaChoice:
    """argmax_η of the mean gain (a 1-D concave maximisation, log Z convex in η), by the root of its slope
    (bracketed by doubling, Brent's method). When d accepts (rejects) every true window, Δ'(η) > 0 (< 0)
    for every finite η: with `proof` (that P_p(d = 0) = 0, resp. 1; `support_proof`) the choice is the
    limit η = ±∞ with Δ±∞; without it, the maximum of Δ(η) − |η| Σ_s ε_s with ε_s = violation_bound(N)
    per block, which is finite ("guarded").

    `windows`: β was estimated from that many sampled q windows per prefix (None: exact). A sampled β̂ = 0
    or 1 is replaced by its Clopper–Pearson bound (`selection_beta`), so the slope turns negative at a
    finite η. Only an exact β = 0 where d = 1 on a true window (q gives a document of p probability 0,
    KL(p̄‖q̄) = ∞) leaves no finite maximum: that is refused by name, never answered with η = ±∞."""
    from scipy.optimize import brentq

    beta = selection_beta(beta, windows)
    Db, bb = D[:, blocks], beta[:, blocks]
    penalty = 0.0
    guarded = None
    if bool((Db > 0).all()) or bool((Db <= 0).all()):
        up = bool((Db > 0).all())
        if bool(((bb >= 1) if up else (bb <= 0)).all()):  # q agrees with p about d everywhere: Δ ≡ 0
            return EtaChoice(0.0, "flat", 0.0, 0.0)
        if proof is not None:
            eta = math.inf if up else -math.inf
            gain = gain_per_doc(eta, D, beta, blocks).mean().item()
            return EtaChoice(eta, f"limit {'+' if up else '-'}inf", gain, 0.0, proof=proof)
        guarded = violation_bound(D.shape[0])
        penalty = (1.0 if up else -1.0) * guarded * len(blocks)  # d Σ_s ε_s |η| / dη on the side of the limit
    slope = lambda e: gain_derivative(e, D, beta, blocks) - penalty  # noqa: E731
    kind = "interior" if guarded is None else f"guarded {'+' if penalty > 0 else '-'}"
    s0 = slope(0.0)
    if s0 == 0:
        return EtaChoice(0.0, kind, 0.0, 0.0, violation_bound=guarded)
    sign = 1.0 if s0 > 0 else -1.0
    lo, hi = 0.0, sign
    while slope(hi) * sign > 0:
        if abs(hi) >= ETA_BRACKET:  # only when exact β gives d's side zero mass where p's true window has it
            side = 1 if sign > 0 else 0
            zero = (bb <= 0) & (Db > 0) if sign > 0 else (bb >= 1) & (Db <= 0)
            raise InputError(
                f"choose_eta: Δ'(η) stays {'positive' if sign > 0 else 'negative'} past |η| = {ETA_BRACKET:g}: q gives "
                f"d = {side} no mass (exact E_q d = {1 - side}) on {int(zero.sum())} block(s) where a fitting "
                f"document's true window has d = {side}, so q gives that document probability 0 (KL(p̄‖q̄) = ∞) and "
                "no finite step maximises Δ; η = ±∞ is not proven safe (P_p of the other side is not shown 0)"
            )
        lo, hi = hi, 2 * hi
    eta = brentq(slope, min(lo, hi), max(lo, hi), xtol=1e-12, rtol=1e-12)
    gain = gain_per_doc(eta, D, beta, blocks).mean().item() - abs(eta * penalty)
    return EtaChoice(float(eta), kind, gain, slope(eta), violation_bound=guarded)


def best_eta(D: Tensor, beta: Tensor, blocks: list[int]) -> float:
    """The η of `choose_eta` (±inf for a limit)."""
    return choose_eta(D, beta, blocks).eta


def eta_note(choice: EtaChoice) -> str:
    """One sentence on the step chosen, computed from the choice."""
    if choice.kind.startswith("limit"):
        side = "1" if choice.eta > 0 else "0"
        verb = "accepts" if choice.eta > 0 else "rejects"
        return (
            f"d {verb} every true window of p, proven ({choice.proof}), so Δ(η) increases without bound in |η| "
            f"toward the rejection limit η = {'+' if choice.eta > 0 else '−'}∞: q's blocks conditioned on d = {side}, "
            f"Δ∞ = −Σ_s E_p log P_q(d = {side} | x_<s) = {choice.gain:.4f} nats on the fitting documents"
        )
    if choice.kind.startswith("guarded"):
        verb, side = ("accepted", "0") if choice.kind.endswith("+") else ("rejected", "1")
        return (
            f"d {verb} every true window of the fitting documents, but P_p(d = {side}) = 0 is not proven (d is "
            f"not one of p's checks, and p's support could not be enumerated or has documents with d = {side}): "
            f"η = {choice.eta:.4g} maximises Δ under the largest violation rate the sample allows, "
            f"ε = {choice.violation_bound:.3g} per block (Clopper–Pearson {CONFIDENCE:.0%}), "
            f"Δ = {choice.gain:.4f} nats on the fitting documents"
        )
    if choice.kind == "flat":
        return "d takes one value on every true and every model window: Δ ≡ 0, η = 0"
    if choice.kind == "given" and not math.isfinite(choice.eta):
        side, sign = ("0", "+") if choice.eta > 0 else ("1", "−")
        if choice.proof is not None:
            return f"η = {sign}∞ was given; P_p(d = {side}) = 0 on the blocks is proven ({choice.proof})"
        return (
            f"η = {sign}∞ was given, but P_p(d = {side}) = 0 on the blocks is not proven (d is not one of p's checks "
            f"and p's support could not be enumerated or has documents with d = {side}): one such document has "
            "probability 0 under q', so the held-out interval of Δ has low end −∞"
        )
    if choice.kind == "given":
        return f"η = {choice.eta:.4g} was given (Δ'(η) = {choice.derivative:+.2e} on the fitting documents)"
    return f"interior maximum: η = {choice.eta:.4g} with Δ'(η) = {choice.derivative:+.2e} on the fitting documents"
