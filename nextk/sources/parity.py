"""Parity blocks: a planted structure that a window has to see whole."""

from __future__ import annotations

import torch
from torch import Tensor

from nextk.distinguishers.checks import clip
from nextk.errors import InputError
from nextk.lm import State
from nextk.sources.common import TokenSource, counts_to_log_probs, new_state


class Parity(TokenSource):
    """Bits in blocks of `block`: the first block−1 bits of each block are uniform, the last makes
    the block's parity even. Any model that treats bits as independent coins is wrong exactly at
    block ends, which a distinguisher sees only when its window (with the prefix) holds a whole block.

    >>> src = Parity(block=3, length=6)
    >>> round(src.log_prob(src.encode("110011")).exp().item() * 16, 9)     # 2 free bits per block
    1.0
    >>> src.log_prob(src.encode("111011")).exp().item()
    0.0
    """

    def __init__(self, block: int = 4, length: int = 16):
        if block < 2 or length < 1:
            raise InputError(f"need block ≥ 2 and length ≥ 1, got {block}, {length}")
        self.block, self.length, self.vocab = block, length, ["0", "1"]
        self.checks = {"parity": ParityCheck(block)}

    def start(self, batch: int) -> State:
        z = torch.zeros(batch, dtype=torch.long)
        return self._state(z, z.clone())

    def step(self, state: State, tokens: Tensor) -> tuple[State, Tensor]:
        s = state.tensors
        pos = s["pos"] + 1
        par = torch.where(pos % self.block == 0, 0, (s["par"] + tokens.long()) % 2)
        new = self._state(pos, par)
        return new, new.log_probs

    def _state(self, pos: Tensor, par: Tensor) -> State:
        counts = torch.ones(len(pos), 2, dtype=torch.long)
        last = pos % self.block == self.block - 1
        counts[last] = 0
        counts[last, par[last]] = 1  # the bit that makes the parity even
        return new_state(counts_to_log_probs(counts), pos=pos, par=par)


class ParityCheck:
    """Every block that ends inside the window has even parity (its start may lie in the prefix)."""

    def __init__(self, block: int):
        self.block = block

    def __call__(self, x: Tensor, start, k: int) -> Tensor:
        x, starts = clip(x, start, k)
        ok = torch.ones(x.shape[0], dtype=torch.bool)
        for end in range(self.block - 1, x.shape[1], self.block):
            in_window = (starts <= end) & (end < starts + k)
            odd = x[:, end - self.block + 1 : end + 1].sum(1) % 2 == 1
            ok &= ~(in_window & odd)
        return ok
