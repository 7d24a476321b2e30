"""Number sources: uniform d-digit numbers, uniform d-digit primes (prime counting), and addition."""

from __future__ import annotations

import math

import numpy as np
import sympy
import torch
from torch import Tensor

from nextk.distinguishers.checks import SupportCheck, clip, window_mask
from nextk.errors import InputError, TooLargeError
from nextk.lm import State, make_generator
from nextk.sources.common import TokenSource, counts_to_log_probs, digits_to_int, new_state

DIGITS = list("0123456789")
MAX_SIEVE_DIGITS = 8  # exact prime counting up to 10^8 (a 100 MB sieve)


def primes_below(limit: int) -> np.ndarray:
    """All primes < limit (sieve of Eratosthenes in NumPy), int64 sorted."""
    sieve = np.ones(limit, dtype=bool)
    sieve[:2] = False
    for i in range(2, math.isqrt(max(limit - 1, 0)) + 1):
        if sieve[i]:
            sieve[i * i :: i] = False
    return np.flatnonzero(sieve).astype(np.int64)


def digit_primes(digits: int) -> Tensor:
    """Sorted d-digit primes (10^(d−1) ≤ p < 10^d) as an int64 tensor."""
    if digits > MAX_SIEVE_DIGITS:
        raise TooLargeError(
            f"exact prime counting for {digits} digits needs a sieve of 10^{digits} "
            f"entries; the limit is {MAX_SIEVE_DIGITS} digits"
        )
    lo = 10 ** (digits - 1) if digits > 1 else 0
    p = primes_below(10**digits)
    return torch.from_numpy(p[p >= lo])


def random_digit_prime(digits: int, generator: torch.Generator) -> int:
    """A uniform random d-digit prime by rejection (any d): uniform integers until one is prime."""
    lo, hi = 10 ** (digits - 1), 10**digits
    span = hi - lo
    nbits = span.bit_length() + 1
    while True:
        # Assemble nbits random bits from the explicit generator, reject outside the span.
        r, got = 0, 0
        while got < nbits:
            r = (r << 62) | int(torch.randint(0, 2**62, (1,), generator=generator))
            got += 62
        r >>= got - nbits
        if r < span and sympy.isprime(lo + r):
            return lo + r


class DecimalNumber(TokenSource):
    """A d-digit number written in decimal: one token per digit."""

    def __init__(self, digits: int):
        if digits < 1:
            raise InputError(f"digits must be ≥ 1, got {digits}")
        self.digits = self.length = digits
        self.vocab = DIGITS


class RandomNumber(DecimalNumber):
    """A uniform d-digit number: first digit uniform on 1–9, the others uniform on 0–9.

    >>> src = RandomNumber(digits=3)
    >>> round(src.log_prob(src.encode("105")).exp().item() * 900, 9)     # 1/900
    1.0
    >>> src.log_prob(src.encode("042")).exp().item()                     # leading zero
    0.0
    """

    def __init__(self, digits: int = 6):
        DecimalNumber.__init__(self, digits)
        self.checks = {"leading_digit": SupportCheck(self)}

    def start(self, batch: int) -> State:
        return self._state(torch.zeros(batch, dtype=torch.long))

    def step(self, state: State, tokens: Tensor) -> tuple[State, Tensor]:
        new = self._state(state.tensors["pos"] + 1)
        return new, new.log_probs

    def _state(self, pos: Tensor) -> State:
        counts = torch.ones(len(pos), 10, dtype=torch.long)
        counts[pos == 0, 0] = 0
        return new_state(counts_to_log_probs(counts), pos=pos)


class Primes(DecimalNumber):
    """A uniform d-digit prime, written in decimal.

    q(v | prefix P of t digits) ∝ π(hi) − π(lo): the number of d-digit primes in
    [(10P+v)·10^(d−t−1), (10P+v+1)·10^(d−t−1)) (docs/theory.md §7), counted exactly from a sieve.

    >>> src = Primes(digits=2)                    # 21 two-digit primes
    >>> round(src.log_prob(src.encode("97")).exp().item() * 21, 9)
    1.0
    >>> round(src.log_probs(src.encode("1")[None])[0, 0, 1].exp().item() * 21, 9)   # 11,13,17,19
    4.0
    """

    def __init__(self, digits: int = 4):
        DecimalNumber.__init__(self, digits)
        self._primes: Tensor | None = None
        self.checks = {"prime": PrimeCheck(digits)}

    @property
    def primes(self) -> Tensor:
        if self._primes is None:
            self._primes = digit_primes(self.digits)
        return self._primes

    def count(self, lo: Tensor, hi: Tensor) -> Tensor:
        """Number of d-digit primes in [lo, hi), elementwise."""
        return torch.searchsorted(self.primes, hi) - torch.searchsorted(self.primes, lo)

    def start(self, batch: int) -> State:
        z = torch.zeros(batch, dtype=torch.long)
        return self._state(z, z.clone())

    def step(self, state: State, tokens: Tensor) -> tuple[State, Tensor]:
        s = state.tensors
        new = self._state(s["value"] * 10 + tokens.long(), s["pos"] + 1)
        return new, new.log_probs

    def _state(self, value: Tensor, pos: Tensor) -> State:
        scale = 10 ** (self.digits - 1 - pos).clamp_min(0)  # (B,)
        lo = (value.unsqueeze(1) * 10 + torch.arange(10)) * scale.unsqueeze(1)  # (B, 10)
        counts = self.count(lo, lo + scale.unsqueeze(1))
        counts[pos >= self.digits] = 0
        return new_state(counts_to_log_probs(counts), value=value, pos=pos)

    def sample(self, num: int, length: int | None = None, *, generator=None, prefix=None) -> Tensor:
        if prefix is not None or self._length(length) != self.length or self.digits > MAX_SIEVE_DIGITS:
            return super().sample(num, length, generator=generator, prefix=prefix)
        idx = torch.randint(0, len(self.primes), (num,), generator=make_generator(generator))
        return int_digits(self.primes[idx], self.digits)


def int_digits(values: Tensor, digits: int) -> Tensor:
    """int64 values (B,) → digit tokens (B, digits), most significant first, zero padded."""
    powers = 10 ** torch.arange(digits - 1, -1, -1, dtype=torch.long)
    return (values.unsqueeze(1) // powers) % 10


class PrimeCheck:
    """Primality when the window completes the number (covers its last digit); a leading zero
    is rejected when the window covers the first digit."""

    def __init__(self, digits: int):
        self.digits = digits

    def __call__(self, x: Tensor, start, k: int) -> Tensor:
        x, starts = clip(x, start, k)
        d = self.digits
        ok = ~((starts == 0) & (x[:, 0] == 0))
        completes = (starts + k >= d) & (starts < d) if x.shape[1] >= d else torch.zeros_like(ok)
        if completes.any():
            values = digits_to_int(x[completes, :d]).tolist()
            ok[completes] &= torch.tensor([sympy.isprime(v) for v in values])
        return ok


class Addition(TokenSource):
    """ "a+b=c" with a, b uniform d-digit operands (leading zeros kept) and c = a + b in d+1 digits.

    The operands carry all the entropy (2d log 10 nats); '+', '=' and the d+1 digits of c are
    determined. Length 3d+3.

    >>> src = Addition(digits=1)
    >>> texts = src.decode(src.sample(200, generator=0))                # "a+b=c" with c = a + b, every one
    >>> all(int(a) + int(b) == int(c) for a, b, c in (t.replace("=", "+").split("+") for t in texts))
    True
    >>> sorted({len(c) for c in (t.split("=")[1] for t in texts)})     # c always has d + 1 digits
    [2]
    >>> round(src.log_prob(src.encode("7+5=12")).exp().item() * 100, 9)
    1.0
    >>> src.log_prob(src.encode("7+5=13")).exp().item()
    0.0
    """

    def __init__(self, digits: int = 3):
        if not 1 <= digits <= 17:
            raise InputError(f"digits must be in 1..17, got {digits}")
        self.digits = d = digits
        self.length = 3 * d + 3
        self.vocab = DIGITS + ["+", "="]
        self.checks = {"sum": AdditionCheck(self)}

    def start(self, batch: int) -> State:
        z = torch.zeros(batch, dtype=torch.long)
        return self._state(z, z.clone(), z.clone())

    def step(self, state: State, tokens: Tensor) -> tuple[State, Tensor]:
        s = state.tensors
        pos, a, b, d, tok = s["pos"], s["a"], s["b"], self.digits, tokens.long().clamp(max=9)
        a = torch.where(pos < d, a * 10 + tok, a)
        b = torch.where((pos > d) & (pos <= 2 * d), b * 10 + tok, b)
        new = self._state(pos + 1, a, b)
        return new, new.log_probs

    def expected(self, pos: Tensor, a: Tensor, b: Tensor) -> Tensor:
        """The determined token at each position (−1 where the position is a free operand digit)."""
        d = self.digits
        c_digit = ((a + b) // 10 ** (3 * d + 2 - pos).clamp(0, d)) % 10
        out = torch.full_like(pos, -1)
        out = torch.where(pos == d, 10, out)
        out = torch.where(pos == 2 * d + 1, 11, out)
        return torch.where(pos > 2 * d + 1, c_digit, out)

    def _state(self, pos: Tensor, a: Tensor, b: Tensor) -> State:
        counts = torch.zeros(len(pos), 12, dtype=torch.long)
        want = self.expected(pos, a, b)
        free = (want < 0) & (pos < self.length)
        counts[free, :10] = 1
        fixed = (want >= 0) & (pos < self.length)
        counts[fixed, want[fixed]] = 1
        return new_state(counts_to_log_probs(counts), pos=pos, a=a, b=b)


class AdditionCheck:
    """Arithmetic of whatever the window completes: '+' and '=' in place, operand digits are
    digits, and every digit of c inside the window equals that digit of a + b."""

    def __init__(self, source: Addition):
        self.source = source

    def __call__(self, x: Tensor, start, k: int) -> Tensor:
        x, starts = clip(x, start, k)
        src, batch = self.source, x.shape[0]
        state = src.start(batch)
        ok = torch.ones(batch, dtype=torch.bool)
        inside = window_mask(starts, k, x.shape[1])
        for t in range(x.shape[1]):
            want = src.expected(state.tensors["pos"], state.tensors["a"], state.tensors["b"])
            bad = torch.where(want >= 0, x[:, t] != want, x[:, t] > 9)
            ok &= ~(bad & inside[:, t])
            state, _ = src.step(state, x[:, t])
        return ok
