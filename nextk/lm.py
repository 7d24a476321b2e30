"""The one language-model interface (docs/theory.md §1) and the helpers every implementation shares.

Everything that assigns next-token probabilities — exact sources, trained networks, boosted and
quantised models — satisfies `LanguageModel`, so measuring code never branches on type.

Incremental decoding works on `State`. **The State contract**, which every LanguageModel honours
(sources, networks and every wrapper: boosted, quantised, adapters; tests/test_contract.py checks it
for each one):

1. A State is a batch of *independent rows*. Every tensor in it has the batch as axis 0; row b holds
   everything about one prefix and nothing about any other row.
2. Each row is at its own position. Rows read at different lengths may be concatenated
   (`State.cat`), indexed (`state[idx]`) and repeated (`state.repeat(n)`), and `step` advances every
   row by one token from wherever that row is. A model never reads "the" position from row 0.
3. Row results never depend on what else is in the batch: stepping a row inside any batch gives the
   same numbers as stepping it alone (to the float tolerance of the model's dtype).
4. `state.log_probs` (batch, vocab) are the next-token log-probabilities of the prefix each row has
   read: `start(batch)` gives the empty prefix, `step(state, tokens)` reads one token per row and
   returns (new state, its log_probs). Stepping along x gives exactly `log_probs(x)`, and
   `log_prob(x)` is the chain-rule sum of the gathered conditionals.
5. Tensors that grow with the position (a transformer's key/value cache) may differ in length across
   the states being concatenated: `State.cat` right-pads them with zeros, and the model must treat
   padding as absent (the transformer masks attention by each row's own position).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from nextk.errors import InputError
from nextk.threads import apply_policy

apply_policy()  # every library entry point runs on a deliberate thread count (nextk/threads.py)


@dataclass(frozen=True)
class State:
    """Decoder states for a batch. Every tensor in `tensors` has the batch as axis 0."""

    tensors: dict[str, Tensor]

    @property
    def log_probs(self) -> Tensor:
        """log q(v | prefix read so far), shape (batch, vocab)."""
        return self.tensors["log_probs"]

    @property
    def batch_size(self) -> int:
        return self.log_probs.shape[0]

    def __getitem__(self, idx) -> State:
        if isinstance(idx, int):
            idx = slice(idx, idx + 1)
        return State({k: v[idx] for k, v in self.tensors.items()})

    def repeat(self, n: int) -> State:
        """Each row repeated n times consecutively: row b becomes rows b*n … b*n+n−1."""
        return State({k: v.repeat_interleave(n, dim=0) for k, v in self.tensors.items()})

    @staticmethod
    def cat(states: list[State]) -> State:
        """Rows of all states, in order. Tensors whose non-batch shapes differ (caches that grow with
        the position) are right-padded with zeros to the largest shape (contract rule 5)."""
        keys = states[0].tensors.keys()
        return State({k: _cat_padded([s.tensors[k] for s in states]) for k in keys})


def _cat_padded(tensors: list[Tensor]) -> Tensor:
    shapes = {t.shape[1:] for t in tensors}
    if len(shapes) > 1:
        top = [max(t.shape[d] for t in tensors) for d in range(1, tensors[0].dim())]
        padded = []
        for t in tensors:
            pad = []
            for d in reversed(range(1, t.dim())):  # F.pad lists the last axis first
                pad += [0, top[d - 1] - t.shape[d]]
            padded.append(torch.nn.functional.pad(t, pad))
        tensors = padded
    return torch.cat(tensors, dim=0)


@runtime_checkable
class LanguageModel(Protocol):
    """Next-token conditionals q(v | x_{<t}) over the alphabet {0, …, vocab_size−1} (docs/theory.md §1).

    `exact`: True when the conditionals are this model's true probabilities (every source with a known
    distribution, every network, every wrapper of exact models); False for a source that can only be
    sampled (Text), whose `log_probs`/`step` raise NotExactError.
    `length`: the document length the model is defined for (a source's n, a boosted model's n), or
    None for a network that scores strings of any length.
    """

    vocab_size: int
    exact: bool
    length: int | None

    def log_probs(self, x: Tensor) -> Tensor:
        """x: LongTensor (batch, pos) → log q(v | x_{<t}) for every t, shape (batch, pos, vocab)."""
        ...

    def log_prob(self, x: Tensor) -> Tensor:
        """log q̄ of whole strings x (batch, pos), float64 (batch,)."""
        ...

    def sample(self, num: int, length: int | None = None, *, generator=None, prefix=None) -> Tensor:
        """num strings of `length` tokens (batch, pos); `prefix` (pos0,) or (num, pos0) is kept."""
        ...

    def start(self, batch: int) -> State: ...

    def step(self, state: State, tokens: Tensor) -> tuple[State, Tensor]: ...


# ---- helpers shared by implementations (functions, not a base class) -------------------------------


def check_tokens(x: Tensor, vocab_size: int, length: int | None = None, name: str = "x") -> Tensor:
    """Validate a batch of token strings; returns it as int64 (batch, pos)."""
    if not isinstance(x, Tensor):
        x = torch.as_tensor(x)
    if x.dim() == 1:
        x = x.unsqueeze(0)
    if x.dim() != 2:
        raise InputError(f"{name} must have shape (batch, pos), got {tuple(x.shape)}")
    if x.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise InputError(f"{name} must hold integer token ids, got dtype {x.dtype}")
    x = x.long()
    if x.numel() and (x.min() < 0 or x.max() >= vocab_size):
        bad = x[(x < 0) | (x >= vocab_size)][0].item()
        raise InputError(f"{name} holds token id {bad}, outside the vocabulary 0..{vocab_size - 1}")
    if length is not None and x.shape[1] > length:
        raise InputError(f"{name} has {x.shape[1]} positions but this model's length is {length}")
    return x


def gather_log_prob(log_probs: Tensor, x: Tensor) -> Tensor:
    """Sum of log q(x_t | x_{<t}) over t (chain rule), float64 (batch,)."""
    picked = log_probs.gather(-1, x.unsqueeze(-1)).squeeze(-1).double()  # (B, T)
    return picked.sum(dim=1)


def log_probs_by_steps(model: LanguageModel, x: Tensor) -> Tensor:
    """log_probs through start/step, one position at a time (the reference path, and the way sources
    compute theirs). (B, T, V)."""
    if x.shape[1] == 0:
        return torch.zeros(x.shape[0], 0, model.vocab_size, dtype=torch.float64)
    state = model.start(x.shape[0])
    out = []
    for t in range(x.shape[1]):
        out.append(state.log_probs)
        if t + 1 < x.shape[1]:
            state, _ = model.step(state, x[:, t])
    return torch.stack(out, dim=1)


def states_along(model: LanguageModel, x: Tensor) -> list[State]:
    """States after reading x[:, :t] for t = 0 … T: the cache that advantage estimation branches from."""
    state = model.start(x.shape[0])
    states = [state]
    for t in range(x.shape[1]):
        state, _ = model.step(state, x[:, t])
        states.append(state)
    return states


def sample_categorical(log_probs: Tensor, generator: torch.Generator | None) -> Tensor:
    """One draw per row from exp(log_probs) (batch, vocab) → (batch,), on the generator's device.

    The estimators keep documents, windows and distinguishers on the CPU and seed CPU generators, so
    a model on a GPU gives the same draws as on the CPU (its probabilities come over, one row each)."""
    probs = log_probs.double().exp()
    if generator is not None and probs.device != generator.device:
        probs = probs.to(generator.device)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def normalize_prefix(prefix, num: int, vocab_size: int) -> Tensor:
    if prefix is None:
        return torch.zeros(num, 0, dtype=torch.long)
    prefix = torch.as_tensor(prefix)
    if prefix.dim() == 1:
        prefix = prefix.unsqueeze(0).expand(num, -1)
    prefix = check_tokens(prefix, vocab_size, name="prefix")
    if prefix.shape[0] != num:
        raise InputError(f"prefix has {prefix.shape[0]} rows, expected 1 or num={num}")
    return prefix


def sample_by_steps(
    model: LanguageModel, num: int, length: int, generator: torch.Generator | None, prefix=None
) -> Tensor:
    """Ancestral sampling through start/step; the prefix is read, then kept in the output."""
    if length < 0 or num < 0:
        raise InputError(f"num and length must be non-negative, got num={num}, length={length}")
    prefix = normalize_prefix(prefix, num, model.vocab_size)
    if prefix.shape[1] > length:
        raise InputError(f"prefix has {prefix.shape[1]} tokens, more than length={length}")
    out = torch.empty(num, length, dtype=torch.long)
    state = model.start(num)
    for t in range(length):
        tok = prefix[:, t] if t < prefix.shape[1] else sample_categorical(state.log_probs, generator)
        out[:, t] = tok
        if t + 1 < length:
            state, _ = model.step(state, tok)
    return out


def make_generator(seed: int | torch.Generator | None) -> torch.Generator:
    """An explicit generator from a seed (library code never touches global random state)."""
    if isinstance(seed, torch.Generator):
        return seed
    g = torch.Generator()
    g.manual_seed(0 if seed is None else int(seed))
    return g
