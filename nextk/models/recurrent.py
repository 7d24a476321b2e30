"""GRU and LSTM language models on PyTorch's fused kernels."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nextk.errors import InputError
from nextk.lm import State
from nextk.models.common import NeuralLM, seeded, shift_right


class RecurrentLM(NeuralLM):
    """Embedding → nn.GRU / nn.LSTM → linear head. State between tokens: the hidden (and cell) vectors."""

    def __init__(self, vocab_size: int, hidden: int, layers: int = 1, cell: str = "gru", seed: int = 0):
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise InputError(f"unknown cell={cell!r}; choose 'gru' or 'lstm'")
        if vocab_size < 1 or hidden < 1 or layers < 1:
            raise InputError(f"vocab_size, hidden, layers must be ≥ 1, got {vocab_size}, {hidden}, {layers}")
        self.family = cell
        self.config = dict(vocab_size=vocab_size, hidden=hidden, layers=layers, seed=seed)
        self.vocab_size, self.hidden, self.layers, self.cell = vocab_size, hidden, layers, cell
        with seeded(seed):
            self.embed = nn.Embedding(vocab_size + 1, hidden)  # +1: beginning-of-document marker
            rnn = nn.GRU if cell == "gru" else nn.LSTM
            self.rnn = rnn(hidden, hidden, num_layers=layers, batch_first=True)
            self.head = nn.Linear(hidden, vocab_size)

    def logits(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(self.embed(shift_right(x, self.vocab_size)))  # (B, T, H)
        return self.head(out)  # (B, T, V)

    def _run(self, tokens: Tensor, state: State | None) -> State:
        hx = None
        if state is not None:  # states keep batch first: (B, layers, H) ↔ (layers, B, H)
            hx = state.tensors["h"].transpose(0, 1).contiguous()
            if self.cell == "lstm":
                hx = (hx, state.tensors["c"].transpose(0, 1).contiguous())
        out, hx = self.rnn(self.embed(tokens.long()).unsqueeze(1), hx)  # (B, 1, H)
        lp = torch.log_softmax(self.head(out[:, 0]).double(), dim=-1)
        if self.cell == "lstm":
            return State({"log_probs": lp, "h": hx[0].transpose(0, 1), "c": hx[1].transpose(0, 1)})
        return State({"log_probs": lp, "h": hx.transpose(0, 1)})

    def node_init(self, batch: int) -> dict[str, Tensor]:
        z = torch.zeros(batch, self.layers, self.hidden)
        return {"h": z} if self.cell == "gru" else {"h": z, "c": z.clone()}

    def node_step(self, carry: dict[str, Tensor], tokens: Tensor, node) -> tuple[dict[str, Tensor], Tensor]:
        """The cell equations written out (unfused) with `node` applied to every gate and state value,
        layer by layer: (carry, logits (B, V)). Matches nn.GRU / nn.LSTM when node is the identity."""
        x = self.embed(tokens.long())
        hs, cs = [], []
        for layer in range(self.layers):
            w_ih, w_hh = getattr(self.rnn, f"weight_ih_l{layer}"), getattr(self.rnn, f"weight_hh_l{layer}")
            b_ih, b_hh = getattr(self.rnn, f"bias_ih_l{layer}"), getattr(self.rnn, f"bias_hh_l{layer}")
            h = carry["h"][:, layer]
            gi, gh = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
            if self.cell == "gru":
                (ir, iz, inn), (hr, hz, hn) = gi.chunk(3, -1), gh.chunk(3, -1)
                r, z = node(torch.sigmoid(ir + hr)), node(torch.sigmoid(iz + hz))
                n = node(torch.tanh(inn + r * hn))
                h = node((1 - z) * n + z * h)
            else:
                i, f, g, o = (gi + gh).chunk(4, -1)
                i, f, g, o = node(torch.sigmoid(i)), node(torch.sigmoid(f)), node(torch.tanh(g)), node(torch.sigmoid(o))
                c = node(f * carry["c"][:, layer] + i * g)
                h = node(o * torch.tanh(c))
                cs.append(c)
            hs.append(h)
            x = h
        out = {"h": torch.stack(hs, 1)}
        if cs:
            out["c"] = torch.stack(cs, 1)
        return out, self.head(x)


def GRU(vocab_size: int, hidden: int, layers: int = 1, seed: int = 0) -> RecurrentLM:
    """A GRU language model (nn.GRU, fused)."""
    return RecurrentLM(vocab_size, hidden, layers, "gru", seed)


def LSTM(vocab_size: int, hidden: int, layers: int = 1, seed: int = 0) -> RecurrentLM:
    """An LSTM language model (nn.LSTM, fused)."""
    return RecurrentLM(vocab_size, hidden, layers, "lstm", seed)
