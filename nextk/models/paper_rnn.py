"""The paper's RNN (Definition 3) as the universal graph of docs/theory.md §6."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nextk.errors import InputError
from nextk.lm import State
from nextk.models.common import NeuralLM, linear, seeded, shift_right


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
    runs `steps_per_token` internal steps per token (RNN-time τ). docs/theory.md §6, Definition 3.

    The rule (Definition 3 (i)): **hidden nodes read H and the input only; work nodes may read
    everything** (H, W and the input). Universal graph (Fig. 3.1): within that rule every edge is
    present (dense weights, Θ(size²) parameters). One internal step updates every node synchronously
    from its in-neighbours' values at the previous step (u = [H, input], z = [H, W, input], all before
    the step; the input is the one-hot token, BOS included):

      hidden  H ← g ⊙ H + (1 − g) ⊙ c,  g = clip(A_g u + ½, 0, 1),  c = clip(A_c u + (A_a u) ⊙ (A_b u), −1, 1)
      work    W ← [ReLU(A_r z), (A_p z) ⊙ (A_q z)]          (half ReLU, half product nodes)

    The clips are compositions of ReLUs (Appendix C style) and the gate and the (A_a u) ⊙ (A_b u) term
    are products, so each hidden node's transition is a constant composition of ReLU and product
    operations of H and the input; no hidden node ever reads a work node.

    Output (property (ii)): after the τ steps that read x_t, the next-token distribution is
    softmax(A_o [H, W]). W was reset when x_t was read and has since been computed from H and x_t
    only, so the output is a function of the hidden set at the time x_t is read and the remaining
    input — the paper's relaxed (ii) at multiples of τ. The state between tokens is H alone; W is
    rebuilt for every token. The softmax over a linear read-out is nextk's practical device: the
    paper's LM-RNN computes the probability q(x_t | x_<t) itself at an output node.
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
        with seeded(seed):
            # hidden nodes: in-neighbours H and the one-hot input (BOS included), never W
            self.gate_in = nn.Linear(hidden + vocab_size + 1, 4 * hidden)
            # work nodes: in-neighbours H, W and the input
            self.work_in = nn.Linear(size + vocab_size + 1, self.n_relu + 2 * self.n_prod)
            # nextk's practical device: a linear read-out of every node, then softmax
            self.readout = nn.Linear(size, vocab_size)

    @property
    def name(self) -> str:
        return f"paper_rnn-{self.size}n{self.hidden}h" + (f"{self.steps}t" if self.steps > 1 else "")

    @staticmethod
    def schedule(j: int) -> dict:
        """Size index j → constructor arguments (docs/theory.md §5): hidden nodes 2j (linear), total
        size 2j + 2j² (quadratic), 2 internal steps per token."""
        return {"hidden": 2 * j, "size": 2 * j + 2 * j * j, "steps_per_token": 2}

    @classmethod
    def from_options(cls, vocab_size: int, *, width: int, seed: int, size: int = 0, steps_per_token: int = 1, **_):
        """width = hidden nodes; size defaults to 2·width (as many work nodes as hidden ones)."""
        return cls(vocab_size, size=size or 2 * width, hidden=width, steps_per_token=steps_per_token, seed=seed)

    def _hidden(self, h: Tensor, inp: Tensor) -> Tensor:
        """New hidden node values from H and the input only (Definition 3 (i))."""
        g, c, a, b = linear(self.gate_in, torch.cat([h, inp], dim=-1)).chunk(4, dim=-1)
        g = hard_sigmoid(g + 0.5)
        return g * h + (1 - g) * hard_tanh(c + a * b)

    def _work(self, h: Tensor, w: Tensor, inp: Tensor) -> Tensor:
        """New work node values from H, W and the input: ReLU nodes, then product nodes."""
        r, p, q = linear(self.work_in, torch.cat([h, w, inp], dim=-1)).split(
            [self.n_relu, self.n_prod, self.n_prod], dim=-1
        )
        return torch.cat([relu(r), p * q], dim=-1)

    def _token(self, h: Tensor, tokens: Tensor, node=None) -> tuple[Tensor, Tensor]:
        """Read one token: reset the work nodes, run τ synchronous internal steps; returns (H, W).
        `node`, if given, is applied to every node value after every internal step (bit size, §6)."""
        inp = nn.functional.one_hot(tokens.long(), self.vocab_size + 1).to(h.dtype)  # (B, V+1)
        w = h.new_zeros(h.shape[0], self.n_relu + self.n_prod)  # work nodes reset at each token
        for _ in range(self.steps):
            h, w = self._hidden(h, inp), self._work(h, w, inp)  # both from the previous step's values
            if node is not None:
                h, w = node(h), node(w)
        return h, w

    def _out(self, h: Tensor, w: Tensor) -> Tensor:
        return linear(self.readout, torch.cat([h, w], dim=-1))

    def node_init(self, batch: int, dtype: torch.dtype = torch.float32) -> dict[str, Tensor]:
        """Node values start at 0, in `dtype`: every later node value is computed in it (float64 for `quantize`)."""
        return {"h": torch.zeros(batch, self.hidden, dtype=dtype)}

    def node_step(self, carry: dict[str, Tensor], tokens: Tensor, node) -> tuple[dict[str, Tensor], Tensor]:
        """One token through the graph with `node` applied to every node value: (carry, logits (B, V))."""
        h, w = self._token(carry["h"], tokens, node)
        return {"h": h}, self._out(h, w)

    def logits(self, x: Tensor) -> Tensor:
        h = x.new_zeros(x.shape[0], self.hidden, dtype=torch.float32)
        inp = shift_right(x, self.vocab_size)
        outs = []
        for t in range(x.shape[1]):
            h, w = self._token(h, inp[:, t])
            outs.append(self._out(h, w))
        return torch.stack(outs, dim=1)  # (B, T, V)

    def _state(self, h: Tensor, w: Tensor) -> State:
        return State({"log_probs": torch.log_softmax(self._out(h, w).double(), dim=-1), "h": h})

    @torch.no_grad()
    def start(self, batch: int) -> State:
        h = torch.zeros(batch, self.hidden)
        return self._state(*self._token(h, torch.full((batch,), self.vocab_size, dtype=torch.long)))

    @torch.no_grad()
    def step(self, state: State, tokens: Tensor) -> tuple[State, Tensor]:
        new = self._state(*self._token(state.tensors["h"], tokens))
        return new, new.log_probs
