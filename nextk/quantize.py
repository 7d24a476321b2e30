"""Bit size (docs/theory.md §6, Definition 4): every node value in signed fixed point at every step.

    Q(x) = sign(x) · min(2^I − 2^(−F), ⌊|x| · 2^F⌋ / 2^F),   bit size b = 1 + I + F.

`quantize(model, I, F)` wraps a recurrent model (PaperRNN, GRU, LSTM) into a LanguageModel whose
hidden and work nodes (gates and states for GRU/LSTM) are quantised after every internal step. With
`ste=True` the rounding passes gradients straight through (quantisation-aware training, Algorithm 2).
Every node value of a quantised run is computed in float64 (`NODE_DTYPE`, the weights cast to it), so a
format is what it says up to I + F = 52 bits; in float32 anything beyond I + F = 24 would be nominal.

Two devices here are nextk's own, not the paper's (docs/theory.md §6):
- the probability floor: output probabilities are floored at MIN_PROB and renormalised so that they
  stay valid at any bit size. The paper needs no floor: its constructed models' probabilities are
  bounded below by construction (Lemma 15; Lemmas 13–14 bound the additive errors of products).
- saturation: a value beyond ±(2^I − 2^−F) is clipped there. The paper takes I large enough that
  nothing overflows.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from nextk.console import quiet
from nextk.errors import InputError
from nextk.lm import State
from nextk.models.common import NeuralLM, shift_right

NODE_DTYPE = torch.float64  # node values of a quantised run: fixed point with I + F ≤ 52 bits is exact in it
MIN_PROB = 1e-6  # nextk's own device (not the paper's): output probabilities floored here, then renormalised


def fixed_point(x: Tensor, int_bits: int, frac_bits: int) -> Tensor:
    """Signed fixed point with I integer and F fractional bits: rounds toward zero, saturates at
    ±(2^I − 2^−F). The saturation is nextk's choice (the paper takes I large enough that nothing
    overflows). Exact in float64 for I + F ≤ 52."""
    if int_bits < 0 or frac_bits < 0:
        raise InputError(f"int_bits and frac_bits must be ≥ 0, got {int_bits}, {frac_bits}")
    scale = 2.0**frac_bits
    top = 2.0**int_bits - 2.0**-frac_bits
    return torch.sign(x) * torch.clamp(torch.floor(x.abs() * scale) / scale, max=top)


def bit_size(int_bits: int, frac_bits: int) -> int:
    return 1 + int_bits + frac_bits


@runtime_checkable
class NodeModel(Protocol):
    """A graph RNN whose every node value can be intercepted (PaperRNN, GRU, LSTM, any future graph RNN):
    `node_init(batch, dtype)` gives the carried node values, `node_step(carry, tokens, node)` reads one token
    with `node` applied to every node value after every internal step → (carry, logits (B, V)), computing
    every node value in the carry's dtype."""

    vocab_size: int

    def node_init(self, batch: int, dtype: torch.dtype = torch.float32) -> dict[str, Tensor]: ...

    def node_step(self, carry: dict[str, Tensor], tokens: Tensor, node) -> tuple[dict[str, Tensor], Tensor]: ...


class Quantized(NeuralLM):
    """A recurrent model run with every node value in fixed point (I, F); wraps, does not copy."""

    def __init__(self, model, int_bits: int, frac_bits: int, ste: bool = False, min_prob: float = MIN_PROB):
        super().__init__()
        if not isinstance(model, NodeModel):
            raise InputError(
                f"quantize needs a graph RNN with node_init/node_step (PaperRNN, GRU, LSTM), not {type(model).__name__}"
            )
        if not 0 < min_prob < 1 / model.vocab_size:
            raise InputError(f"min_prob must be in (0, 1/V), got {min_prob}")
        fixed_point(torch.zeros(1), int_bits, frac_bits)  # validates the bits
        self.model, self.int_bits, self.frac_bits, self.ste, self.min_prob = model, int_bits, frac_bits, ste, min_prob
        self.vocab_size = model.vocab_size
        self.family = "quantized"
        self.config = dict(int_bits=int_bits, frac_bits=frac_bits, bit_size=bit_size(int_bits, frac_bits), ste=ste)

    @property
    def name(self) -> str:
        return f"{self.model.name}-q{self.int_bits}.{self.frac_bits}"

    def node(self, x: Tensor) -> Tensor:
        q = fixed_point(x, self.int_bits, self.frac_bits)
        return x + (q - x).detach() if self.ste else q

    def _log_softmax(self, logits: Tensor) -> Tensor:
        """Valid probabilities whatever the bits: floor at min_prob, renormalise (float64). nextk's own
        device: the paper bounds its models' probabilities below by construction (Lemma 15)."""
        p = torch.softmax(logits.double(), dim=-1).clamp_min(self.min_prob)
        return (p / p.sum(-1, keepdim=True)).log()

    def logits(self, x: Tensor) -> Tensor:
        """Already-normalised log-probabilities (B, T, V) from the quantised run (teacher forced); the
        log_softmax that NeuralLM.log_probs applies to them is the identity."""
        inp = shift_right(x, self.vocab_size)
        carry = self.model.node_init(x.shape[0], NODE_DTYPE)
        outs = []
        for t in range(x.shape[1]):
            carry, logits = self.model.node_step(carry, inp[:, t], self.node)
            outs.append(logits)
        return self._log_softmax(torch.stack(outs, dim=1))

    def _state(self, carry: dict[str, Tensor], logits: Tensor) -> State:
        return State({"log_probs": self._log_softmax(logits), **{"c." + k: v for k, v in carry.items()}})

    @torch.no_grad()
    def start(self, batch: int) -> State:
        carry, logits = self.model.node_step(
            self.model.node_init(batch, NODE_DTYPE), torch.full((batch,), self.vocab_size), self.node
        )
        return self._state(carry, logits)

    @torch.no_grad()
    def step(self, state: State, tokens: Tensor) -> tuple[State, Tensor]:
        carry = {k[2:]: v for k, v in state.tensors.items() if k.startswith("c.")}
        carry, logits = self.model.node_step(carry, tokens, self.node)
        new = self._state(carry, logits)
        return new, new.log_probs


def quantize(model, int_bits: int, frac_bits: int, *, ste: bool = False, min_prob: float = MIN_PROB) -> Quantized:
    """`model` with every node value in signed fixed point (docs/theory.md §6); a LanguageModel. nextk's own
    devices, not the paper's: probabilities floored at `min_prob` and renormalised (the paper bounds them by
    construction, Lemma 15) and values saturated at ±(2^I − 2^−F) (the paper takes I large enough)."""
    return Quantized(model, int_bits, frac_bits, ste=ste, min_prob=min_prob)


def bits_sweep(
    model, source, bits: list[tuple[int, int]], *, k: int, num_docs: int = 200, seed: int = 0, log=quiet
) -> list[dict]:
    """Per (int_bits, frac_bits), and first for the unquantised model (the reference row): the loss and
    the measurement panel at window k (`nextk.evaluation.measure_model`: excess loss, checkers, TV
    where V^k fits, Theorem 3 bound; no learned distinguisher)."""
    from nextk.evaluation import measure_model
    from nextk.measure import loss

    for ib, fb in bits:
        fixed_point(torch.zeros(1), ib, fb)  # every setting is validated before any work
    rows = []
    for ib, fb in [(None, None), *bits]:
        lm = model if ib is None else quantize(model, ib, fb)
        log(f"  bits {'float' if ib is None else bit_size(ib, fb)}:")
        rows.append(
            {
                "int_bits": ib,
                "frac_bits": fb,
                "bit_size": None if ib is None else bit_size(ib, fb),
                "loss": loss(source, lm, num_docs=num_docs, seed=seed + 1).to_dict(),
                **measure_model(source, lm, [k], num_docs=num_docs, seed=seed, learned=False, log=log),
            }
        )
    return rows
