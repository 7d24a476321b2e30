"""Exact conditionals of a distribution over an explicit list of strings with integer weights.

Sorting the support lexicographically makes every prefix a contiguous block, and the key
key_t[i] = rank_t(S[i, :t]) · V + S[i, t] non-decreasing in i. The mass of "prefix then v" is
then a difference of cumulative integer weights between two `searchsorted` boundaries: exact
ratios of integers, batched over rows, with no trie of Python objects.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from nextk.errors import InputError
from nextk.lm import State
from nextk.sources.common import counts_to_log_probs, new_state


class FiniteSupport:
    """Prefix-count oracle for strings (N, L) with positive integer weights (N,)."""

    def __init__(self, strings: np.ndarray, weights: np.ndarray, vocab_size: int):
        strings = np.asarray(strings, dtype=np.int64)
        weights = np.asarray(weights, dtype=np.int64)
        if strings.ndim != 2 or len(strings) != len(weights) or len(strings) == 0:
            raise InputError("support must be a non-empty (N, L) array with one weight per string")
        order = np.lexsort(strings.T[::-1])
        self.strings = torch.from_numpy(strings[order])  # (N, L), lexicographic
        w = torch.from_numpy(weights[order])
        self.cum = torch.cat([torch.zeros(1, dtype=torch.long), w.cumsum(0)])  # (N+1,)
        self.total = int(self.cum[-1])
        self.vocab_size, self.length = vocab_size, strings.shape[1]
        self.keys, self.uniq = [], []
        rank = torch.zeros(len(order), dtype=torch.long)
        for t in range(self.length):
            key = rank * vocab_size + self.strings[:, t]  # non-decreasing
            self.keys.append(key)
            self.uniq.append(torch.unique_consecutive(key))
            rank = torch.searchsorted(self.uniq[-1], key)

    def counts(self, rank: Tensor, t: int) -> tuple[Tensor, Tensor]:
        """Weights of each next token after the prefix with this rank at position t: (B, V) and bounds."""
        q = rank.unsqueeze(1) * self.vocab_size + torch.arange(self.vocab_size + 1)  # (B, V+1)
        bounds = torch.searchsorted(self.keys[t], q)
        c = self.cum[bounds]
        return c[:, 1:] - c[:, :-1], bounds

    def start(self, batch: int) -> State:
        rank = torch.zeros(batch, dtype=torch.long)
        return self._state(rank, torch.zeros(batch, dtype=torch.long), torch.zeros(batch, dtype=torch.bool))

    def step(self, state: State, tokens: Tensor) -> tuple[State, Tensor]:
        s = state.tensors
        rank, pos, dead = s["rank"].clone(), s["pos"], s["dead"].clone()
        tokens = tokens.long()
        for t in pos.unique().tolist():
            rows = (pos == t).nonzero().squeeze(1)
            if t >= self.length:
                dead[rows] = True
                continue
            key = rank[rows] * self.vocab_size + tokens[rows]
            idx = torch.searchsorted(self.uniq[t], key).clamp(max=len(self.uniq[t]) - 1)
            found = self.uniq[t][idx] == key
            rank[rows] = idx
            dead[rows] |= ~found
        new = self._state(rank, pos + 1, dead)
        return new, new.log_probs

    def _state(self, rank: Tensor, pos: Tensor, dead: Tensor) -> State:
        counts = torch.zeros(len(rank), self.vocab_size, dtype=torch.long)
        for t in pos.unique().tolist():
            if t < self.length:
                rows = (pos == t).nonzero().squeeze(1)
                counts[rows] = self.counts(rank[rows], t)[0]
        counts[dead] = 0
        return new_state(counts_to_log_probs(counts), rank=rank, pos=pos, dead=dead)

    def sample(self, num: int, generator: torch.Generator) -> Tensor:
        """Exact non-autoregressive draws: pick strings by weight."""
        u = torch.randint(0, self.total, (num,), generator=generator)
        idx = torch.searchsorted(self.cum, u, right=True) - 1
        return self.strings[idx].clone()

    def probabilities(self) -> Tensor:
        """(N,) float64 probabilities aligned with `self.strings`."""
        return (self.cum[1:] - self.cum[:-1]).double() / self.total
