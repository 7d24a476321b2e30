"""Independent references for tests: brute-force enumeration in plain Python/NumPy.

Nothing here calls nextk's estimators, tries or boosting code. Whole-string probabilities of a model
(`q.log_prob`) are the only input taken from the code base; they are tested on their own elsewhere.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch


def strings(v: int, n: int) -> list[tuple[int, ...]]:
    return list(itertools.product(range(v), repeat=n))


def whole_probs(model, v: int, n: int) -> dict[tuple[int, ...], float]:
    """p̄(x) for every x ∈ Σ^n, by the model's whole-string log-probability."""
    xs = strings(v, n)
    lp = model.log_prob(torch.tensor(xs, dtype=torch.long)).double().exp().tolist()
    return dict(zip(xs, lp))


def marginal(probs: dict, prefix: tuple) -> float:
    """Σ of p̄(x) over the strings that begin with `prefix`."""
    t = len(prefix)
    return sum(p for x, p in probs.items() if x[:t] == prefix)


def judge(d, x: tuple, s: int, k: int) -> float:
    return float(d(torch.tensor([x], dtype=torch.long), s, k)[0])


def block_starts(n: int, k: int, offset: int) -> list[int]:
    return list(range(offset, n - k + 1, k))


def boosted_probs(q, d, k: int, offset: int, eta: float, v: int, n: int) -> dict[tuple[int, ...], float]:
    """q̄'(x) = q̄(x) Π_s e^{η d(x_<s, x_s:s+k)} / Z_s(x_<s) with Z_s = Σ_w q(w | x_<s) e^{η d(x_<s, w)},
    every q(w | x_<s) a ratio of sums of q̄ over Σ^n (eq. 1.3 by enumeration)."""
    qbar = whole_probs(q, v, n)
    z_cache: dict[tuple, float] = {}
    out = {}
    for x, px in qbar.items():
        w = px
        for s in block_starts(n, k, offset):
            if x[:s] not in z_cache:
                z_cache[x[:s]] = block_z(qbar, d, x[:s], k, eta, v, n)
            w *= math.exp(eta * judge(d, x, s, k)) / z_cache[x[:s]]
        out[x] = w
    return out


def block_z(qbar: dict, d, pre: tuple, k: int, eta: float, v: int, n: int) -> float:
    """Z_s(x_<s) = Σ_w q(w | x_<s) e^{η d(x_<s, w)}, q(w | x_<s) a ratio of marginals of q̄."""
    base, s = marginal(qbar, pre), len(pre)
    pad = (0,) * (n - s - k)  # d never reads past its window
    return sum(marginal(qbar, pre + w) / base * math.exp(eta * judge(d, pre + w + pad, s, k)) for w in strings(v, k))


def conditionals(probs: dict, x: tuple, v: int) -> np.ndarray:
    """(n, V) next-token conditionals along x from a whole-string table: ratios of prefix marginals
    (rows after a zero-probability prefix are NaN: undefined)."""
    n = len(x)
    out = np.full((n, v), np.nan)
    for t in range(n):
        base = marginal(probs, x[:t])
        if base > 0:
            out[t] = [marginal(probs, x[:t] + (c,)) / base for c in range(v)]
    return out


def gain(p, q, d, k: int, offset: int, eta: float, v: int, n: int) -> float:
    """Δ(r, η) = Σ_s E_p[η d(x_<s, x_s:s+k) − log Z_s(x_<s)] by enumerating Σ^n under p̄ and q̄."""
    pbar, qbar = whole_probs(p, v, n), whole_probs(q, v, n)
    total = 0.0
    for x, px in pbar.items():
        if px == 0:
            continue
        for s in block_starts(n, k, offset):
            total += px * (eta * judge(d, x, s, k) - math.log(block_z(qbar, d, x[:s], k, eta, v, n)))
    return total


def advantage_at(p, q, d, k: int, s: int, v: int, n: int) -> float:
    """E_{x∼p̄}[d(x_<s, x_s:s+k) − E_{w∼q(·|x_<s)} d(x_<s, w)] at one start s, by enumeration."""
    pbar, qbar = whole_probs(p, v, n), whole_probs(q, v, n)
    windows = strings(v, k)
    true = sum(px * judge(d, x, s, k) for x, px in pbar.items() if px > 0)
    fake = 0.0
    for pre in strings(v, s):
        pp = marginal(pbar, pre)
        if pp == 0:
            continue
        base = marginal(qbar, pre)
        fake += pp * sum(marginal(qbar, pre + w) / base * judge(d, pre + w + (0,) * (n - s - k), s, k) for w in windows)
    return true - fake


# ---- whole distributions of the exact sources, written from their definitions ----------------------


def prefix_marginals(probs: dict) -> dict[tuple, float]:
    """Σ p̄ over the strings that begin with each prefix, for every prefix of every string (the empty one too)."""
    out: dict[tuple, float] = {}
    for x, px in probs.items():
        for t in range(len(x) + 1):
            out[x[:t]] = out.get(x[:t], 0.0) + px
    return out


def hmm_probs(start, trans, emit, n: int) -> dict[tuple[int, ...], float]:
    """p̄(x) = Σ_z α_n(z) for every x ∈ Σ^n: the forward recursion α_{t+1}(z) = Σ_y α_t(y) T[y][z] E[z][x_t]
    in plain lists (parameters as nested lists)."""
    s, v = len(start), len(emit[0])
    out = {}
    for x in strings(v, n):
        alpha = [start[z] * emit[z][x[0]] for z in range(s)]
        for tok in x[1:]:
            alpha = [sum(alpha[y] * trans[y][z] for y in range(s)) * emit[z][tok] for z in range(s)]
        out[x] = sum(alpha)
    return out


def dyck_read(tokens, max_depth: int, stack: list | None = None, n: int | None = None, offset: int = 0) -> list | None:
    """Read brackets (token 2j opens type j, 2j+1 closes it) onto a list stack; None at the first close that
    does not match the top, the first open deeper than max_depth, or (with n) the first token after which the
    depth exceeds the n − t − 1 tokens left (t = offset + index)."""
    stack = [] if stack is None else list(stack)
    for i, tok in enumerate(tokens):
        if tok % 2 == 0:
            stack.append(tok // 2)
            if len(stack) > max_depth:
                return None
        elif not stack or stack.pop() != tok // 2:
            return None
        if n is not None and len(stack) > n - (offset + i) - 1:
            return None
    return stack


def dyck_probs(n_types: int, max_depth: int, n: int) -> dict[tuple[int, ...], float]:
    """Uniform over the balanced strings of n tokens with depth ≤ max_depth, found by the stack machine."""
    valid = [x for x in strings(2 * n_types, n) if dyck_read(x, max_depth) == []]
    return {x: 1.0 / len(valid) for x in valid}


def parity_probs(block: int, n: int) -> dict[tuple[int, ...], float]:
    """Every complete block (positions jb … jb+b−1 < n) has even parity; the other n − #blocks bits are free."""
    ends = list(range(block - 1, n, block))
    free = n - len(ends)
    return {x: 2.0**-free for x in strings(2, n) if all(sum(x[e - block + 1 : e + 1]) % 2 == 0 for e in ends)}


ADDITION_VOCAB = "0123456789+="
FACTORIZATION_VOCAB = "0123456789*.="  # compact template: digits, then '*', '.', '=' (sorted)


def encode(text: str, vocab: str) -> tuple[int, ...]:
    return tuple(vocab.index(c) for c in text)


def addition_probs(d: int) -> dict[tuple[int, ...], float]:
    """Text "a+b=c" for all d-digit operands a, b (leading zeros kept), c = a + b in d + 1 digits: 10^(−2d) each."""
    return {
        encode(f"{a:0{d}d}+{b:0{d}d}={a + b:0{d + 1}d}", ADDITION_VOCAB): 10.0 ** (-2 * d)
        for a in range(10**d)
        for b in range(10**d)
    }


def random_number_probs(d: int) -> dict[tuple[int, ...], float]:
    """Every d-digit number without a leading zero, each 1 / (9 · 10^(d−1))."""
    return {x: 1.0 / (9 * 10 ** (d - 1)) for x in strings(10, d) if x[0] != 0}


def prime_list(d: int) -> list[int]:
    import sympy

    return list(sympy.primerange(10 ** (d - 1), 10**d))


def primes_probs(d: int) -> dict[tuple[int, ...], float]:
    """Uniform over the d-digit primes (sympy), written in d decimal digits."""
    primes = prime_list(d)
    return {tuple(int(c) for c in str(p)): 1.0 / len(primes) for p in primes}


def factorization_probs(d: int, order: str = "product_first", sort: bool = True) -> dict[tuple[int, ...], float]:
    """Independent uniform d-digit primes a, b (sympy); the text "N=p*q" (or "p*q=N") padded with '.' to
    4d + 2 characters, with (p, q) = (max, min) when sorted, else (a, b) as drawn; every ordered draw adds
    1/π², so sorted strings with p ≠ q get 2/π²."""
    primes = prime_list(d)
    pi2 = len(primes) ** 2
    out: dict[tuple[int, ...], float] = {}
    for a in primes:
        for b in primes:
            hi, lo = (max(a, b), min(a, b)) if sort else (a, b)
            text = f"{hi * lo}={hi}*{lo}" if order == "product_first" else f"{hi}*{lo}={hi * lo}"
            x = encode(text.ljust(4 * d + 2, "."), FACTORIZATION_VOCAB)
            out[x] = out.get(x, 0.0) + 1.0 / pi2
    return out


HIDDEN_VOCAB = FACTORIZATION_VOCAB + "|"  # the visible vocabulary, then the separator


def sorted_document(a: int, b: int, d: int) -> str:
    """The visible product-first document of the draw (a, b): "N=p*q" with p ≥ q, padded with '.' to 4d + 2."""
    return f"{a * b}={max(a, b)}*{min(a, b)}".ljust(4 * d + 2, ".")


def hidden_stream_probs(d: int) -> dict[tuple[int, ...], float]:
    """Independent uniform d-digit primes a, b (sympy): the hidden digits of a then b, '|', then the sorted
    product-first document of (a, b); every ordered draw adds 1/π²."""
    primes = prime_list(d)
    out: dict[tuple[int, ...], float] = {}
    for a in primes:
        for b in primes:
            x = encode(f"{a:0{d}d}{b:0{d}d}|" + sorted_document(a, b, d), HIDDEN_VOCAB)
            out[x] = out.get(x, 0.0) + 1.0 / len(primes) ** 2
    return out


def seed_prefix_probs(d: int, bits: int) -> dict[tuple[int, ...], float]:
    """A uniform seed s < 2^bits written as `bits` big-endian binary digits, '|', then the sorted product-first
    document of (P[s mod π], P[(s div π) mod π]), P the sorted d-digit primes; 2^−bits per seed."""
    primes = prime_list(d)
    pi = len(primes)
    out: dict[tuple[int, ...], float] = {}
    for s in range(2**bits):
        a, b = primes[s % pi], primes[(s // pi) % pi]
        x = encode(format(s, f"0{bits}b") + "|" + sorted_document(a, b, d), HIDDEN_VOCAB)
        out[x] = out.get(x, 0.0) + 2.0**-bits
    return out


def max_abs_difference(model, ref: dict, v: int, n: int, enumerate_up_to: int = 20_000) -> float:
    """max over all x ∈ Σ^n of |p̄_model(x) − ref(x)| (ref lists the strings of positive probability).

    Up to `enumerate_up_to` strings, every one is scored with model.log_prob. Beyond, the strings of ref are
    scored with model.log_prob, and every other string x is bounded by the model's mass on its first prefix
    x_≤t outside ref's prefixes (p̄(x) ≤ p̄(x_≤t), chain rule of the model's conditionals along ref's strings)."""
    if v**n <= enumerate_up_to:
        xs = strings(v, n)
        got = model.log_prob(torch.tensor(xs, dtype=torch.long)).double().exp().tolist()
        return max(abs(g - ref.get(x, 0.0)) for x, g in zip(xs, got))
    xs = sorted(ref)
    x = torch.tensor(xs, dtype=torch.long)
    got = model.log_prob(x).double().exp().tolist()
    worst = max(abs(g - ref[s]) for s, g in zip(xs, got))
    arr = np.array(xs)
    outside = np.zeros((len(xs), n, v), dtype=bool)  # x_<t then token v leaves ref's prefixes
    for t in range(n):
        _, pid = np.unique(arr[:, :t], axis=0, return_inverse=True)  # which prefix x_<t each row has
        pid = pid.reshape(-1)
        outside[:, t] = ~np.isin(pid[:, None] * v + np.arange(v), pid * v + arr[:, t])
    outside = torch.from_numpy(outside)
    lp = model.log_probs(x).double()  # (N, n, V)
    along = lp.gather(-1, x.unsqueeze(-1)).squeeze(-1)  # log q(x_t | x_<t)
    before = torch.cat([torch.zeros(len(xs), 1, dtype=torch.float64), along.cumsum(1)[:, :-1]], dim=1)
    exit_mass = (before.unsqueeze(-1) + lp).exp()[outside]
    return max(worst, exit_mass.max().item() if exit_mass.numel() else 0.0)


def chi_square_pvalue(samples: torch.Tensor, ref: dict) -> float:
    """Smallest p-value of Pearson chi-square tests of the samples against ref: on whole strings, and on the
    token at each position (more power against a per-token bias). Bins with expected count < 5 are pooled; a
    sample outside ref's support fails at once."""
    from collections import Counter

    counts = Counter(map(tuple, samples.tolist()))
    outside = [s for s in counts if s not in ref]
    assert not outside, f"{len(outside)} sampled strings have reference probability 0, e.g. {outside[0]}"
    tests = [(counts, ref)]
    for t in range(samples.shape[1]):
        at_t: dict = {}
        for x, px in ref.items():
            at_t[x[t]] = at_t.get(x[t], 0.0) + px
        tests.append((Counter(samples[:, t].tolist()), at_t))
    return min(_chi_square(c, r, len(samples)) for c, r in tests)


def _chi_square(counts, probs: dict, num: int) -> float:
    from scipy.stats import chisquare

    keys = list(probs)
    expected = np.array([probs[s] for s in keys]) * num
    observed = np.array([counts.get(s, 0) for s in keys], dtype=float)
    big = expected >= 5
    obs, exp_ = observed[big], expected[big]
    if (~big).any():
        obs, exp_ = np.append(obs, observed[~big].sum()), np.append(exp_, expected[~big].sum())
    if len(obs) < 2:
        return 1.0  # one bin: nothing to test
    return chisquare(obs, exp_).pvalue


# ---- advantage, TV and KL by enumeration of Σ^n --------------------------------------------------------


def _window_terms(p, q, k: int, v: int, n: int, term) -> float:
    """(1/m) Σ_i Σ_{x<i} p̄(x<i) · term(prefix, i, {w: p(w|x<i)}, {w: q(w|x<i)}), m = n − k + 1, with every
    marginal a sum of whole-string probabilities over Σ^n."""
    pm, qm = prefix_marginals(whole_probs(p, v, n)), prefix_marginals(whole_probs(q, v, n))
    windows = strings(v, k)
    m = n - k + 1
    total = 0.0
    for i in range(m):
        for pre in strings(v, i):
            pp = pm[pre]
            if pp == 0:
                continue
            if qm[pre] == 0:
                raise ValueError(f"q(· | {pre}) is undefined: q gives the prefix probability 0")
            pw = {w: pm[pre + w] / pp for w in windows}
            qw = {w: qm[pre + w] / qm[pre] for w in windows}
            total += pp * term(pre, i, pw, qw)
    return total / m


def advantage_exact(p, q, d, k: int, v: int, n: int) -> float:
    """a(d) = (1/m) Σ_i Σ_{x<i} p̄(x<i) Σ_w (p(w|x<i) − q(w|x<i)) d(x<i, w), by enumeration."""

    def term(pre, i, pw, qw):
        pad = (0,) * (n - i - k)  # d never reads past its window
        return sum((pw[w] - qw[w]) * judge(d, pre + w + pad, i, k) for w in pw)

    return _window_terms(p, q, k, v, n, term)


def tv_exact(p, q, k: int, v: int, n: int) -> float:
    """(1/m) Σ_i Σ_{x<i} p̄(x<i) · ½ Σ_w |p(w|x<i) − q(w|x<i)|, by enumeration."""
    return _window_terms(p, q, k, v, n, lambda pre, i, pw, qw: 0.5 * sum(abs(pw[w] - qw[w]) for w in pw))


def kl_exact(p, q, v: int, n: int) -> float:
    """KL(p̄ ‖ q̄) = Σ_x p̄(x) log(p̄(x) / q̄(x)) over Σ^n."""
    pbar, qbar = whole_probs(p, v, n), whole_probs(q, v, n)
    return sum(px * math.log(px / qbar[x]) for x, px in pbar.items() if px > 0)
