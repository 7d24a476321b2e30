"""n-gram baseline: counts with add-λ smoothing, fitted from samples."""

from __future__ import annotations

import torch
from torch import Tensor

from nextk.errors import InputError, check_enumeration
from nextk.lm import State
from nextk.models.common import NeuralLM


class NGram(NeuralLM):
    """q(v | x_{<t}) = (count(ctx, v) + λ) / (count(ctx) + λ V), ctx the last order−1 tokens
    (positions before the document start read as a marker, so early contexts are their own)."""

    def __init__(self, order: int, vocab_size: int, smoothing: float = 0.5):
        super().__init__()
        if order < 1 or smoothing <= 0:
            raise InputError(f"need order ≥ 1 and smoothing > 0, got {order}, {smoothing}")
        n_ctx = (vocab_size + 1) ** (order - 1)
        check_enumeration(n_ctx * vocab_size, f"{order}-gram count table")
        self.family = "ngram"
        self.config = dict(order=order, vocab_size=vocab_size, smoothing=smoothing)
        self.order, self.vocab_size, self.smoothing = order, vocab_size, smoothing
        self.register_buffer("counts", torch.zeros(n_ctx, vocab_size, dtype=torch.float64))

    def _contexts(self, x: Tensor) -> Tensor:
        """Context index for every position: (B, T)."""
        b, t = x.shape
        padded = torch.cat([torch.full((b, self.order - 1), self.vocab_size, dtype=torch.long), x], dim=1)
        idx = torch.zeros(b, t, dtype=torch.long)
        for j in range(self.order - 1):
            idx = idx * (self.vocab_size + 1) + padded[:, j : j + t]
        return idx

    def fit(self, x: Tensor) -> NGram:
        """Add the counts of documents x (B, T); returns self."""
        x = x.long()
        flat = self._contexts(x) * self.vocab_size + x
        self.counts += torch.bincount(flat.flatten(), minlength=self.counts.numel()).view_as(self.counts).double()
        return self

    def _table(self, ctx: Tensor) -> Tensor:
        c = self.counts[ctx] + self.smoothing
        return (c / c.sum(-1, keepdim=True)).log()

    def logits(self, x: Tensor) -> Tensor:
        return self._table(self._contexts(x))  # (B, T, V) already log-normalised

    def _state(self, ctx_tokens: Tensor) -> State:
        idx = torch.zeros(ctx_tokens.shape[0], dtype=torch.long)
        for j in range(self.order - 1):
            idx = idx * (self.vocab_size + 1) + ctx_tokens[:, j]
        return State({"log_probs": self._table(idx), "ctx": ctx_tokens})

    def start(self, batch: int) -> State:
        return self._state(torch.full((batch, self.order - 1), self.vocab_size, dtype=torch.long))

    def step(self, state: State, tokens: Tensor) -> tuple[State, Tensor]:
        ctx = torch.cat([state.tensors["ctx"], tokens.long().unsqueeze(1)], dim=1)[:, 1:]
        new = self._state(ctx)
        return new, new.log_probs
