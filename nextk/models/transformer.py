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

    def _heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        return tuple(z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))  # (B, h, T, dh)

    def _out(self, x: Tensor, y: Tensor) -> Tensor:
        b, t, d = x.shape
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))

    def forward(self, x: Tensor) -> Tensor:
        """Teacher-forced causal attention over the whole sequence: (B, T, D) → (B, T, D)."""
        q, k, v = self._heads(x)
        return self._out(x, F.scaled_dot_product_attention(q, k, v, is_causal=True))

    def step(self, x: Tensor, cache: tuple[Tensor, Tensor] | None, pos: Tensor, length: int):
        """One new token per row, row b at its own position pos[b]: its key/value are written into the
        cache at slot pos[b] and it attends to slots 0..pos[b] only (padding beyond is masked).
        x: (B, 1, D); cache: (B, h, T, dh) each, T ≤ length. Returns (B, 1, D) and the new cache."""
        q, k, v = self._heads(x)
        b, h, _, dh = k.shape
        rows = torch.arange(b)
        new = []
        for old, cur in zip(cache if cache is not None else (None, None), (k, v)):
            full = cur.new_zeros(b, h, length, dh)
            if old is not None:
                full[:, :, : old.shape[2]] = old
            full[rows, :, pos] = cur[:, :, 0]
            new.append(full)
        mask = (torch.arange(length) <= pos.unsqueeze(1))[:, None, None, :]  # (B, 1, 1, T): this row's slots
        return self._out(x, F.scaled_dot_product_attention(q, new[0], new[1], attn_mask=mask)), tuple(new)


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

    @property
    def name(self) -> str:
        return f"transformer-{self.config['d_model']}x{self.config['layers']}"

    @staticmethod
    def schedule(j: int) -> dict:
        """Size index j → constructor arguments (docs/theory.md §5): width 8j, one layer, two heads."""
        return {"d_model": 8 * j, "layers": 1, "heads": 2}

    @classmethod
    def sized(cls, vocab_size: int, j: int, *, seed: int = 0, length: int | None = None):
        if j < 1:
            raise InputError(f"size index must be ≥ 1, got {j}")
        return cls(vocab_size, **cls.schedule(j), max_len=length or 512, seed=seed)

    @classmethod
    def from_options(cls, vocab_size: int, *, width: int, layers: int, seed: int, length: int, heads: int = 4, **_):
        """width = d_model; positions up to the document length."""
        return cls(vocab_size, d_model=width, layers=layers, heads=heads, max_len=length, seed=seed)

    def logits(self, x: Tensor) -> Tensor:
        if x.shape[1] > self.max_len:
            raise InputError(f"{x.shape[1]} positions exceed the transformer's max_len={self.max_len}")
        h = self.tok(shift_right(x, self.vocab_size)) + self.pos(torch.arange(x.shape[1]))
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln(h))  # (B, T, V)

    def _run(self, tokens: Tensor, state: State | None) -> State:
        """Read one token per row; every row at its own position (the State contract, nextk.lm).
        State: "pos" (B,) tokens read so far (the beginning-of-document marker counts as the first);
        "k"/"v" (B, layers, heads, T, dh) caches, slots ≥ pos[b] of row b are padding."""
        b = tokens.shape[0]
        pos = torch.zeros(b, dtype=torch.long) if state is None else state.tensors["pos"]
        if b and int(pos.max()) >= self.max_len:
            raise InputError(f"position {int(pos.max())} exceeds the transformer's max_len={self.max_len}")
        length = max(int(pos.max()) + 1 if b else 1, 0 if state is None else state.tensors["k"].shape[3])
        h = self.tok(tokens.long()).unsqueeze(1) + self.pos(pos).unsqueeze(1)  # (B, 1, D)
        ks, vs = [], []
        for i, block in enumerate(self.blocks):
            cache = None if state is None else (state.tensors["k"][:, i], state.tensors["v"][:, i])
            h, (k, v) = block.step(h, cache, pos, length)
            ks.append(k)
            vs.append(v)
        lp = torch.log_softmax(self.head(self.ln(h[:, 0])).double(), dim=-1)
        return State({"log_probs": lp, "k": torch.stack(ks, 1), "v": torch.stack(vs, 1), "pos": pos + 1})
