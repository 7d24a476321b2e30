"""Factorization source (docs/theory.md §7): N = p·q for independent uniform d-digit primes."""

from __future__ import annotations

import builtins
import math
import re

import numpy as np
import sympy
import torch
from torch import Tensor

from nextk.distinguishers.checks import SupportCheck, clip
from nextk.errors import InputError, TooLargeError, check_option
from nextk.lm import State, make_generator
from nextk.sources.common import TokenSource
from nextk.sources.finite import FiniteSupport
from nextk.sources.numbers import digit_primes, random_digit_prime

TEMPLATES = {
    ("compact", "product_first"): "{N}={p}*{q}",
    ("compact", "factors_first"): "{p}*{q}={N}",
    ("paper", "product_first"): "The prime factors of {N} are {p} × {q}.",
    ("paper", "factors_first"): "The product of {p} and {q} is {N}.",
}
PAD = {"compact": ".", "paper": " "}
MAX_EXACT_DIGITS = 4  # 563,391 prime pairs at d = 4


class Factorization(TokenSource):
    """N = p·q for independent uniform d-digit primes p, q, padded to a fixed length.

    order="product_first" writes N before its factors — exact autoregressive conditionals then need
    the factors of N, which is the barrier (docs/theory.md §7); "factors_first" writes p, q, then N.
    The order of the two factors (docs/theory.md §7) — π is the number of d-digit primes:
      sorted=True (default; the paper's Appendix B): factors in non-increasing order, p ≥ q; a
        document with p > q has probability 2/π² (both draws write it), p = q 1/π².
      sorted=False (the note's tuples): p and q in the order they were drawn; every ordered pair
        (p, q) is its own document, probability 1/π².
    `sample` works for any d (draw two primes, multiply); exact conditionals enumerate the prime
    pairs (d ≤ 4) and refuse beyond.

    >>> src = Factorization(digits=1)                       # primes 2, 3, 5, 7: π = 4
    >>> src.length, src.decode(src.encode("35=7*5"))
    (6, '35=7*5')
    >>> round(src.log_prob(src.encode("35=7*5")).exp().item() * 16, 9)      # 2/16
    2.0
    >>> round(src.log_prob(src.encode("9=3*3.")).exp().item() * 16, 9)      # 1/16
    1.0
    >>> Factorization(digits=1, order="factors_first").encode("3*3=9").tolist()    # padded with '.'
    [3, 10, 3, 12, 9, 11]
    >>> u = Factorization(digits=1, sorted=False)           # ordered pairs: 1/16 each
    >>> [round(u.log_prob(u.encode(t)).exp().item() * 16, 9) for t in ("35=7*5", "35=5*7", "9=3*3")]
    [1.0, 1.0, 1.0]
    """

    def __init__(self, digits: int = 2, order: str = "product_first", template: str = "compact", sorted: bool = True):
        check_option("order", order, ("product_first", "factors_first"))
        check_option("template", template, ("compact", "paper"))
        if digits < 1:
            raise InputError(f"digits must be ≥ 1, got {digits}")
        if not isinstance(sorted, bool):
            raise InputError(f"sorted must be True or False, got {sorted!r}")
        self.digits, self.order, self.template, self.sorted = digits, order, template, sorted  # shadows builtins.sorted
        self.pattern, self.pad = TEMPLATES[(template, order)], PAD[template]
        self.length = len(self.pattern.format(N="0" * 2 * digits, p="0" * digits, q="0" * digits))
        extra = builtins.sorted(set(self.pattern.format(N="", p="", q="")) | {self.pad})
        self.vocab = list("0123456789") + [c for c in extra if not c.isdigit()]
        self._support: FiniteSupport | None = None
        self.checks = {"arithmetic": ArithmeticCheck(self), "support": SupportCheck(self)}

    def encode(self, text: str) -> Tensor:
        return super().encode(text.ljust(self.length, self.pad))

    def decode(self, tokens: Tensor):
        out = super().decode(tokens)
        return [s.rstrip(self.pad) for s in out] if isinstance(out, list) else out.rstrip(self.pad)

    def render(self, p: int, q: int) -> str:
        """The document of the draw (p, q): factors sorted (p ≥ q) if `sorted`, else as drawn."""
        if self.sorted:
            p, q = max(p, q), min(p, q)
        return self.pattern.format(N=p * q, p=p, q=q).ljust(self.length, self.pad)

    @property
    def support(self) -> FiniteSupport:
        """All prime pairs with integer weights; d ≤ 4. Sorted: pairs p ≥ q, weight 2 for p > q and 1 for
        p = q. Unsorted: every ordered pair (p, q), weight 1."""
        if self._support is None:
            if self.digits > MAX_EXACT_DIGITS:
                n = prime_count_estimate(self.digits)  # counting exactly would itself take minutes at d ≥ 12
                pairs = n * (n + 1) / 2 if self.sorted else n * n
                raise TooLargeError(
                    f"exact Factorization conditionals enumerate prime pairs: about {pairs:.2g} pairs "
                    f"for digits={self.digits}; the limit is digits ≤ {MAX_EXACT_DIGITS}. Sampling works for any d."
                )
            primes = digit_primes(self.digits).numpy()
            if self.sorted:
                i, j = np.triu_indices(len(primes))  # i ≤ j: p = primes[j] ≥ q = primes[i]
            else:
                j, i = (a.ravel() for a in np.indices((len(primes), len(primes))))  # every ordered pair
            p, q = primes[j], primes[i]
            texts = [self.pattern.format(N=a * b, p=a, q=b).ljust(self.length, self.pad) for a, b in zip(p, q)]
            table = np.zeros(0x10000, dtype=np.int64)
            for idx, ch in enumerate(self.vocab):
                table[ord(ch)] = idx
            codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
            strings = table[codes].reshape(len(texts), self.length)
            weights = np.where(i == j, 1, 2) if self.sorted else np.ones(len(texts), dtype=np.int64)
            self._support = FiniteSupport(strings, weights, self.vocab_size)
        return self._support

    def start(self, batch: int) -> State:
        return self.support.start(batch)

    def step(self, state: State, tokens: Tensor) -> tuple[State, Tensor]:
        return self.support.step(state, tokens)

    def sample(self, num: int, length: int | None = None, *, generator=None, prefix=None) -> Tensor:
        """Non-autoregressive exact sampler: draw two primes, multiply, write them (sorted or as drawn); any d."""
        length = self._length(length)
        if prefix is not None:
            return super().sample(num, length, generator=generator, prefix=prefix)
        g = make_generator(generator)
        if self.digits <= MAX_EXACT_DIGITS:
            return self.support.sample(num, g)[:, :length]
        rows = [
            self.encode(self.render(random_digit_prime(self.digits, g), random_digit_prime(self.digits, g)))
            for _ in range(num)
        ]
        return torch.stack(rows)[:, :length] if rows else torch.zeros(0, length, dtype=torch.long)


def prime_count_estimate(digits: int) -> float:
    """≈ the number of d-digit primes, li(10^d) − li(10^(d−1)) by the prime number theorem (for messages)."""
    from scipy.special import expi

    return float(expi(digits * math.log(10)) - expi((digits - 1) * math.log(10))) if digits > 1 else 4.0


class ArithmeticCheck:
    """Polynomial-time validity of whatever the window completes: the text follows the template,
    each completed number has the right digit count (no leading zero), completed factors are prime,
    p divides N once both are written, p·q = N once all three are, p ≥ q once both are (only for a
    sorted source: an unsorted one writes the factors in either order), and padding follows.
    The prefix is read to parse the fields; nothing after the window is."""

    def __init__(self, source: Factorization):
        self.source = source
        self.parts = [p for p in re.split(r"(\{[Npq]\})", source.pattern) if p]

    def __call__(self, x: Tensor, start, k: int) -> Tensor:
        x, starts = clip(x, start, k)
        vocab, n = self.source.vocab, self.source.length
        ends = (starts + k).tolist()
        texts = ["".join(vocab[i] for i in row[:e]) for row, e in zip(x.tolist(), ends)]
        return torch.tensor([self.valid_prefix(s, e == n) for s, e in zip(texts, ends)], dtype=torch.bool)

    def parse(self, s: str, full: bool) -> tuple[dict[str, str], tuple[str, str] | None] | None:
        """(completed fields, the field still being written) of the prefix s; None if s departs
        from the template."""
        i, done = 0, {}
        for part in self.parts:
            if part.startswith("{"):
                j = i
                while j < len(s) and s[j].isdigit():
                    j += 1
                if j == len(s) and not full:
                    return done, (part[1], s[i:j])  # still being written
                done[part[1]] = s[i:j]
                i = j
            else:
                for c in part:
                    if i == len(s):
                        return done, None
                    if s[i] != c:
                        return None
                    i += 1
        return (done, None) if all(c == self.source.pad for c in s[i:]) else None

    def valid_prefix(self, s: str, full: bool) -> bool:
        """Is s consistent with some valid document, judged only on what s completes?"""
        d = self.source.digits
        parsed = self.parse(s, full)
        if parsed is None:
            return False
        fields, partial = parsed
        if partial is not None:
            name, v = partial
            if len(v) > (2 * d if name == "N" else d) or v.startswith("0"):
                return False
        for name, v in fields.items():
            lo, hi = (2 * d - 1, 2 * d) if name == "N" else (d, d)
            if not lo <= len(v) <= hi or v[0] == "0":
                return False
        vals = {name: int(v) for name, v in fields.items()}
        if any(name in vals and not sympy.isprime(vals[name]) for name in "pq"):
            return False
        if "p" in vals and "N" in vals and vals["N"] % vals["p"]:
            return False
        if len(vals) == 3 and vals["p"] * vals["q"] != vals["N"]:
            return False
        if self.source.sorted and "p" in vals and "q" in vals and vals["p"] < vals["q"]:
            return False
        return True
