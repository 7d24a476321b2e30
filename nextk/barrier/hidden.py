"""Ways around the barrier (the note): hidden scratch tokens and hidden random seeds (docs/theory.md §7).

Both are exact sources whose documents are hidden tokens, a separator '|', then the visible
factorization document:
- `HiddenStream`: the hidden part writes two independent uniform d-digit primes p′, q′ (easy
  autoregressively); the visible part is N = p′q′ and its factors, now determined by what was written.
- `SeedPrefix`: the hidden part is b random bits s; the visible document is the non-autoregressive
  sampler driven by s (pair index s mod π² — exact when π² divides 2^b, otherwise off by a TV the
  source reports as `seed_bias_tv`).
`visible(model, source)` samples whole strings and shows only the visible part.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod

import numpy as np
import torch
from torch import Tensor

from nextk.distinguishers.checks import clip
from nextk.errors import TooLargeError
from nextk.lm import make_generator
from nextk.measure import batched_log_prob
from nextk.sources.common import TokenSource
from nextk.sources.factorization import Factorization
from nextk.sources.finite import FiniteSupport
from nextk.sources.numbers import digit_primes

SEP = "|"
MAX_HIDDEN_SUPPORT = 2_000_000


class HiddenSource(TokenSource, ABC):
    """Exact source over hidden tokens + '|' + a visible Factorization document."""

    def __init__(self, visible_source: Factorization, hidden: np.ndarray, pairs: np.ndarray):
        self.visible_source = visible_source
        self.vocab = visible_source.vocab + [SEP]  # visible token ids are unchanged
        docs = np.stack([visible_source.encode(visible_source.render(int(p), int(q))).numpy() for p, q in pairs])
        sep = np.full((len(hidden), 1), len(self.vocab) - 1)
        strings = np.concatenate([hidden, sep, docs], axis=1)
        self.hidden_length = hidden.shape[1] + 1
        self.length = strings.shape[1]
        self.support = FiniteSupport(strings, np.ones(len(strings), dtype=np.int64), self.vocab_size)
        self.checks = {"arithmetic": VisibleCheck(self)}

    def start(self, batch: int):
        return self.support.start(batch)

    def step(self, state, tokens):
        return self.support.step(state, tokens)

    def sample(self, num: int, length: int | None = None, *, generator=None, prefix=None) -> Tensor:
        if prefix is not None:
            return super().sample(num, length, generator=generator, prefix=prefix)
        return self.support.sample(num, make_generator(generator))[:, : self._length(length)]

    @abstractmethod
    def hidden_strings(self) -> Tensor:
        """Every well-formed hidden part the visible marginal sums over."""


class HiddenStream(HiddenSource):
    """Hidden scratch stream "p′q′|" with p′, q′ independent uniform d-digit primes, then N = p′q′ and
    its factors (non-increasing). Exact for d ≤ 3 (π² ≤ 20,449 strings)."""

    def __init__(self, digits: int = 2, order: str = "product_first"):
        primes = digit_primes(digits).numpy()
        if len(primes) ** 2 > MAX_HIDDEN_SUPPORT:
            raise TooLargeError(
                f"HiddenStream enumerates {len(primes) ** 2:,} ordered prime pairs; limit {MAX_HIDDEN_SUPPORT:,}"
            )
        a, b = np.meshgrid(primes, primes, indexing="ij")
        a, b = a.ravel(), b.ravel()
        powers = 10 ** np.arange(digits - 1, -1, -1)
        hidden = np.concatenate([(a[:, None] // powers) % 10, (b[:, None] // powers) % 10], axis=1)
        self.digits, self.order = digits, order
        super().__init__(Factorization(digits, order=order), hidden, np.stack([a, b], 1))

    def hidden_strings(self) -> Tensor:
        """All digit strings of two d-digit numbers (leading digits non-zero): 81·100^(d−1)."""
        d = self.digits
        lead, rest = range(1, 10), range(10)
        one = [list(t) for t in itertools.product(lead, *[rest] * (d - 1))]
        return torch.tensor([x + y for x in one for y in one], dtype=torch.long)


class SeedPrefix(HiddenSource):
    """Hidden seed of `bits` random bits (tokens '0'/'1'), then the document the non-autoregressive
    sampler writes from it: pair (P[s mod π], P[(s div π) mod π]) of the sorted d-digit primes P."""

    def __init__(self, digits: int = 2, bits: int = 12, order: str = "product_first"):
        if 2**bits > MAX_HIDDEN_SUPPORT:
            raise TooLargeError(f"SeedPrefix enumerates 2^{bits} seeds; limit {MAX_HIDDEN_SUPPORT:,}")
        primes = digit_primes(digits).numpy()
        n = len(primes)
        s = np.arange(2**bits)
        hidden = (s[:, None] >> np.arange(bits - 1, -1, -1)) & 1  # big-endian bits as tokens 0/1
        pairs = np.stack([primes[s % n], primes[(s // n) % n]], 1)
        self.digits, self.bits, self.order = digits, bits, order
        super().__init__(Factorization(digits, order=order), hidden, pairs)
        counts = np.bincount((s % n) * n + (s // n) % n, minlength=n * n) / 2**bits  # ordered-pair law
        self.seed_bias_tv = float(0.5 * np.abs(counts - 1 / n**2).sum())  # ≥ visible TV by data processing

    def hidden_strings(self) -> Tensor:
        s = torch.arange(2**self.bits)
        return (s[:, None] >> torch.arange(self.bits - 1, -1, -1)) & 1


class VisibleCheck:
    """The visible document's arithmetic checker on the visible part of a window (docs/theory.md §2, §7).

    Definition 2: the answer depends on x[:start+k] only. The window [start, start+k) of the whole string
    is the window [max(start − h, 0), start + k − h) of the visible document (h = hidden part + '|'); a
    window that ends inside the hidden part has no visible token to judge and is accepted. A separator
    written inside the visible part is invalid (the visible checker would otherwise read it as a visible
    token)."""

    def __init__(self, source: HiddenSource):
        self.source = source

    def __call__(self, x: Tensor, start, k: int) -> Tensor:
        x, starts = clip(x, start, k)  # nothing after the last window end is read
        h, sep = self.source.hidden_length, self.source.vocab_size - 1
        ends = starts + k
        vis_start = (starts - h).clamp_min(0)
        vis_len = ends - h - vis_start  # visible tokens inside each row's window (≤ 0: none)
        out = torch.ones(len(x), dtype=torch.bool)
        check = self.source.visible_source.checks["arithmetic"]
        for length in vis_len.unique().tolist():
            if length <= 0:
                continue
            rows = (vis_len == length).nonzero().squeeze(1)
            vis = x[rows, h : int(ends[rows].max())]  # (R, visible columns up to the group's last end)
            read = torch.arange(vis.shape[1])[None, :] < (ends[rows] - h)[:, None]
            stray_sep = ((vis == sep) & read).any(1)
            out[rows] = check(vis.clamp(max=sep - 1), vis_start[rows], length) & ~stray_sep
        return out


class Visible:
    """A model trained on hidden+visible strings, seen by the reader: samples whole strings, shows the
    visible part (token ids of the visible source)."""

    def __init__(self, model, source: HiddenSource):
        self.model, self.source = model, source

    def sample(self, num: int, generator=None) -> Tensor:
        x = self.model.sample(num, self.source.length, generator=make_generator(generator))
        return x[:, self.source.hidden_length :]


def visible(model, source: HiddenSource) -> Visible:
    return Visible(model, source)


def visible_tv(source: HiddenSource, model=None, batch: int = 65536) -> dict:
    """TV between the true visible distribution and a model's visible marginal over the true support Y:
    Σ_y max(0, p(y) − q(y)), q(y) = Σ_h q(h | y) summed over the well-formed hidden strings h. Mass
    the model puts on other hidden strings is not counted, so the value is an upper bound on the TV
    (exact when the model keeps to well-formed hidden parts). model=None measures the source itself."""
    vis_src = source.visible_source
    from nextk.measure import support

    y, lp_y = support(vis_src)
    hs = source.hidden_strings()
    sep = torch.full((len(hs), 1), source.vocab_size - 1, dtype=torch.long)
    lm = model or source
    total = len(hs) * len(y)
    if total > 20_000_000:
        raise TooLargeError(f"visible TV needs {total:,} hidden × visible strings; limit 20,000,000")
    q_y = torch.zeros(len(y), dtype=torch.float64)
    rows_per = max(1, batch // len(hs))
    for i in range(0, len(y), rows_per):
        yy = y[i : i + rows_per]
        full = torch.cat([torch.cat([hs, sep], 1).repeat(len(yy), 1), yy.repeat_interleave(len(hs), 0)], 1)
        q_y[i : i + len(yy)] = batched_log_prob(lm, full).reshape(len(yy), len(hs)).exp().sum(1)
    p_y = lp_y.exp()
    return {
        "tv_upper": float((p_y - q_y).clamp_min(0).sum()),
        "visible_mass_on_support": float(q_y.sum()),
        "hidden_strings": len(hs),
        "visible_support": len(y),
    }
