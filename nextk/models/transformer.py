"""A small causal transformer (pre-LN, learned positions) with a KV cache for `step`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nextk.errors import InputError
from nextk.lm import State
from nextk.models.common import NeuralLM, seeded, shift_right


class Block(nn.Module):
    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x: Tensor, cache: tuple[Tensor, Tensor] | None = None):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))  # (B, h, T, dh)
        if cache is not None:  # one new position attends to everything cached
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x)), (k, v)


class Transformer(NeuralLM):
    """Causal transformer LM: token + position embeddings, `layers` pre-LN blocks, linear head."""

    def __init__(
        self, vocab_size: int, d_model: int = 64, layers: int = 2, heads: int = 4, max_len: int = 512, seed: int = 0
    ):
        super().__init__()
        if d_model % heads:
            raise InputError(f"d_model={d_model} must be divisible by heads={heads}")
        self.family = "transformer"
        self.config = dict(
            vocab_size=vocab_size, d_model=d_model, layers=layers, heads=heads, max_len=max_len, seed=seed
        )
        self.vocab_size, self.max_len = vocab_size, max_len
        with seeded(seed):
            self.tok = nn.Embedding(vocab_size + 1, d_model)
            self.pos = nn.Embedding(max_len, d_model)
            self.blocks = nn.ModuleList(Block(d_model, heads) for _ in range(layers))
            self.ln = nn.LayerNorm(d_model)
            self.head = nn.Linear(d_model, vocab_size)

    def logits(self, x: Tensor) -> Tensor:
        if x.shape[1] > self.max_len:
            raise InputError(f"{x.shape[1]} positions exceed the transformer's max_len={self.max_len}")
        h = self.tok(shift_right(x, self.vocab_size)) + self.pos(torch.arange(x.shape[1]))
        for block in self.blocks:
            h, _ = block(h)
        return self.head(self.ln(h))  # (B, T, V)

    def _run(self, tokens: Tensor, state: State | None) -> State:
        pos = 0 if state is None else int(state.tensors["pos"][0])
        if pos >= self.max_len:
            raise InputError(f"position {pos} exceeds the transformer's max_len={self.max_len}")
        h = self.tok(tokens.long()).unsqueeze(1) + self.pos.weight[pos]  # (B, 1, D)
        ks, vs = [], []
        for i, block in enumerate(self.blocks):
            cache = None if state is None else (state.tensors["k"][:, i], state.tensors["v"][:, i])
            h, (k, v) = block(h, cache)
            ks.append(k)
            vs.append(v)
        lp = torch.log_softmax(self.head(self.ln(h[:, 0])).double(), dim=-1)
        pos_t = torch.full((tokens.shape[0],), pos + 1, dtype=torch.long)
        return State({"log_probs": lp, "k": torch.stack(ks, 1), "v": torch.stack(vs, 1), "pos": pos_t})
