"""The batched Dyck checker and sampler against plain-Python references written here and in tests/references.py.

The checker is compared with a list stack machine, every start and every k, one start per row: on every string
of Σ^8 (n_types 1; n_types 2 at max_depth 2, every third string at max_depth 1 and 3), on every string of length
≤ 7 over two types (the checker reads only x[:, :start+k], so shorter strings are prefixes of these), and on
random large batches of valid, corrupted, random and deep documents with per-row starts. The sampler is compared
with exact enumeration by χ² (whole strings and per position), also for the first m < n tokens, and its samples'
log-probabilities with the reference's.
"""

import math
from collections import Counter

import pytest
import torch

from nextk.errors import InputError
from nextk.sources import Dyck
from tests import references as ref


def verdicts(x, max_depth: int, n: int) -> dict[tuple[int, int], bool]:
    """{(start, k): the window's verdict} for one string, by a plain list stack machine: the prefix is read
    with a close at depth 0 and an open at max_depth ignored (the checker's rule for a prefix that cannot be
    read); inside the window every close must match the popped top, every open must fit under max_depth, and
    the depth after the token at t must be ≤ n − t − 1."""
    out = {}
    for start in range(len(x)):
        stack: list[int] = []
        for tok in x[:start]:
            if tok % 2 == 0 and len(stack) < max_depth:
                stack.append(tok // 2)
            elif tok % 2 == 1 and stack:
                stack.pop()
        good = True
        for t in range(start, len(x)):
            tok = x[t]
            if tok % 2 == 0:
                good &= len(stack) < max_depth
                stack.append(tok // 2)
            else:
                good &= bool(stack) and stack.pop() == tok // 2
            good &= len(stack) <= n - t - 1
            out[start, t - start + 1] = good
            if not good:  # every longer window from this start is rejected too
                out.update({(start, kk): False for kk in range(t - start + 2, len(x) - start + 1)})
                break
    return out


def compare_all(d, xs: list, max_depth: int, n: int) -> Counter:
    """d against `verdicts` on every (string, start, k), one call per k with one start per row."""
    want = [verdicts(s, max_depth, n) for s in xs]
    seen = Counter()
    for k in range(1, len(xs[0]) + 1):
        rows = [(j, i) for j in range(len(xs)) for i in range(len(xs[0]) - k + 1)]
        got = d(torch.tensor([xs[j] for j, _ in rows]), torch.tensor([i for _, i in rows]), k).tolist()
        for (j, i), g in zip(rows, got):
            assert g == want[j][i, k], (xs[j], i, k)
            seen[g] += 1
    return seen


def test_reference_machine_equals_dyck_read():
    """The list machine here agrees with tests/references.py's dyck_read wherever the prefix can be read."""
    compared = 0
    for max_depth in (1, 2, 3):
        for s in ref.strings(4, 6):
            v = verdicts(s, max_depth, 6)
            for (start, k), got in v.items():
                stack = ref.dyck_read(s[:start], max_depth)
                if stack is not None:
                    want = ref.dyck_read(s[start : start + k], max_depth, stack, n=6, offset=start) is not None
                    assert got == want, (s, start, k)
                    compared += 1
    assert compared > 10000


@pytest.mark.parametrize("n_types,max_depth", [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)])
def test_checker_equals_stack_machine_on_every_string(n_types, max_depth):
    n = 8
    d = Dyck(n_types, max_depth, n).checks["valid"]
    xs = ref.strings(2 * n_types, n)
    if n_types == 2 and max_depth != 2:  # every 3rd of Σ^8's 65,536 strings (still every prefix of length ≤ 7)
        xs = xs[::3]
    seen = compare_all(d, xs, max_depth, n)
    assert seen[True] > 100 and seen[False] > 100


def test_every_short_string_of_two_types_is_judged():
    """All strings of length ≤ 7 over two types, every start and k, uneven max_depth: shorter x than n."""
    d = Dyck(2, 2, 8).checks["valid"]
    for length in range(1, 8):
        compare_all(d, ref.strings(4, length), 2, 8)


@pytest.mark.parametrize("n_types,max_depth", [(2, 8), (3, 4), (1, 30), (4, 30), (2, 40)])
def test_checker_on_large_batches_with_per_row_starts(n_types, max_depth):
    """Valid documents, documents with 1–3 tokens replaced, and uniform strings, n = 64; random starts per row."""
    n, g = 64, torch.Generator().manual_seed(11)
    p = Dyck(n_types, max_depth, n)
    good = p.sample(300, generator=g)
    bad = good.clone()
    for j in range(3):
        rows = torch.randint(300, (100 * (j + 1),), generator=g)
        bad[rows, torch.randint(n, (len(rows),), generator=g)] = torch.randint(2 * n_types, (len(rows),), generator=g)
    noise = torch.randint(2 * n_types, (300, n), generator=g)
    x = torch.cat([good, bad, noise])
    seen = Counter()
    for k in (1, 4, 17, 64):
        starts = torch.randint(n - k + 1, (len(x),), generator=g)
        got = p.checks["valid"](x, starts, k).tolist()
        for s, i, gv in zip(x.tolist(), starts.tolist(), got):
            want = verdicts(s[: i + k], max_depth, n)[i, k]
            assert gv == want, (s, i, k)
            seen[want] += 1
    assert seen[True] > 300 and seen[False] > 300


@pytest.mark.parametrize("n_types,max_depth", [(4, 30), (2, 40), (3, 25)])
def test_checker_on_deep_stacks(n_types, max_depth):
    """Stacks deeper than one int64 word holds (21 slots at 3 bits, 31 at 2 bits): up to max_depth opens of
    random types, then closes that match or, with probability 1/20 each, do not; n = 2·max_depth + 4."""
    n, g = 2 * max_depth + 4, torch.Generator().manual_seed(n_types)
    d = Dyck(n_types, max_depth, n).checks["valid"]
    rows = []
    for _ in range(400):
        h = int(torch.randint(max_depth - 5, max_depth + 2, (1,), generator=g))
        kinds = torch.randint(n_types, (h,), generator=g).tolist()
        closes = [2 * j + 1 for j in reversed(kinds)]
        for i in range(h):
            if torch.rand(1, generator=g).item() < 0.05:
                closes[i] = 2 * int(torch.randint(n_types, (1,), generator=g)) + 1
        row = [2 * j for j in kinds] + closes
        rows.append((row + [0, 1] * n)[:n])
    seen = Counter()
    for k in (1, 5, 40):
        starts = torch.randint(n - k + 1, (len(rows),), generator=g)
        got = d(torch.tensor(rows), starts, k).tolist()
        for s, i, gv in zip(rows, starts.tolist(), got):
            want = verdicts(s[: i + k], max_depth, n)[i, k]
            assert gv == want, (s, i, k)
            seen[want] += 1
    assert seen[True] > 100 and seen[False] > 100


def test_checker_reads_only_the_window():
    """Changing the tokens after start + k changes no verdict; too short a string is refused by name."""
    p, g = Dyck(2, 4, 32), torch.Generator().manual_seed(2)
    x = torch.randint(4, (500, 32), generator=g)
    x[:250] = p.sample(250, generator=g)
    starts = torch.randint(29, (500,), generator=g)
    y = x.clone()
    after = torch.arange(32) >= starts[:, None] + 4
    y[after] = torch.randint(4, (int(after.sum()),), generator=g)
    assert torch.equal(p.checks["valid"](x, starts, 4), p.checks["valid"](y, starts, 4))
    with pytest.raises(InputError, match="past the string length"):
        p.checks["valid"](x[:, :10], 8, 4)
    with pytest.raises(InputError, match="Dyck tokens must be in 0..3, got tokens from 0 to 4"):
        p.checks["valid"](torch.tensor([[0, 1, 4, 1]]), 1, 2)
    assert p.checks["valid"](torch.tensor([[0, 1, 4, 1]]), 0, 2).tolist() == [True]  # 4 lies past the window
    assert p.checks["valid"](x[:0], 3, 4).shape == (0,)


def balanced_count(n: int, max_depth: int, n_types: int) -> int:
    """Number of balanced strings, by walking every depth profile of length n (plain Python, for small n) or
    by a dictionary of depth → ways (any n)."""
    ways = {0: 1}
    for _ in range(n):
        nxt: dict[int, int] = {}
        for h, w in ways.items():
            if h < max_depth:
                nxt[h + 1] = nxt.get(h + 1, 0) + w * n_types
            if h > 0:
                nxt[h - 1] = nxt.get(h - 1, 0) + w
        ways = nxt
    return ways.get(0, 0)


@pytest.mark.parametrize("n_types,max_depth,n", [(2, 3, 8), (1, 4, 12), (3, 2, 6), (2, 1, 8)])
def test_sampler_matches_exact_enumeration(n_types, max_depth, n):
    """χ² on whole strings and per position against the enumerated language; the deepest shapes are rare
    (e.g. n_types=1, depth 4, n=12: (((())))()() has probability 1/|language|)."""
    p = Dyck(n_types, max_depth, n)
    probs = ref.dyck_probs(n_types, max_depth, n)
    x = p.sample(20000, generator=torch.Generator().manual_seed(5))
    assert ref.chi_square_pvalue(x, probs) > 1e-4
    lp = p.log_prob(x)
    assert torch.allclose(lp, torch.tensor([math.log(probs[tuple(s)]) for s in x.tolist()], dtype=torch.float64))


def test_sampler_of_the_first_m_tokens_matches_the_marginal():
    p, n = Dyck(2, 2, 8), 8
    probs = ref.dyck_probs(2, 2, n)
    for m in (1, 3, 6):
        marg = Counter()
        for s, px in probs.items():
            marg[s[:m]] += px
        x = p.sample(20000, m, generator=torch.Generator().manual_seed(m))
        assert x.shape == (20000, m)
        assert ref.chi_square_pvalue(x, dict(marg)) > 1e-4


def test_long_samples_are_valid_and_uniform_in_log_prob():
    """n = 64: every sample is read to an empty stack by dyck_read, and log p(x) = −log |language| with the
    language counted here."""
    for n_types, max_depth in ((2, 8), (4, 3), (1, 64)):
        p = Dyck(n_types, max_depth, 64)
        x = p.sample(500, generator=torch.Generator().manual_seed(max_depth))
        assert all(ref.dyck_read(s, max_depth) == [] for s in x.tolist())
        want = -math.log(balanced_count(64, max_depth, n_types))
        assert torch.allclose(p.log_prob(x), torch.full((500,), want, dtype=torch.float64), rtol=0, atol=1e-9)


def test_sampler_is_seeded_and_refuses_bad_sizes():
    p = Dyck(2, 3, 10)
    assert torch.equal(p.sample(50, generator=3), p.sample(50, generator=3))
    assert not torch.equal(p.sample(50, generator=3), p.sample(50, generator=4))
    assert p.sample(0).shape == (0, 10)
    with pytest.raises(InputError, match="length=12"):
        p.sample(5, 12)
    with pytest.raises(InputError, match="non-negative"):
        p.sample(-1)


def test_sampled_types_are_uniform_at_every_depth():
    """Among the opens at each (position, depth), every type equally often: χ² against uniform."""
    from scipy.stats import chisquare

    p = Dyck(3, 4, 16)
    x = p.sample(30000, generator=torch.Generator().manual_seed(9))
    depth = torch.cat([torch.zeros(len(x), 1, dtype=torch.long), (1 - 2 * (x % 2)).cumsum(1)[:, :-1]], 1)
    cells = Counter()
    for s, d in zip(x.tolist(), depth.tolist()):
        for t, (tok, h) in enumerate(zip(s, d)):
            if tok % 2 == 0:
                cells[t, h, tok // 2] += 1
    for t, h in {(t, h) for t, h, _ in cells}:
        obs = [cells[t, h, j] for j in range(3)]
        if sum(obs) >= 60:
            assert chisquare(obs).pvalue > 1e-5, (t, h, obs)
