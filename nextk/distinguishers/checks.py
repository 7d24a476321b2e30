"""Next-k-token distinguishers (docs/theory.md §2) and the source checkers built on them.

A distinguisher is a callable `d(x, start, k) -> BoolTensor[B]` judging the window
x[:, start:start+k] given the prefix x[:, :start]; `start` is an int or a LongTensor[B].
It may not read past start+k: `clip` hands it only the columns it may see.
"""

from __future__ import annotations

import numbers
from typing import Protocol

import torch
from torch import Tensor

from nextk.errors import InputError
from nextk.stats import Estimate, wilson


class Distinguisher(Protocol):
    def __call__(self, x: Tensor, start: int | Tensor, k: int) -> Tensor: ...


def as_starts(start: int | Tensor, batch: int) -> Tensor:
    """Normalise `start` to a LongTensor (batch,)."""
    if isinstance(start, Tensor):
        if start.is_floating_point() or start.is_complex() or start.dtype == torch.bool:
            raise InputError(f"window start must be an integer tensor, got dtype {start.dtype}")
        if start.dim() > 1 or (start.dim() == 1 and start.shape[0] != batch):
            raise InputError(f"window start has shape {tuple(start.shape)}, but x has {batch} rows: give one per row")
        start = start.long()
        return start.expand(batch).clone() if start.dim() == 0 else start
    if isinstance(start, bool) or not isinstance(start, numbers.Integral):
        raise InputError(f"window start must be an integer or a LongTensor of one per row, got {start!r}")
    return torch.full((batch,), int(start), dtype=torch.long)


def clip(x: Tensor, start: int | Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Columns a distinguisher may read (up to the last window end) and the per-row starts."""
    if k < 1:
        raise InputError(f"window size k must be ≥ 1, got {k}")
    starts = as_starts(start, x.shape[0])
    if starts.numel() and int(starts.min()) < 0:
        raise InputError(f"window start must be ≥ 0, got {int(starts.min())}")
    end = int(starts.max().item()) + k if starts.numel() else k
    if end > x.shape[1]:
        raise InputError(f"window [start, start+k) ends at {end}, past the string length {x.shape[1]}")
    return x[:, :end], starts


def window_mask(starts: Tensor, k: int, length: int) -> Tensor:
    """Bool (B, length): True at positions start ≤ t < start + k."""
    t = torch.arange(length)
    return (t >= starts[:, None]) & (t < starts[:, None] + k)


def pass_rate(check, x: Tensor) -> Estimate:
    """Fraction of whole documents x (batch, pos) that `check` accepts, with a Wilson 95% interval."""
    ok = check(x, 0, x.shape[1])
    return wilson(int(ok.sum()), len(ok), "checker on whole documents, Wilson 95% interval")


class SupportCheck:
    """d(x_{<i}, w) = 1[p(w | x_{<i}) > 0]: the window is possible under the exact source p.

    The strongest validity rule a source has; for the factorization source it needs the factors
    of N (docs/theory.md §7), so the polynomial-time arithmetic checkers sit beside it.
    """

    def __init__(self, source):
        self.source = source

    def __call__(self, x: Tensor, start: int | Tensor, k: int) -> Tensor:
        x, starts = clip(x, start, k)
        lp = self.source.log_probs(x).gather(-1, x.unsqueeze(-1)).squeeze(-1)  # (B, T)
        inside = window_mask(starts, k, x.shape[1])
        return ~(torch.isneginf(lp) & inside).any(dim=1)


class Negation:
    """1 − d: flips the sign of every advantage."""

    def __init__(self, d):
        self.d = d

    def __call__(self, x: Tensor, start: int | Tensor, k: int) -> Tensor:
        return ~self.d(x, start, k)
