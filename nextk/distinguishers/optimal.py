"""The optimal (unbounded) distinguisher d* = 1[p(w|x_{<i}) > q(w|x_{<i})] (docs/theory.md §2)."""

from __future__ import annotations

import torch
from torch import Tensor

from nextk.distinguishers.checks import clip, window_mask


class OptimalDistinguisher:
    """Compares the window's probability under p and q given the prefix; its advantage is the
    average total variation, the ceiling for every distinguisher."""

    def __init__(self, p, q, k: int):
        self.p, self.q, self.k = p, q, k

    def __call__(self, x: Tensor, start, k: int) -> Tensor:
        x, starts = clip(x, start, k)
        inside = window_mask(starts, k, x.shape[1])
        with torch.no_grad():
            lp, lq = (
                torch.where(inside, m.log_probs(x).gather(-1, x.unsqueeze(-1)).squeeze(-1).double(), 0.0).sum(1)
                for m in (self.p, self.q)
            )
        return lp > lq
