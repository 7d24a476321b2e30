"""The gain of boosting, Δ(r, η) = KL(p̄‖q̄) − KL(p̄‖q̄') (docs/theory.md §4, the KL identity), on documents of p.

    Δ(r, η) = Σ_{s∈S_r} E_{x∼p̄}[ η d(x_{<s}, x_{s:s+k}) − log Z_s(x_{<s}) ],   Z_s = 1 + (e^η − 1) β_s,

with β_s = E_{w∼q(·|x_{<s})} d(x_{<s}, w). `window_statistics` measures D (d on the true windows) and β on
documents; `gain_per_doc` and `gain_derivative` evaluate Δ and Δ' from them (Δ is concave in η: log Z is
convex); `gain_estimate` reports Δ with its interval, lowered for the violations a sample cannot have seen.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from nextk.advantage import judge_all_windows, sample_windows, window_log_probs
from nextk.bounds import check_window
from nextk.errors import MAX_ENUMERATION
from nextk.lm import make_generator, states_along
from nextk.stats import mean_estimate

CONFIDENCE = 0.95  # of the Clopper–Pearson bound on the violation rate a sample without violations allows


def log_z(eta: float | Tensor, beta: Tensor) -> Tensor:
    """log Z = log(1 + (e^η − 1) β) = logaddexp(log(1−β), η + log β), stable for large |η|."""
    eta = torch.as_tensor(eta, dtype=torch.float64)
    return torch.logaddexp(torch.log1p(-beta.clamp(0, 1)), eta + beta.clamp(0, 1).log())


def window_statistics(
    p, q, d, k: int, x: Tensor, num_windows: int = 256, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, str]:
    """For documents x (N, n) from p and every start s < m: D[:, s] = d on the true window and
    β[:, s] = E_{w∼q(·|x_{<s})} d(x_{<s}, w) — exact by window enumeration when N·V^k fits the budget,
    otherwise a mean over `num_windows` sampled windows. Returns (D, β, how β was computed)."""
    m = check_window(k, p.length)
    v = q.vocab_size
    with torch.no_grad():
        states = states_along(q, x[:, : m - 1])
    D = torch.stack([d(x[:, : s + k], s, k).double() for s in range(m)], dim=1)
    if sampled_windows(x.shape[0], v, k, num_windows) is None:
        beta = [
            (window_log_probs(q, states[s], k).exp() * judge_all_windows(d, x[:, :s], s, k, v)).sum(1) for s in range(m)
        ]
        how = "exact E_q d (window enumeration)"
    else:
        g = make_generator(generator)
        beta = []
        for s in range(m):
            w = sample_windows(q, states[s].repeat(num_windows), k, g)
            dd = d(torch.cat([x[:, :s].repeat_interleave(num_windows, 0), w], 1), s, k).double()
            beta.append(dd.reshape(-1, num_windows).mean(1))
        how = f"E_q d from {num_windows} sampled windows per prefix (V^k too large to enumerate)"
    return D, torch.stack(beta, dim=1).clamp(0, 1), how


def sampled_windows(num_docs: int, vocab: int, k: int, num_windows: int = 256) -> int | None:
    """How many sampled windows per prefix `window_statistics` uses for β, or None when β is exact (N·V^k
    windows fit the enumeration budget)."""
    return None if num_docs * vocab**k <= MAX_ENUMERATION else num_windows


def selection_beta(beta: Tensor, windows: int | None) -> Tensor:
    """β for choosing η: a sampled β̂ = 0 (no d = 1 among `windows` q windows) is "not seen", not
    "impossible", so it becomes its one-sided Clopper–Pearson upper bound ε = 1 − 0.05^{1/W} (and β̂ = 1
    becomes 1 − ε). Exact β (windows None) is kept as is."""
    if windows is None:
        return beta
    eps = violation_bound(windows)
    return torch.where(beta <= 0, eps, torch.where(beta >= 1, 1 - eps, beta))


def log_z_bias_bound_sampled(eta: float, windows: int) -> float:
    """The most log Ẑ = log(1 + (e^η − 1) β̂), β̂ = K/W from W sampled windows, can fall short of log Z in
    expectation (log is concave: Δ̂ is biased high), per block: `nextk.smc.log_z_bias_bound`."""
    from nextk.smc import log_z_bias_bound

    return log_z_bias_bound(eta, windows)


def gain_per_doc(eta: float, D: Tensor, beta: Tensor, blocks: list[int]) -> Tensor:
    """Δ per document: Σ_{s∈S_r} [η d(x_{<s}, x_{s:s+k}) − log Z_s(x_{<s})] (docs/theory.md §4). At η = +∞
    the limit Σ_s [log 1[d = 1] − log β_s] (−∞ for a document whose true window d rejects), at η = −∞
    Σ_s [log 1[d = 0] − log(1 − β_s)]."""
    D, beta = D[:, blocks], beta[:, blocks]
    if math.isfinite(eta):
        return (eta * D - log_z(eta, beta)).sum(1)
    keep, mass = (D > 0, beta) if eta > 0 else (D <= 0, 1 - beta)
    return torch.where(keep, -mass.clamp(0, 1).log(), -math.inf).sum(1)


def gain_derivative(eta: float, D: Tensor, beta: Tensor, blocks: list[int]) -> float:
    """Δ'(η) of the mean gain: mean over documents of Σ_s [D_s − β_s e^η / Z_s] — decreasing in η (Δ is
    concave), so its root is the maximum."""
    D, beta = D[:, blocks], beta[:, blocks].clamp(0, 1)
    tilted = torch.exp(eta + beta.log() - log_z(eta, beta))  # β e^η / Z: q's mass on d = 1 after tilting
    return (D - tilted).sum(1).mean().item()


def violation_bound(num: int, confidence: float = CONFIDENCE) -> float:
    """The one-sided Clopper–Pearson upper bound on a rate after 0 events in `num` trials: 1 − (1 − c)^{1/num}."""
    return 1 - (1 - confidence) ** (1 / num)


def gain_estimate(
    eta: float,
    D: Tensor,
    beta: Tensor,
    blocks: list[int],
    method: str,
    proven: bool = False,
    windows: int | None = None,
) -> dict:
    """Δ at η on documents (D, β) with its interval; a limit that some document makes −∞ (d rejects its
    true window, so the conditioned model gives it probability 0) is reported as −∞ with that count.

    Unless `proven` (P_p of the unseen side is 0), a block on which no document shows the side that η
    penalises (d = 0 for η > 0, d = 1 for η < 0) may still have it at a rate up to ε = violation_bound(N),
    each costing |η|: the interval's low end is lowered by |η| Σ_s ε_s over those blocks. An infinite η
    without a proof has low end −∞ (one unseen violating document makes KL(p̄‖q̄') infinite).

    `windows`: β was estimated from that many sampled q windows per prefix (None: exact). log Ẑ is then
    biased low (Jensen), so Δ̂ is biased high by at most |S_r| · log_z_bias_bound(η, W): the low end is
    lowered by that (and is −∞ at η = ±∞, where log β̂ can be −∞)."""
    per = gain_per_doc(eta, D, beta, blocks)
    bad = int(torch.isneginf(per).sum())
    if bad:
        out = {"value": None, "stderr": None, "low": None, "high": None, "n": len(per), "method": method}
        return {**out, "documents_with_zero_probability": bad}
    est = mean_estimate(per, method)
    low, notes = est.low, []
    side = 0 if eta > 0 else 1
    if not math.isfinite(eta):
        if not proven:
            low = -math.inf
            notes.append(
                f"low end −∞: η = {'+' if eta > 0 else '−'}∞ but P_p(d = {side}) = 0 is not proven, and one document "
                f"with d = {side} in a block has probability 0 under q' (KL(p̄‖q̄') = ∞)"
            )
        if windows is not None:
            low = -math.inf
            notes.append(f"low end −∞: at η = ±∞, log β̂ from {windows} sampled windows has an unbounded bias")
    elif eta != 0:
        Db = D[:, blocks]
        unseen = 0 if proven else int(((Db > 0) if eta > 0 else (Db <= 0)).all(0).sum())  # no penalised window seen
        if unseen:
            shift = abs(eta) * unseen * violation_bound(len(per))
            low -= shift
            notes.append(
                f"low end lowered by |η|·Σε = {shift:.4g} for {unseen} block(s) where no document showed d = {side} "
                f"(rate ≤ ε = {violation_bound(len(per)):.3g}, Clopper–Pearson {CONFIDENCE:.0%})"
            )
        if windows is not None:
            bias = len(blocks) * log_z_bias_bound_sampled(eta, windows)
            low -= bias
            notes.append(
                f"β sampled ({windows} windows per prefix): log Ẑ is biased low, so Δ̂ high by at most {bias:.4g} "
                f"(|S_r| = {len(blocks)} × the exact binomial bound at W = {windows}); low end lowered by it"
            )
    if not notes:
        return est.to_dict()
    return {**est.to_dict(), "low": low, "method": method + "; " + "; ".join(notes)}
