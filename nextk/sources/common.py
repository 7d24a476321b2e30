"""Plumbing every exact source shares: encoding, chain-rule log-probabilities, sampling.

A source is an exact language model (docs/theory.md §1): float64 conditionals that are the true ones.
Concrete sources implement `start`/`step` (and may override `sample` with a faster exact sampler);
`TokenSource` derives the rest of the LanguageModel interface from them. After a prefix of
probability zero the conditional is undefined; sources then return uniform rows so that every row
still sums to 1, and the zero shows up where it belongs, in the token that made the prefix impossible.
"""

from __future__ import annotations

import inspect
import math

import torch
from torch import Tensor

from nextk.errors import InputError, checked_arguments
from nextk.lm import State, check_tokens, gather_log_prob, log_probs_by_steps, make_generator, sample_by_steps

MAX_PARAMETER = 10**6  # the largest integer parameter (length, depth, digits, …) a source takes, seeds aside


class TokenSource:
    """Shared plumbing for sources (not an interface): needs vocab, length, start, step."""

    vocab: list[str]
    length: int
    exact: bool = True

    def __init_subclass__(cls, **kwargs):
        """Every source's constructor checks its arguments' types first: Dyck(length="12") is an InputError
        naming the parameter, not a TypeError from deep inside."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "__nextk_checked__", False):
            cls.__init__ = checked_arguments(init, int_limit=MAX_PARAMETER)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> Tensor:
        """String → LongTensor (pos,). Tokens are single characters of `vocab`."""
        index = {tok: i for i, tok in enumerate(self.vocab)}
        if not isinstance(text, str):
            raise InputError(f"encode takes a string, got {type(text).__name__}")
        if getattr(self, "length", None) is not None and len(text) > self.length:
            raise InputError(f"text of {len(text)} characters is longer than this source's documents ({self.length})")
        try:
            return torch.tensor([index[c] for c in text], dtype=torch.long)
        except KeyError as e:
            raise InputError(f"character {e.args[0]!r} is not in this source's vocabulary {self.vocab}") from None

    def decode(self, tokens: Tensor) -> str | list[str]:
        """LongTensor (pos,) → string; (batch, pos) → list of strings."""
        tokens = torch.as_tensor(tokens)
        if tokens.dim() == 2:
            return [self.decode(row) for row in tokens]
        return "".join(self.vocab[int(i)] for i in tokens)

    def log_probs(self, x: Tensor) -> Tensor:
        return log_probs_by_steps(self, check_tokens(x, self.vocab_size, self.length))

    def log_prob(self, x: Tensor) -> Tensor:
        x = check_tokens(x, self.vocab_size, self.length)
        return gather_log_prob(self.log_probs(x), x)

    def sample(self, num: int, length: int | None = None, *, generator=None, prefix=None) -> Tensor:
        length = self._length(length)
        return sample_by_steps(self, num, length, make_generator(generator), prefix)

    def _length(self, length: int | None) -> int:
        if length is None:
            return self.length
        if not 0 <= length <= self.length:
            raise InputError(f"length={length} but this source's documents have {self.length} tokens")
        return length

    @property
    def params(self) -> dict:
        """Every constructor parameter and its value (what rebuilds this source; results.json records it).
        Sources keep each parameter as a same-named attribute."""
        names = [n for n in inspect.signature(type(self).__init__).parameters if n != "self"]
        return {n: getattr(self, n) for n in names}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"


def log_weights_to_log_probs(log_w: Tensor) -> Tensor:
    """Normalise rows of log-weights (B, V); rows with no mass become uniform (undefined conditional)."""
    total = torch.logsumexp(log_w, dim=-1, keepdim=True)
    dead = torch.isneginf(total).squeeze(-1)
    out = log_w - total
    if dead.any():
        out[dead] = -math.log(log_w.shape[-1])
    return out


def counts_to_log_probs(counts: Tensor) -> Tensor:
    """Exact integer counts (B, V) → log conditionals in float64; all-zero rows become uniform."""
    counts = counts.to(torch.float64)
    return log_weights_to_log_probs(counts.log())


def digits_to_int(tokens: Tensor) -> Tensor:
    """Rows of decimal digit tokens (B, d) → int64 values (B,)."""
    d = tokens.shape[1]
    powers = 10 ** torch.arange(d - 1, -1, -1, dtype=torch.long)
    return (tokens.long() * powers).sum(dim=1)


def new_state(log_probs: Tensor, **tensors: Tensor) -> State:
    return State({"log_probs": log_probs, **tensors})


MAX_VOCAB = 0x10FFFF - 0x100  # tokens are single characters (from U+0100 on when more than 26): at most this many


def check_source_size(what: str, vocab_size: int, need: float) -> None:
    """Before a source allocates: its vocabulary must fit in single characters and its tables (`need` bytes)
    in memory, else a TooLargeError with the figure."""
    from nextk.errors import TooLargeError, check_memory

    if vocab_size > MAX_VOCAB:
        raise TooLargeError(f"{what}: vocab_size {vocab_size:,} exceeds the {MAX_VOCAB:,} single-character tokens")
    check_memory(need, f"{what} and {vocab_size:,} tokens")
