"""Next-k-token distinguishers for real text at any vocabulary size (docs/theory.md §2), and user ones.

Built-in text statistics (each `d(x, start, k) → BoolTensor (batch,)`, reading the prefix and the
window only: `clip` cuts x after the window, so nothing later can influence them):

- `NgramRepeat(n)`: some n-gram inside the window occurs twice in it (repetition, loops);
- `PrefixCopy(span)`: the window's first min(span, k) tokens occur as a contiguous span of the prefix
  (copying from the context);
- `SeenInPrefix(share)`: at least `share` of the window's tokens already occur in the prefix;
- `RareTokens(vocab_size)`: the window's mean unigram log-frequency is below a threshold; counts and
  threshold (just above the median over true windows, so it accepts about half of them) are fitted by
  `calibrate(documents, k)` on other documents than the ones it is measured on.

`BUILTIN` names them for the command line; `resolve(spec, vocab_size)` turns a name or a user's
"module:function" (or "path/to/file.py:function") into a distinguisher, and `validate(d, k, v)` checks
that a callable has the calling convention before any estimate runs.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path

import torch
from torch import Tensor

from nextk.distinguishers.checks import clip
from nextk.errors import InputError


def window_tokens(x: Tensor, starts: Tensor, k: int) -> Tensor:
    """The window of every row: x[b, starts[b] : starts[b] + k], (B, k)."""
    return x.gather(1, starts.unsqueeze(1) + torch.arange(k, device=x.device))


def at_least_one(what: str, value: int) -> int:
    if value < 1:
        raise InputError(f"{what} must be ≥ 1, got {value}")
    return value


def never(x: Tensor) -> Tensor:
    return torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)


class WindowStatistic:
    """The calling convention of every built-in: x is cut after the window (`clip`), then judged."""

    def __call__(self, x: Tensor, start, k: int) -> Tensor:
        x, starts = clip(x, start, k)
        return self.judge(x, starts, k)


class NgramRepeat(WindowStatistic):
    """1 iff some n-gram lying inside the window occurs at two positions of the window."""

    def __init__(self, n: int = 2):
        self.n, self.name = at_least_one("n-gram size", n), f"repeated_{n}gram"

    def judge(self, x: Tensor, starts: Tensor, k: int) -> Tensor:
        if k < self.n + 1:
            return never(x)
        grams = window_tokens(x, starts, k).unfold(1, self.n, 1)  # (B, g, n)
        same = (grams[:, :, None, :] == grams[:, None, :, :]).all(-1)  # (B, g, g)
        g = grams.shape[1]
        return (same & ~torch.eye(g, dtype=torch.bool, device=x.device)).flatten(1).any(1)


class PrefixCopy(WindowStatistic):
    """1 iff the window's first min(span, k) tokens occur, in order, as a span of the prefix."""

    def __init__(self, span: int = 4):
        self.span, self.name = at_least_one("span", span), f"prefix_copy_{span}"

    def judge(self, x: Tensor, starts: Tensor, k: int) -> Tensor:
        span = min(self.span, k)
        if x.shape[1] < span:
            return never(x)
        head = window_tokens(x, starts, span)  # (B, L)
        spans = x.unfold(1, span, 1)  # (B, T − L + 1, L): the span starting at every column
        match = (spans == head[:, None, :]).all(-1)
        inside = torch.arange(spans.shape[1], device=x.device)[None, :] + span <= starts[:, None]  # in the prefix
        return (match & inside).any(1)


class SeenInPrefix(WindowStatistic):
    """1 iff at least `share` of the window's tokens already occur somewhere in the prefix."""

    def __init__(self, share: float = 0.5):
        if not 0 < share <= 1:
            raise InputError(f"share must be in (0, 1], got {share}")
        self.share, self.name = share, f"seen_in_prefix_{round(100 * share)}"

    def judge(self, x: Tensor, starts: Tensor, k: int) -> Tensor:
        w = window_tokens(x, starts, k)
        prefix = torch.where(torch.arange(x.shape[1], device=x.device)[None, :] < starts[:, None], x, -1)
        seen = (w[:, :, None] == prefix[:, None, :]).any(-1)  # (B, k)
        return seen.double().mean(1) >= self.share - 1e-12


class RareTokens(WindowStatistic):
    """1 iff the window's mean unigram log-frequency is below `threshold` (a window of rare tokens).
    `calibrate(documents, k)` counts the tokens of other documents (add-one smoothing) and sets the
    threshold just above the median over their true windows (halfway to the next mean)."""

    def __init__(self, vocab_size: int):
        self.vocab_size, self.name = vocab_size, "rare_tokens"
        self.log_freq: Tensor | None = None
        self.threshold: float | None = None

    def calibrate(self, documents: Tensor, k: int) -> RareTokens:
        documents = torch.as_tensor(documents).long().cpu()
        counts = torch.bincount(documents.flatten(), minlength=self.vocab_size).double() + 1
        self.log_freq = (counts / counts.sum()).log()
        m = documents.shape[1] - k + 1
        if m < 1:
            raise InputError(f"k={k} is longer than the calibration documents ({documents.shape[1]} tokens)")
        means = self.log_freq[documents].unfold(1, k, 1).mean(-1).flatten()  # every true window
        median = means.median()
        above = means[means > median]
        # halfway to the next value: no window mean sits on the threshold, whatever the summation order
        self.threshold = ((median + above.min()) / 2 if len(above) else median + 1.0).item()
        return self

    def judge(self, x: Tensor, starts: Tensor, k: int) -> Tensor:
        if self.log_freq is None:
            raise InputError("RareTokens needs calibrate(documents, k) on documents it is not measured on")
        lf = self.log_freq.to(x.device)[window_tokens(x, starts, k)]
        return lf.mean(1) < self.threshold


BUILTIN = {
    "repeated_bigram": lambda v: NgramRepeat(2),
    "repeated_trigram": lambda v: NgramRepeat(3),
    "prefix_copy": lambda v: PrefixCopy(4),
    "seen_in_prefix": lambda v: SeenInPrefix(0.5),
    "rare_tokens": RareTokens,
}


def load_callable(spec: str):
    """Import "module:function" (the current directory is searched first) or "file.py:function"."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise InputError(
            f"a distinguisher is a built-in name ({', '.join(BUILTIN)}) or 'module:function', got {spec!r}"
        )
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).expanduser()
            if not path.is_file():
                raise InputError(f"distinguisher file {module_name!r} does not exist")
            loader = importlib.util.spec_from_file_location(f"nextk_user_{path.stem}", path)
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            added = os.getcwd() not in sys.path
            if added:
                sys.path.insert(0, os.getcwd())
            try:
                module = importlib.import_module(module_name)
            finally:
                if added:
                    sys.path.remove(os.getcwd())
    except ImportError as e:
        raise InputError(f"cannot import {module_name!r} for distinguisher {spec!r}: {e}") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InputError(f"{module_name!r} has no {attr!r} (distinguisher {spec!r})")
        obj = getattr(obj, part)
    return obj


def validate(d, k: int, vocab_size: int, name: str = "distinguisher"):
    """Check the calling convention d(x, start, k) → BoolTensor (batch,) on a small batch with per-row
    starts; raise InputError saying what is wrong. Returns d."""
    if not callable(d):
        raise InputError(f"{name} is a {type(d).__name__}, not a callable d(x, start, k)")
    try:
        sig = inspect.signature(d)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        try:
            sig.bind(None, None, None)
        except TypeError:
            raise InputError(f"{name} must take three arguments (x, start, k); its signature is {sig}") from None
    x = torch.randint(0, max(1, vocab_size), (3, k + 2), generator=torch.Generator().manual_seed(0))
    try:
        out = d(x, torch.tensor([0, 1, 2]), k)
    except Exception as e:  # noqa: BLE001 - report any failure of user code as bad input
        raise InputError(f"{name} failed on a test batch x (3, {k + 2}), start [0, 1, 2], k={k}: {e!r}") from None
    if not isinstance(out, Tensor) or out.dtype != torch.bool or tuple(out.shape) != (3,):
        got = f"{out.dtype} tensor of shape {tuple(out.shape)}" if isinstance(out, Tensor) else type(out).__name__
        raise InputError(f"{name} must return a BoolTensor of shape (batch,), got a {got}")
    return d


def resolve(spec: str, vocab_size: int):
    """A distinguisher from its command-line name: a built-in (`BUILTIN`) or a user's 'module:function'.
    Returns (name, d): a fresh object per call (calibrated ones are fitted per k)."""
    if spec in BUILTIN:
        d = BUILTIN[spec](vocab_size)
        return spec, d
    return spec, load_callable(spec)
