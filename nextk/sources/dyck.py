"""Dyck source: uniform balanced bracket strings of exactly `length` tokens with bounded depth."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from nextk.distinguishers.checks import clip
from nextk.errors import InputError
from nextk.lm import State
from nextk.sources.common import TokenSource, new_state

BRACKETS = "()[]{}<>"


def completion_counts(length: int, max_depth: int, n_types: int) -> list[list[int]]:
    """C[r][h]: number of ways to write r more tokens from depth h and end balanced (exact ints).

    C[0][h] = 1[h = 0];  C[r][h] = n_types · C[r−1][h+1] (if h < max_depth) + C[r−1][h−1] (if h > 0).
    """
    c = [[0] * (max_depth + 2) for _ in range(length + 1)]
    c[0][0] = 1
    for r in range(1, length + 1):
        for h in range(max_depth + 1):
            up = n_types * c[r - 1][h + 1] if h < max_depth else 0
            down = c[r - 1][h - 1] if h > 0 else 0
            c[r][h] = up + down
    return c


def push_pop(stack: Tensor, depth: Tensor, tokens: Tensor, max_depth: int) -> tuple[Tensor, Tensor, Tensor]:
    """Read one bracket per row: (new stack, new depth, ok) where ok means the close matched the top
    of the stack or the open stayed within max_depth. stack: (B, max_depth+1), depth: (B,)."""
    tokens = tokens.long()
    is_open, kind = tokens % 2 == 0, tokens // 2
    top = stack.gather(1, (depth - 1).clamp_min(0).unsqueeze(1)).squeeze(1)
    ok = torch.where(is_open, depth < max_depth, (depth > 0) & (top == kind))
    slot = depth.clamp(max=max_depth).unsqueeze(1)
    stack = stack.scatter(1, slot, torch.where(is_open, kind, stack.gather(1, slot).squeeze(1)).unsqueeze(1))
    depth = torch.where(is_open, depth + 1, depth - 1).clamp(0, max_depth)
    return stack, depth, ok


class Dyck(TokenSource):
    """The uniform distribution over balanced strings of `n_types` bracket pairs, exactly `length`
    tokens long, never deeper than `max_depth`. Token 2j opens type j, token 2j+1 closes it.

    Conditionals count completions: after a prefix at depth h with r tokens left, opening any type
    has weight C[r−1][h+1] and closing the top bracket C[r−1][h−1] (`completion_counts`), so every
    valid string has probability 1 / C[length][0].

    >>> src = Dyck(n_types=1, max_depth=2, length=4)     # valid: (()) and ()()
    >>> [round(v, 6) for v in src.log_prob(torch.stack([src.encode("(())"), src.encode("()()")])).exp().tolist()]
    [0.5, 0.5]
    >>> src.log_prob(src.encode("((((")).exp().item()
    0.0
    >>> Dyck(n_types=2, max_depth=3, length=6).n_strings      # 5 bracket shapes × 2³ types
    40
    """

    def __init__(self, n_types: int = 1, max_depth: int = 4, length: int = 16):
        if not 1 <= n_types <= len(BRACKETS) // 2:
            raise InputError(f"n_types must be in 1..{len(BRACKETS) // 2}, got {n_types}")
        if max_depth < 1:
            raise InputError(f"max_depth must be ≥ 1, got {max_depth}")
        if length < 2 or length % 2:
            raise InputError(f"Dyck length must be even and ≥ 2, got {length}")
        self.n_types, self.max_depth, self.length = n_types, max_depth, length
        self.vocab = list(BRACKETS[: 2 * n_types])
        counts = completion_counts(length, max_depth, n_types)
        self.n_strings = counts[length][0]
        # log C[r][h], exact integers through math.log (accurate for any size), −inf for 0.
        self._log_c = torch.tensor(
            [[math.log(v) if v > 0 else -math.inf for v in row] for row in counts], dtype=torch.float64
        )  # (length+1, max_depth+2)
        self.checks = {"valid": DyckCheck(self)}

    def start(self, batch: int) -> State:
        z = torch.zeros(batch, dtype=torch.long)
        stack = torch.zeros(batch, self.max_depth + 1, dtype=torch.long)
        return self._state(stack, z, z.clone(), torch.zeros(batch, dtype=torch.bool))

    def step(self, state: State, tokens: Tensor) -> tuple[State, Tensor]:
        s = state.tensors
        stack, depth, ok = push_pop(s["stack"], s["depth"], tokens, self.max_depth)
        new = self._state(stack, depth, s["pos"] + 1, s["dead"] | ~ok)
        return new, new.log_probs

    def _state(self, stack: Tensor, depth: Tensor, pos: Tensor, dead: Tensor) -> State:
        r = (self.length - pos).clamp_min(0)
        log_c = self._log_c
        log_z = log_c[r, depth]
        up = torch.where(depth < self.max_depth, log_c[(r - 1).clamp_min(0), depth + 1], -math.inf)
        down = torch.where(depth > 0, log_c[(r - 1).clamp_min(0), (depth - 1).clamp_min(0)], -math.inf)
        lp = torch.full((len(depth), len(self.vocab)), -math.inf, dtype=torch.float64)
        lp[:, 0::2] = (up - log_z).unsqueeze(1)
        top = stack.gather(1, (depth - 1).clamp_min(0).unsqueeze(1)).squeeze(1)
        lp[torch.arange(len(depth)), 2 * top + 1] = torch.where(depth > 0, down - log_z, -math.inf)
        undefined = dead | (r == 0) | torch.isneginf(log_z)
        lp[undefined] = -math.log(len(self.vocab))
        return new_state(lp, stack=stack, depth=depth, pos=pos, dead=dead)


class DyckCheck:
    """Valid brackets inside the window: every close matches the open bracket on top of the stack
    (the stack is read from the prefix), depth stays within max_depth, and the depth never exceeds
    the tokens left, so the document can still be completed."""

    def __init__(self, source: Dyck):
        self.source = source

    def __call__(self, x: Tensor, start, k: int) -> Tensor:
        x, starts = clip(x, start, k)
        src, b = self.source, x.shape[0]
        stack = torch.zeros(b, src.max_depth + 1, dtype=torch.long)
        depth = torch.zeros(b, dtype=torch.long)
        good = torch.ones(b, dtype=torch.bool)
        for t in range(x.shape[1]):
            stack, depth, ok = push_pop(stack, depth, x[:, t], src.max_depth)
            inside = (t >= starts) & (t < starts + k)
            good &= ~(inside & (~ok | (depth > src.length - t - 1)))
        return good
