"""Text source: character-level windows of a user's text file (no exact probabilities)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

from nextk.errors import InputError, NotExactError
from nextk.lm import State, make_generator, normalize_prefix
from nextk.sources.corpus import read_utf8

DEFAULT_TEXT = "builtin:sample.txt"


class Text:
    """Uniformly placed windows of `length` characters from a text file; the vocabulary is the
    file's sorted character set. Sampling works; `log_probs`/`log_prob`/`step` raise NotExactError
    because the true distribution of text is unknown. `path="builtin:sample.txt"` uses the
    paragraph shipped with nextk.

    >>> src = Text(DEFAULT_TEXT, length=12)
    >>> len(src.decode(src.sample(1, generator=0)[0]))
    12
    """

    exact = False

    def __init__(self, path: str | Path = DEFAULT_TEXT, length: int = 64):
        if str(path).startswith("builtin:"):
            text = resources.files("nextk.data").joinpath(str(path)[8:]).read_text(encoding="utf-8")
        else:
            p = Path(path)
            if not p.is_file():
                raise InputError(f"text file {str(p)!r} does not exist")
            text = read_utf8(p)
        if not text:
            raise InputError(f"text file {str(path)!r} is empty")
        if length < 1:
            raise InputError(f"length must be ≥ 1 token, got {length}")
        if length > len(text):
            raise InputError(f"length={length} but the text has {len(text)} characters")
        self.path, self.length, self.text = str(path), length, text
        self.vocab = sorted(set(text))
        index = {c: i for i, c in enumerate(self.vocab)}
        self.tokens = torch.tensor([index[c] for c in text], dtype=torch.long)
        self.checks: dict = {}

    @property
    def params(self) -> dict:
        return {"path": self.path, "length": self.length}

    def __repr__(self) -> str:
        return f"Text(path={self.path!r}, length={self.length}, {len(self.text):,} characters)"

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> Tensor:
        index = {c: i for i, c in enumerate(self.vocab)}
        missing = [c for c in text if c not in index]
        if missing:
            raise InputError(f"character {missing[0]!r} is not in the text's vocabulary")
        return torch.tensor([index[c] for c in text], dtype=torch.long)

    def decode(self, tokens: Tensor):
        tokens = torch.as_tensor(tokens)
        if tokens.dim() == 2:
            return [self.decode(r) for r in tokens]
        return "".join(self.vocab[int(i)] for i in tokens)

    def sample(self, num: int, length: int | None = None, *, generator=None, prefix=None) -> Tensor:
        length = self.length if length is None else length
        if not 0 <= length <= len(self.text):
            raise InputError(f"length={length} but the text has {len(self.text)} characters")
        if prefix is not None and normalize_prefix(prefix, num, self.vocab_size).shape[1] > 0:
            raise NotExactError("Text cannot sample continuations of a prefix: its conditionals are unknown")
        offsets = torch.randint(0, len(self.text) - length + 1, (num,), generator=make_generator(generator))
        return self.tokens[offsets.unsqueeze(1) + torch.arange(length)]  # (num, length)

    def _no_exact(self, *args, **kwargs):
        raise NotExactError(f"Text({self.path!r}) has no exact probabilities; use it to train, not to score")

    log_probs = log_prob = start = _no_exact

    def step(self, state: State, tokens: Tensor):
        self._no_exact()
