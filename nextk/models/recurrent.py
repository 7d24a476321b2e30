"""GRU and LSTM language models on PyTorch's fused kernels."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nextk.errors import InputError
from nextk.lm import State
from nextk.models.common import NeuralLM, linear, seeded, shift_right


class _GRUCell:
    """What differs between the cells: the fused module, the state tensors and the written-out equations."""

    module, keys = nn.GRU, ("h",)

    @staticmethod
    def to_hx(h: Tensor, c: Tensor | None):
        return h

    @staticmethod
    def from_hx(hx) -> dict[str, Tensor]:
        return {"h": hx}

    @staticmethod
    def equations(gi: Tensor, gh: Tensor, h: Tensor, c: Tensor | None, node) -> tuple[Tensor, None]:
        (ir, iz, inn), (hr, hz, hn) = gi.chunk(3, -1), gh.chunk(3, -1)
        r, z = node(torch.sigmoid(ir + hr)), node(torch.sigmoid(iz + hz))
        n = node(torch.tanh(inn + r * hn))
        return node((1 - z) * n + z * h), None


class _LSTMCell:
    module, keys = nn.LSTM, ("h", "c")

    @staticmethod
    def to_hx(h: Tensor, c: Tensor | None):
        return (h, c)

    @staticmethod
    def from_hx(hx) -> dict[str, Tensor]:
        return {"h": hx[0], "c": hx[1]}

    @staticmethod
    def equations(gi: Tensor, gh: Tensor, h: Tensor, c: Tensor | None, node) -> tuple[Tensor, Tensor]:
        i, f, g, o = (gi + gh).chunk(4, -1)
        i, f, g, o = node(torch.sigmoid(i)), node(torch.sigmoid(f)), node(torch.tanh(g)), node(torch.sigmoid(o))
        c = node(f * c + i * g)
        return node(o * torch.tanh(c)), c


class RecurrentLM(NeuralLM):
    """Embedding → nn.GRU / nn.LSTM → linear head. State between tokens: the hidden (and cell) vectors.
    Use the concrete families `GRU` and `LSTM`."""

    cell: type = _GRUCell

    def __init__(self, vocab_size: int, hidden: int, layers: int = 1, seed: int = 0):
        super().__init__()
        if vocab_size < 1 or hidden < 1 or layers < 1:
            raise InputError(f"vocab_size, hidden, layers must be ≥ 1, got {vocab_size}, {hidden}, {layers}")
        self.config = dict(vocab_size=vocab_size, hidden=hidden, layers=layers, seed=seed)
        self.vocab_size, self.hidden, self.layers = vocab_size, hidden, layers
        with seeded(seed):
            self.embed = nn.Embedding(vocab_size + 1, hidden)  # +1: beginning-of-document marker
            self.rnn = self.cell.module(hidden, hidden, num_layers=layers, batch_first=True)
            self.head = nn.Linear(hidden, vocab_size)

    @property
    def name(self) -> str:
        return f"{self.family}-{self.hidden}" + (f"x{self.layers}" if self.layers > 1 else "")

    @staticmethod
    def schedule(j: int) -> dict:
        """Size index j → constructor arguments (docs/theory.md §5): width 4j."""
        return {"hidden": 4 * j}

    @classmethod
    def from_options(cls, vocab_size: int, *, width: int, layers: int, seed: int, length: int, **_):
        return cls(vocab_size, hidden=width, layers=layers, seed=seed)

    def logits(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(self.embed(shift_right(x, self.vocab_size)))  # (B, T, H)
        return self.head(out)  # (B, T, V)

    def _run(self, tokens: Tensor, state: State | None) -> State:
        hx = None
        if state is not None:  # states keep batch first: (B, layers, H) ↔ (layers, B, H)
            parts = [state.tensors[key].transpose(0, 1).contiguous() for key in self.cell.keys]
            hx = self.cell.to_hx(*parts, *([None] * (2 - len(parts))))
        out, hx = self.rnn(self.embed(tokens.long()).unsqueeze(1), hx)  # (B, 1, H)
        lp = torch.log_softmax(self.head(out[:, 0]).double(), dim=-1)
        return State({"log_probs": lp, **{k: v.transpose(0, 1) for k, v in self.cell.from_hx(hx).items()}})

    def node_init(self, batch: int, dtype: torch.dtype = torch.float32) -> dict[str, Tensor]:
        """Node values start at 0, in `dtype`: every later node value is computed in it (float64 for `quantize`)."""
        return {key: torch.zeros(batch, self.layers, self.hidden, dtype=dtype) for key in self.cell.keys}

    def node_step(self, carry: dict[str, Tensor], tokens: Tensor, node) -> tuple[dict[str, Tensor], Tensor]:
        """The cell equations written out (unfused) with `node` applied to every gate and state value,
        layer by layer, in the carry's dtype: (carry, logits (B, V)). Matches nn.GRU / nn.LSTM when node is the
        identity."""
        dtype = carry["h"].dtype
        x = self.embed(tokens.long()).to(dtype)
        out: dict[str, list[Tensor]] = {key: [] for key in self.cell.keys}
        for layer in range(self.layers):
            w_ih, w_hh, b_ih, b_hh = (
                getattr(self.rnn, f"{name}_l{layer}").to(dtype)
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            )
            h, c = carry["h"][:, layer], carry["c"][:, layer] if "c" in carry else None
            h, c = self.cell.equations(x @ w_ih.T + b_ih, h @ w_hh.T + b_hh, h, c, node)
            out["h"].append(h)
            if c is not None:
                out["c"].append(c)
            x = h
        return {key: torch.stack(vals, 1) for key, vals in out.items()}, linear(self.head, x)


class GRU(RecurrentLM):
    """A GRU language model (nn.GRU, fused)."""

    family, cell = "gru", _GRUCell


class LSTM(RecurrentLM):
    """An LSTM language model (nn.LSTM, fused)."""

    family, cell = "lstm", _LSTMCell
