"""Is a sampler of a boosted model right? `check_sampler` compares its draws with the exact law.

The exact law of short documents comes from the model's own conditionals: `nextk.measure.support`
expands the prefix trie of q̄' (docs/theory.md §4, eqs. 1.3–1.5) and keeps every document of positive
probability. Against it the sampler's `num` documents are tested two ways:

- Pearson's χ² on the documents of the support whose expected count is at least `min_expected` (one
  cell each). The rarer documents are pooled into one cell of their own, never merged into a large one
  (a sampler that over-draws rare documents must not hide there). When the pool's expected count is at
  least `min_expected` it is one more χ² cell (dof = cells − 1). Otherwise the χ² is taken on the large
  cells conditional on the draws that fell in them (expected M·p_i / P_large, dof = large cells − 1), and
  the pool's count is tested by the exact binomial upper tail P(Bin(num, P_pool) ≥ observed); the two
  p-values are combined by Bonferroni, p = min(1, 2 · min(p_χ², p_pool)). Fewer than two large cells
  (dof < 1) is refused, naming the sample size that would give them.
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


def _cells(expected: torch.Tensor, min_expected: float) -> tuple[torch.Tensor, int]:
    """Cell index of every support document: documents with expected count ≥ min_expected keep their own
    cell (0..L−1), the rest share one pooled cell L (its own, never merged). Returns (cells, L)."""
    big = expected >= min_expected
    cell = torch.full((len(expected),), -1, dtype=torch.long)
    large = int(big.sum())
    cell[big] = torch.arange(large)
    cell[~big] = large
    return cell, large


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
    expected_docs = probs * num
    cell, large = _cells(expected_docs, min_expected)
    cells = int(cell.max()) + 1  # large cells, plus the pool when some document is rare
    expected = torch.zeros(cells, dtype=torch.float64).index_add_(0, cell, expected_docs)
    pool_alone = cells > large and float(expected[large]) < min_expected  # the pool is tested by the binomial
    tested = large if pool_alone else cells
    dof = tested - 1
    if dof < 1:
        need = math.ceil(min_expected / float(probs.sort(descending=True).values[1])) if len(probs) > 1 else None
        raise InputError(
            f"check_sampler: only {tested} cell(s) have expected count ≥ {min_expected:g} at num={num:,}, so χ² has "
            f"no degree of freedom; "
            + (f"num ≥ {need:,} gives two" if need else "the law has one document: there is nothing to test")
        )
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
    observed = torch.zeros(cells, dtype=torch.float64).index_add_(
        0, cell[doc[doc >= 0]], torch.ones(num - outside, dtype=torch.float64)
    )
    from scipy.stats import binom
    from scipy.stats import chi2 as chi2_law

    pool_note = ""
    if outside:
        chi2, p_value = math.inf, 0.0
    elif pool_alone:
        m = float(observed[:large].sum())
        exp_large = expected[:large] * (m / float(expected[:large].sum()))  # conditional on the draws in them
        chi2 = float(((observed[:large] - exp_large) ** 2 / exp_large).sum()) if m else 0.0
        p_chi2 = float(chi2_law.sf(chi2, dof)) if m else 0.0  # no draw in a large cell: the pool took them all
        p_pool = float(binom.sf(int(observed[large]) - 1, num, float(expected[large]) / num))
        p_value = min(1.0, 2 * min(p_chi2, p_pool))
        pool_note = (
            f"; the {int((cell == large).sum())} rare documents (expected {float(expected[large]):.3g} < "
            f"{min_expected:g} in all) form their own cell, tested by the exact binomial upper tail "
            f"(p = {p_pool:.3g}), χ² on the large cells conditional on their draws (p = {p_chi2:.3g}); "
            "combined by Bonferroni: p = min(1, 2 · min)"
        )
    else:
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
        f"{cells} cells, expected counts < {min_expected:g} pooled into their own cell){pool_note}"
    )
    return SamplerCheck(p_value, chi2, dof, tv, num, outside, method)
