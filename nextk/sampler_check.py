"""Is a sampler of a boosted model right? `check_sampler` compares its draws with the exact law.

The exact law of short documents comes from the model's own conditionals: `nextk.measure.support`
expands the prefix trie of q̄' (docs/theory.md §4, eqs. 1.3–1.5) and keeps every document of positive
probability. Against it the sampler's `num` documents are tested two ways:

- Pearson's χ² on the documents of the support (cells whose expected count is below `min_expected` are
  pooled into one, and that one into the smallest other cell if it is still below), dof = cells − 1.
  A sampled document outside the support (probability 0 under q̄') fails at once: χ² = ∞, p = 0.
- The total variation TV(sampled law, q̄') on the same cells (plus one cell for documents outside the
  support), estimated by the plug-in ½ Σ |p̂ − p|, with an interval that holds for any sampler: by
  Weissman et al. (2003), P(‖p̂ − p_s‖₁ ≥ ε) ≤ (2^K − 2) e^{−num ε² / 2} over K cells, so with
  probability 0.95 the sampler's TV lies within ε/2 of the plug-in, ε = √(2 (K ln 2 + ln 20) / num).
  With pooled cells this is the TV of the coarsened laws, a lower bound on the full TV.

A sampler is any callable `sampler(num, generator) -> LongTensor (num, length)`, e.g.
`lambda n, g: boosted.sample(n, generator=g)` or `lambda n, g: smc_sample(boosted, n, seed=g).samples`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from nextk.errors import MAX_ENUMERATION, InputError
from nextk.lm import make_generator
from nextk.measure import support
from nextk.stats import Z95, Estimate


@dataclass(frozen=True)
class SamplerCheck:
    """A sampler against the exact law: Pearson's χ² (statistic, dof, p-value), the TV estimate with its
    interval (an Estimate), the sample count, how many draws fell outside the support, and the method."""

    p_value: float
    chi2: float
    dof: int
    tv: Estimate
    n: int
    outside_support: int
    method: str

    def passed(self, alpha: float = 1e-3) -> bool:
        """The decision rule: the sampler is consistent with the exact law when p ≥ alpha (the rate of
        wrongly failing an exact sampler is alpha)."""
        return self.p_value >= alpha

    def to_dict(self) -> dict:
        chi2 = self.chi2 if math.isfinite(self.chi2) else None
        return {
            "p_value": self.p_value,
            "chi2": chi2,
            "dof": self.dof,
            "tv": self.tv.to_dict(),
            "n": self.n,
            "outside_support": self.outside_support,
            "method": self.method,
        }


def _cells(expected: torch.Tensor, min_expected: float) -> torch.Tensor:
    """Cell index of every support document: documents with expected count ≥ min_expected keep their own
    cell, the rest share one pooled cell (merged into the smallest other cell if still below)."""
    big = expected >= min_expected
    cell = torch.full((len(expected),), -1, dtype=torch.long)
    cell[big] = torch.arange(int(big.sum()))
    pooled = int(big.sum())
    if (~big).any():
        cell[~big] = pooled
        if expected[~big].sum() < min_expected and big.any():
            smallest = int(cell[big][expected[big].argmin()])
            cell[~big] = smallest
    return cell


def check_sampler(
    sampler,
    boosted,
    num: int = 10_000,
    *,
    seed: int | torch.Generator = 0,
    min_expected: float = 5.0,
    budget: int = MAX_ENUMERATION,
) -> SamplerCheck:
    """Draw `num` documents with `sampler(num, generator)` and compare them with the exact law of `boosted`
    (any exact LanguageModel of short documents) by χ² and TV (module docstring)."""
    if not isinstance(num, int) or num < 1:
        raise InputError(f"num must be a positive integer, got {num!r}")
    strings, lp = support(boosted, budget)
    probs = lp.exp()
    g = make_generator(seed)
    x = torch.as_tensor(sampler(num, g)).long().cpu()
    n = boosted.length
    if x.shape != (num, n):
        raise InputError(f"the sampler returned shape {tuple(x.shape)}; expected ({num}, {n})")
    if (x < 0).any() or (x >= boosted.vocab_size).any():
        raise InputError(f"the sampler returned tokens outside 0..{boosted.vocab_size - 1}")
    both, inverse = torch.unique(torch.cat([strings, x]), dim=0, return_inverse=True)
    where = torch.full((len(both),), -1, dtype=torch.long)
    where[inverse[: len(strings)]] = torch.arange(len(strings))
    doc = where[inverse[len(strings) :]]  # support index of each draw, −1 outside
    outside = int((doc < 0).sum())
    expected_docs = probs * num
    cell = _cells(expected_docs, min_expected)
    cells = int(cell.max()) + 1
    expected = torch.zeros(cells, dtype=torch.float64).index_add_(0, cell, expected_docs)
    observed = torch.zeros(cells, dtype=torch.float64).index_add_(
        0, cell[doc[doc >= 0]], torch.ones(num - outside, dtype=torch.float64)
    )
    dof = cells - 1
    if outside:
        chi2, p_value = math.inf, 0.0
    elif dof < 1:
        chi2, p_value = 0.0, 1.0
    else:
        from scipy.stats import chi2 as chi2_law

        chi2 = float(((observed - expected) ** 2 / expected).sum())
        p_value = float(chi2_law.sf(chi2, dof))
    k = cells + 1  # the support's cells and one for documents outside it
    tv_hat = 0.5 * (float((observed / num - expected / num).abs().sum()) + outside / num)
    half = math.sqrt(2 * (k * math.log(2) + math.log(20)) / num) / 2
    tv = Estimate(
        tv_hat,
        half / Z95,
        max(0.0, tv_hat - half),
        min(1.0, tv_hat + half),
        num,
        f"plug-in TV over {cells} cells (+1 outside the support) of {len(strings)} support documents; 95% "
        "interval by the Weissman et al. L1 inequality (valid for any sampler; a lower bound on the full TV "
        "when cells were pooled)",
    )
    method = (
        f"Pearson χ² of {num} draws against the exact law (support enumeration, {len(strings)} documents; "
        f"{cells} cells, expected counts < {min_expected:g} pooled)"
    )
    return SamplerCheck(p_value, chi2, dof, tv, num, outside, method)
