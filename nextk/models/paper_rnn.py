"""The paper's RNN (Definition 3) as the universal graph of THEORY.md §6."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nextk.errors import InputError
from nextk.lm import State
from nextk.models.common import NeuralLM, seeded


def relu(x: Tensor) -> Tensor:
    return torch.relu(x)


def hard_sigmoid(x: Tensor) -> Tensor:
    """clip(x, 0, 1) = ReLU(x) − ReLU(x − 1): a gate built from two ReLUs (Appendix C style)."""
    return relu(x) - relu(x - 1)


def hard_tanh(x: Tensor) -> Tensor:
    """clip(x, −1, 1) = ReLU(x + 1) − ReLU(x − 1) − 1."""
    return relu(x + 1) - relu(x - 1) - 1


class PaperRNN(NeuralLM):
    """An RNN of `size` nodes; a hidden node set H of `hidden` nodes carries all state between
    tokens; the other `size − hidden` work nodes are reset to 0 whenever a token is read; the net
    runs `steps_per_token` internal steps per token (RNN-time τ). THEORY.md §6, Definition 3.

    Universal graph: every node reads every hidden node, every work node and the input (one-hot
    token), so the weights are dense and the parameter count is Θ(size²). One internal step:
      work nodes  W ← [ReLU(A_r z), (A_p z) ⊙ (A_q z)]          (half ReLU, half product nodes)
      hidden      H ← g ⊙ H + (1 − g) ⊙ c,  g = clip(A_g z', 0, 1), c = clip(A_c z', −1, 1)
    with z = [H, W, input] before and z' = [H, W_new, input] after the work update; the clips are
    compositions of ReLUs and the gate is a product. Output: softmax of a linear read-out of H.
    """

    def __init__(self, vocab_size: int, size: int, hidden: int, steps_per_token: int = 1, seed: int = 0):
        super().__init__()
        work = size - hidden
        if hidden < 1 or work < 2 or steps_per_token < 1:
            raise InputError(
                f"need hidden ≥ 1, size − hidden ≥ 2 work nodes and steps_per_token ≥ 1; "
                f"got size={size}, hidden={hidden}, steps_per_token={steps_per_token}"
            )
        self.family = "paper_rnn"
        self.config = dict(vocab_size=vocab_size, size=size, hidden=hidden, steps_per_token=steps_per_token, seed=seed)
        self.vocab_size, self.size, self.hidden, self.steps = vocab_size, size, hidden, steps_per_token
        self.n_relu = work - work // 2
        self.n_prod = work // 2
        fan_in = hidden + work + vocab_size + 1  # every node reads H, W and the one-hot input
        with seeded(seed):
            self.work_in = nn.Linear(fan_in, self.n_relu + 2 * self.n_prod)
            self.gate_in = nn.Linear(fan_in, 2 * hidden)
            self.readout = nn.Linear(hidden, vocab_size)

    def _token(self, h: Tensor, tokens: Tensor, node=None) -> Tensor:
        """Read one token: reset the work nodes, run τ internal steps; returns the new H (B, hidden).
        `node`, if given, is applied to every node value after every internal step (bit size, §6)."""
        inp = nn.functional.one_hot(tokens.long(), self.vocab_size + 1).to(h.dtype)  # (B, V+1)
        w = h.new_zeros(h.shape[0], self.n_relu + self.n_prod)  # work nodes reset at each token
        for _ in range(self.steps):
            a = self.work_in(torch.cat([h, w, inp], dim=-1))
            r, p, q = a.split([self.n_relu, self.n_prod, self.n_prod], dim=-1)
            w = torch.cat([relu(r), p * q], dim=-1)
            if node is not None:
                w = node(w)
            g, c = self.gate_in(torch.cat([h, w, inp], dim=-1)).chunk(2, dim=-1)
            g = hard_sigmoid(g + 0.5)
            h = g * h + (1 - g) * hard_tanh(c)
            if node is not None:
                h = node(h)
        return h

    def node_init(self, batch: int) -> dict[str, Tensor]:
        return {"h": torch.zeros(batch, self.hidden)}

    def node_step(self, carry: dict[str, Tensor], tokens: Tensor, node) -> tuple[dict[str, Tensor], Tensor]:
        """One token through the graph with `node` applied to every node value: (carry, logits (B, V))."""
        h = self._token(carry["h"], tokens, node)
        return {"h": h}, self.readout(h)

    def logits(self, x: Tensor) -> Tensor:
        h = x.new_zeros(x.shape[0], self.hidden, dtype=torch.float32)
        h = self._token(h, torch.full_like(x[:, 0], self.vocab_size))
        outs = []
        for t in range(x.shape[1]):
            outs.append(self.readout(h))
            if t + 1 < x.shape[1]:
                h = self._token(h, x[:, t])
        return torch.stack(outs, dim=1)  # (B, T, V)

    def _state(self, h: Tensor) -> State:
        return State({"log_probs": torch.log_softmax(self.readout(h).double(), dim=-1), "h": h})

    @torch.no_grad()
    def start(self, batch: int) -> State:
        h = torch.zeros(batch, self.hidden)
        return self._state(self._token(h, torch.full((batch,), self.vocab_size, dtype=torch.long)))

    @torch.no_grad()
    def step(self, state: State, tokens: Tensor) -> tuple[State, Tensor]:
        new = self._state(self._token(state.tensors["h"], tokens))
        return new, new.log_probs
