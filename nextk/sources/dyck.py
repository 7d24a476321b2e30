"""Dyck source: uniform balanced bracket strings of exactly `length` tokens with bounded depth."""

from __future__ import annotations

import math
from fractions import Fraction

import torch
from torch import Tensor

from nextk.distinguishers.checks import clip
from nextk.errors import InputError
from nextk.lm import State, make_generator
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
        # P(open any type | r tokens left, depth h) = n_types · C[r−1][h+1] / C[r][h]: exact ratios rounded once.
        self._p_open = torch.tensor(
            [
                [_ratio(n_types * counts[r - 1][h + 1], counts[r][h]) for h in range(max_depth + 1)]
                for r in range(1, length + 1)
            ],
            dtype=torch.float64,
        )  # (length, max_depth + 1), row r − 1
        self.checks = {"valid": DyckCheck(self)}

    def sample(self, num: int, length: int | None = None, *, generator=None, prefix=None) -> Tensor:
        """Exact uniform draws, batched: the depth walk first (one uniform per token against the table of
        opening probabilities), each open's type uniform, each close the type of its matching open
        (`matching_opens`). With a prefix, the step sampler."""
        if prefix is not None and torch.as_tensor(prefix).numel():
            return super().sample(num, length, generator=generator, prefix=prefix)
        length, g = self._length(length), make_generator(generator)
        if num < 0:
            raise InputError(f"num must be non-negative, got {num}")
        u = torch.rand(num, length, dtype=torch.float64, generator=g)
        types = torch.randint(self.n_types, (num, length), generator=g)
        close = torch.empty(num, length, dtype=torch.long)
        depth = torch.zeros(num, length + 1, dtype=torch.long)
        d = depth[:, 0]
        for t in range(length):
            close[:, t] = c = (u[:, t] >= self._p_open[self.length - 1 - t].gather(0, d)).long()
            d = d + 1 - 2 * c
            depth[:, t + 1] = d
        top = matching_opens(close, types, depth[:, :-1])
        return torch.where(close.bool(), 2 * top + 1, 2 * types)

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


def _ratio(num: int, den: int) -> float:
    """num / den for exact integers of any size, correctly rounded; 0 where den = 0 (unreachable)."""
    return float(Fraction(num, den)) if den else 0.0


class DyckCheck:
    """Valid brackets inside the window: every close matches the open bracket on top of the stack
    (the stack is read from the prefix), depth stays within max_depth, and the depth never exceeds
    the tokens left, so the document can still be completed.

    The prefix is read by the clamped stack machine of `push_pop` (an unreadable prefix still leaves a
    stack: a close at depth 0 and an open at max_depth change nothing, a mismatched close pops). Batched:
    depths by one cumsum, closes that do not match the top of the stack by `unmatched`, the verdict from
    a running count of rejected tokens. Both are exact up to the first token the machine rejects; rows
    whose prefix has one (it cannot be read) are read again step by step (`read_by_steps`).
    """

    def __init__(self, source: Dyck):
        self.source = source

    def __call__(self, x: Tensor, start, k: int) -> Tensor:
        x, starts = clip(x, start, k)
        src, (b, n) = self.source, x.shape
        lo, hi = (int(v) for v in torch.aminmax(x)) if x.numel() else (0, 0)
        if not 0 <= lo <= hi < src.vocab_size:
            raise InputError(f"Dyck tokens must be in 0..{src.vocab_size - 1}, got tokens from {lo} to {hi}")
        y = x.to(torch.int16)  # small integers: the operations below are memory-bound
        close, kind = y & 1, y >> 1
        step = 1 - 2 * close
        after = torch.cumsum(step, dim=1, dtype=torch.int16)  # the depth after token t, until the first rejection
        slot = (after + close).sub_(1)  # the slot token t writes (open: depth before) or reads (close: depth after)
        # rejected: a close that does not match the top, or the depth leaving [0, max_depth] (the machine
        # clamps: its state goes wrong) or [0, n − t − 1] (no completion left: only the verdict)
        broken = torch.maximum(
            torch.maximum(after - src.max_depth, -after), unmatched(close, kind, step, slot, src.n_types, src.max_depth)
        )
        tail = (src.length - 1 - torch.arange(n)).to(torch.int16)
        rejected = torch.maximum(broken, after - tail).clamp_(0, 1)
        counts = torch.zeros(2, b, n + 1, dtype=torch.int16)  # among x[:, :t]: broken tokens, rejected tokens
        torch.cumsum(torch.stack([broken.clamp_(0, 1), rejected]), dim=2, out=counts[:, :, 1:])
        at_start = counts.gather(2, starts.expand(2, b)[:, :, None]).squeeze(2)
        ok = counts[1].gather(1, (starts + k)[:, None]).squeeze(1) == at_start[1]
        rows = at_start[0].nonzero().squeeze(1)
        if len(rows):
            ok[rows] = read_by_steps(x[rows], starts[rows], k, src.max_depth, src.length)
        return ok


def read_by_steps(x: Tensor, starts: Tensor, k: int, max_depth: int, length: int) -> Tensor:
    """DyckCheck's verdicts by `push_pop`, one column at a time (for prefixes that cannot be read)."""
    b = x.shape[0]
    stack = torch.zeros(b, max_depth + 1, dtype=torch.long)
    depth = torch.zeros(b, dtype=torch.long)
    good = torch.ones(b, dtype=torch.bool)
    for t in range(x.shape[1]):
        stack, depth, ok = push_pop(stack, depth, x[:, t], max_depth)
        inside = (t >= starts) & (t < starts + k)
        good &= ~(inside & (~ok | (depth > length - t - 1)))
    return good


def unmatched(close: Tensor, kind: Tensor, step: Tensor, slot: Tensor, n_types: int, max_depth: int) -> Tensor:
    """Nonzero (B, T) at each close whose kind is not the top of the stack, zero elsewhere; exact up to the
    first such close or depth outside [0, max_depth]. close: 1 at closes, 0 at opens; step: 1 − 2·close;
    slot: the stack slot each token writes (an open: its depth before) or reads (a close: its depth before − 1);
    all small int tensors; slot is overwritten.

    The stack as a number: an open of kind j at depth h adds (j + 1)·2^(b·h), a close of kind j at depth h
    subtracts (j + 1)·2^(b·(h−1)), with b bits per slot, enough for 1 … n_types. While every close matches,
    matched pairs cancel and the running sum holds the stack slot by slot; a close leaves its slot's digit 0
    exactly when it matched the top (otherwise top − j ≠ 0 mod 2^b). One cumsum; slots past one int32 word
    go into further words.
    """
    bits = n_types.bit_length()
    per = 31 // bits  # slots per int32 word: the sum stays below 2^31 while the stack is right
    level = slot.clamp_(0, max_depth).to(torch.int32)  # out of range only after a rejection
    words = max_depth // per + 1
    if words > 1:
        word, level = level // per, level % per
    shift = level.mul_(bits) if bits > 1 else level
    c = kind.to(torch.int32).add_(1).bitwise_left_shift_(shift).mul_(step)  # + at opens, − at closes
    if words == 1:
        v = torch.cumsum(c, dim=1, dtype=torch.int32)
    else:
        w = word.long()[:, :, None]
        c3 = torch.zeros(*c.shape, words, dtype=torch.int32).scatter_(2, w, c[:, :, None])
        v = torch.cumsum(c3, dim=1, dtype=torch.int32).gather(2, w).squeeze(2)
    return v.bitwise_right_shift_(shift).bitwise_and_((1 << bits) - 1).mul_(close)


def matching_opens(close: Tensor, kind: Tensor, before: Tensor) -> Tensor:
    """For a balanced walk (before: depths before each token, a valid prefix) the kind of the matching open
    at each close (B, T), whatever kinds the closes carry; meaningless at opens. close: 1 at closes.

    Give each token the level of the slot it writes or reads (an open: its depth; a close: its depth − 1)
    and sort the tokens by (level, position): along a level an open comes first and two closes always have
    an open between them (getting back up to a level takes an open there), so the token sorted just before
    a close is its matching open.
    """
    n = kind.shape[1]
    key = (before - close) * n + torch.arange(n)
    order = torch.argsort(key, dim=1)
    sorted_before = kind.gather(1, order).roll(1, dims=1)  # column 0 wraps: an open, never read
    return torch.empty_like(kind).scatter_(1, order, sorted_before)
