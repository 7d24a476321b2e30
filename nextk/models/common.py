"""Plumbing shared by the neural models (not an interface; the interface is nextk.LanguageModel).

A model implements `logits(x)` (teacher-forced, (batch, pos, vocab)) and `_run(tokens, state)` (read
one token per row; state None = fresh) or its own `start`/`step`; this mixin derives `start`, `step`,
`log_probs` (float64), `log_prob` and `sample`. Token id `vocab_size` is the
beginning-of-document marker the network reads before x_0, so t = 0 conditions on the empty prefix.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

from nextk.lm import State, check_tokens, gather_log_prob, make_generator, sample_by_steps


@contextlib.contextmanager
def seeded(seed: int):
    """Initialise parameters from `seed` without touching the caller's global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def snapshot(module: nn.Module) -> dict[str, Tensor]:
    """A detached copy of the module's weights (what a best-so-far checkpoint in memory keeps)."""
    return {key: v.detach().clone() for key, v in module.state_dict().items()}


def linear(layer: nn.Linear, x: Tensor) -> Tensor:
    """`layer(x)` computed in x's dtype (float64 node values for quantised runs, docs/theory.md §6); gradients
    still reach the float32 parameters."""
    bias = None if layer.bias is None else layer.bias.to(x.dtype)
    return nn.functional.linear(x, layer.weight.to(x.dtype), bias)


def shift_right(x: Tensor, bos: int) -> Tensor:
    """Inputs for teacher forcing: [BOS, x_0, …, x_{T−2}]  (batch, pos)."""
    return torch.cat([torch.full_like(x[:, :1], bos), x[:, :-1]], dim=1)


class NeuralLM(nn.Module):
    """Derives log_probs/log_prob/sample from `logits` and `start`/`step`."""

    family: str
    config: dict
    exact = True  # a network's conditionals are its own true probabilities
    length = None  # scores strings of any length (a transformer: up to max_len)

    def log_probs(self, x: Tensor) -> Tensor:
        x = check_tokens(x, self.vocab_size)
        if x.shape[1] == 0:
            return torch.zeros(x.shape[0], 0, self.vocab_size, dtype=torch.float64)
        return torch.log_softmax(self.logits(x).double(), dim=-1)  # (B, T, V)

    def log_prob(self, x: Tensor) -> Tensor:
        x = check_tokens(x, self.vocab_size)
        return gather_log_prob(self.log_probs(x), x)

    @torch.no_grad()
    def sample(self, num: int, length: int | None = None, *, generator=None, prefix=None) -> Tensor:
        if length is None:
            raise ValueError("a model has no length of its own: pass length=")
        return sample_by_steps(self, num, length, make_generator(generator), prefix)

    @torch.no_grad()
    def start(self, batch: int) -> State:
        """Read the beginning-of-document marker: q(· | empty prefix)."""
        return self._run(torch.full((batch,), self.vocab_size, dtype=torch.long), None)

    @torch.no_grad()
    def step(self, state: State, tokens: Tensor) -> tuple[State, Tensor]:
        new = self._run(tokens, state)
        return new, new.log_probs

    @property
    def name(self) -> str:
        """A short label for tables and progress bars, e.g. gru-32."""
        return self.family

    @staticmethod
    def schedule(j: int) -> dict:
        """Size index j → constructor arguments; each trainable family defines its own."""
        raise NotImplementedError

    @classmethod
    def sized(cls, vocab_size: int, j: int, *, seed: int = 0, length: int | None = None):
        """The family's model at size index j of its schedule (docs/theory.md §5; Algorithm 1)."""
        from nextk.errors import InputError

        if j < 1:
            raise InputError(f"size index must be ≥ 1, got {j}")
        return cls(vocab_size, **cls.schedule(j), seed=seed)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())
