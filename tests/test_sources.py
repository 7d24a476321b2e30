"""One shared battery over every exact source on tiny configurations.

Each source is compared with an independent reference written in tests/references.py from the
source's definition (a stack machine for Dyck, arithmetic for parity and addition, counting for
random numbers, sympy for primes and factorization, a plain-list forward recursion for the HMM):
whole-string probabilities over all strings, samples by chi-square, checkers by direct rules.
"""

import math
from collections import Counter

import pytest
import sympy
import torch

from nextk.errors import InputError, NotExactError, TooLargeError
from nextk.lm import sample_by_steps
from nextk.measure import all_strings, entropy, kl, support
from nextk.models import NGram
from nextk.sources import HMM, Addition, Dyck, Factorization, Parity, Primes, RandomNumber, Text
from nextk.sources.common import TokenSource
from tests import references as ref


def hmm_reference(src):
    return ref.hmm_probs(src.start_p.tolist(), src.trans.tolist(), src.emit.tolist(), src.length)


# name: (the source, its reference distribution {string: probability} from the same parameters)
TINY = {
    "hmm": (lambda: HMM.random(3, 3, 5, seed=1), hmm_reference),
    "dyck": (lambda: Dyck(n_types=2, max_depth=2, length=6), lambda s: ref.dyck_probs(2, 2, 6)),
    "addition": (lambda: Addition(digits=1), lambda s: ref.addition_probs(1)),
    "factorization": (lambda: Factorization(digits=1), lambda s: ref.factorization_probs(1)),
    "factorization_ff": (
        lambda: Factorization(digits=1, order="factors_first"),
        lambda s: ref.factorization_probs(1, "factors_first"),
    ),
    "factorization_unsorted": (
        lambda: Factorization(digits=1, sorted=False),
        lambda s: ref.factorization_probs(1, sort=False),
    ),
    "primes": (lambda: Primes(digits=3), lambda s: ref.primes_probs(3)),
    "random_number": (lambda: RandomNumber(digits=3), lambda s: ref.random_number_probs(3)),
    "parity": (lambda: Parity(block=3, length=7), lambda s: ref.parity_probs(3, 7)),
}
# more configurations checked against their references (whole distributions only)
MORE = {
    "hmm_4x3x7": (lambda: HMM.random(4, 3, 7, seed=2), hmm_reference),
    "dyck_1x3x8": (lambda: Dyck(n_types=1, max_depth=3, length=8), lambda s: ref.dyck_probs(1, 3, 8)),
    "dyck_3x2x4": (lambda: Dyck(n_types=3, max_depth=2, length=4), lambda s: ref.dyck_probs(3, 2, 4)),
    "dyck_2x4x6": (lambda: Dyck(n_types=2, max_depth=4, length=6), lambda s: ref.dyck_probs(2, 4, 6)),
    "addition_2": (lambda: Addition(digits=2), lambda s: ref.addition_probs(2)),
    "parity_4x10": (lambda: Parity(block=4, length=10), lambda s: ref.parity_probs(4, 10)),
    "parity_2x5": (lambda: Parity(block=2, length=5), lambda s: ref.parity_probs(2, 5)),
    "random_number_1": (lambda: RandomNumber(digits=1), lambda s: ref.random_number_probs(1)),
    "random_number_4": (lambda: RandomNumber(digits=4), lambda s: ref.random_number_probs(4)),
    **{f"primes_{d}": (lambda d=d: Primes(digits=d), lambda s, d=d: ref.primes_probs(d)) for d in (1, 2, 4)},
    **{
        f"factorization_{d}_{o}": (
            lambda d=d, o=o: Factorization(d, order=o),
            lambda s, d=d, o=o: ref.factorization_probs(d, o),
        )
        for d in (2,)
        for o in ("product_first", "factors_first")
    },
    "factorization_2_unsorted_ff": (
        lambda: Factorization(2, order="factors_first", sorted=False),
        lambda s: ref.factorization_probs(2, "factors_first", sort=False),
    ),
}


@pytest.fixture(params=sorted(TINY))
def name(request):
    return request.param


def build(name):
    make, reference = (TINY | MORE)[name]
    src = make()
    return src, reference(src)


def test_reference_distributions_are_distributions():
    """The references themselves: probabilities sum to 1 (and the counts the docstrings state)."""
    for name in sorted(TINY | MORE):
        _, probs = build(name)
        assert abs(sum(probs.values()) - 1) < 1e-12, name
    assert len(ref.dyck_probs(2, 3, 6)) == 40  # 5 bracket shapes × 2³ types (Dyck docstring)
    assert len(ref.primes_probs(2)) == 21 and len(ref.factorization_probs(1)) == 10  # 4 primes: 4·5/2 pairs
    assert len(ref.factorization_probs(1, sort=False)) == 16  # ordered pairs


@pytest.mark.parametrize("name", sorted(TINY | MORE))
def test_whole_distribution_equals_reference(name):
    """max over every string of Σ^n of |p̄_source(x) − p̄_reference(x)|."""
    src, probs = build(name)
    assert ref.max_abs_difference(src, probs, src.vocab_size, src.length) < 1e-12


def test_probabilities_sum_to_one(name):
    """Identity check: the source's own probabilities are a distribution (support by its trie)."""
    src, _ = build(name)
    x, lp = support(src)
    p = src.log_prob(x).exp()
    assert abs(p.sum().item() - 1) < 1e-12
    assert torch.allclose(p, lp.exp(), rtol=1e-12)
    if src.vocab_size**src.length <= 200_000:  # nothing outside the support has mass
        full = all_strings(src.vocab_size, src.length)
        assert abs(src.log_prob(full).exp().sum().item() - 1) < 1e-12


@pytest.mark.parametrize("name", sorted(TINY | MORE))
def test_conditionals_equal_reference_marginal_ratios(name):
    """q(v | x_<t) = P_ref(x_<t v) / P_ref(x_<t) for every v, along reference strings; rows sum to 1 and
    log_prob is the chain-rule sum of the gathered conditionals (identity checks)."""
    src, probs = build(name)
    marg = ref.prefix_marginals(probs)
    xs = sorted(probs)
    xs = [xs[i] for i in torch.randperm(len(xs), generator=torch.Generator().manual_seed(0))[:25].tolist()]
    x = torch.tensor(xs)
    lp = src.log_probs(x)  # (B, T, V)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(lp.shape[:2], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(src.log_prob(x), lp.gather(-1, x[..., None]).squeeze(-1).sum(1), atol=1e-12)
    for b, row in enumerate(xs):
        for t in range(src.length):
            want = [marg.get(row[:t] + (v,), 0.0) / marg[row[:t]] for v in range(src.vocab_size)]
            assert max(abs(g - w) for g, w in zip(lp[b, t].exp().tolist(), want)) < 1e-12, (row, t)


def test_sample_frequencies_match_reference(name):
    """Chi-square of src.sample against the reference probabilities at a fixed seed; fails below p = 1e-4."""
    src, probs = build(name)
    samples = src.sample(20000, generator=torch.Generator().manual_seed(3))
    assert ref.chi_square_pvalue(samples, probs) > 1e-4


@pytest.mark.parametrize("name", sorted(n for n in TINY if type(TINY[n][0]()).sample is not TokenSource.sample))
def test_autoregressive_sampling_matches_reference_too(name):
    """Sources with a faster exact sampler: the generic step sampler also draws from the reference."""
    src, probs = build(name)
    samples = sample_by_steps(src, 20000, src.length, torch.Generator().manual_seed(5))
    assert ref.chi_square_pvalue(samples, probs) > 1e-4


def test_samples_with_a_prefix_follow_the_reference_conditional():
    """prefix=: the continuation is drawn from P_ref(x | x_<t = prefix)."""
    cases = [
        (Dyck(2, 2, 6), ref.dyck_probs(2, 2, 6), (0, 2)),
        (Primes(3), ref.primes_probs(3), (1,)),
        (Addition(1), ref.addition_probs(1), (7,)),
        (Factorization(1), ref.factorization_probs(1), (2,)),
    ]
    for src, probs, prefix in cases:
        cond = {x: px for x, px in probs.items() if x[: len(prefix)] == prefix}
        total = sum(cond.values())
        samples = src.sample(5000, prefix=torch.tensor(prefix), generator=7)
        assert ref.chi_square_pvalue(samples, {x: px / total for x, px in cond.items()}) > 1e-4, type(src)


def test_checkers_accept_samples_reject_corruptions(name):
    src, _ = build(name)
    samples = src.sample(300, generator=torch.Generator().manual_seed(0))
    n = src.length
    for check_name, check in src.checks.items():
        for k in (1, 2, n):
            for start in range(0, n - k + 1):
                assert check(samples, start, k).all(), (check_name, start, k)
    # corrupt one token inside the window; strings that became impossible must be rejected
    g = torch.Generator().manual_seed(1)
    for check_name, check in src.checks.items():
        for _ in range(20):
            t = int(torch.randint(0, n, (1,), generator=g))
            bad = samples.clone()
            bad[:, t] = torch.randint(0, src.vocab_size, (len(bad),), generator=g)
            impossible = torch.isneginf(src.log_prob(bad))
            # judged on the whole document, every checker (exact or arithmetic) rejects each impossible one
            assert not check(bad, 0, n)[impossible].any(), check_name


def test_entropy_and_kl_equal_reference(name):
    """Exact H(p̄) and KL(p̄ ‖ q̄) against sums over the reference; q a smoothed unigram model (positive
    everywhere), whose whole-string probabilities enter the reference sum; the sampled entropy's interval
    holds the reference value."""
    src, probs = build(name)
    h_ref = -sum(px * math.log(px) for px in probs.values())
    assert abs(entropy(src, estimator="exact").value - h_ref) < 1e-10
    h = entropy(src, num_docs=4000, seed=0)
    assert h.low - 1e-9 <= h_ref <= h.high + 1e-9 or (h.stderr == 0 and abs(h.value - h_ref) < 1e-9)
    q = NGram(1, src.vocab_size, smoothing=1.0).fit(src.sample(50, generator=2))
    xs = list(probs)
    lq = q.log_prob(torch.tensor(xs)).tolist()
    kl_ref = sum(probs[x] * (math.log(probs[x]) - lqx) for x, lqx in zip(xs, lq))
    assert abs(kl(src, q, estimator="exact").value - kl_ref) < 1e-9


# ---- checkers against rules written here -------------------------------------------------------------


def windows(n):
    return [(start, k) for k in range(1, n + 1) for start in range(n - k + 1)]


def dyck_window_valid(x, start, k, max_depth):
    """The Dyck checker's rule on a plain list stack: the prefix is read onto the stack; inside the window
    every close matches the top, depth stays ≤ max_depth and, after the window token at t, ≤ n − t − 1.
    None when the prefix itself cannot be read (a mismatched close, or deeper than max_depth)."""
    stack = ref.dyck_read(x[:start], max_depth)
    if stack is None:
        return None
    return ref.dyck_read(x[start : start + k], max_depth, stack, n=len(x), offset=start) is not None


@pytest.mark.parametrize("n_types,max_depth,length", [(2, 2, 6), (1, 3, 8), (1, 1, 6), (2, 3, 6)])
def test_dyck_checker_equals_stack_machine(n_types, max_depth, length):
    """Every string of Σ^n, every start and k whose prefix can be read; the whole-document judgement
    (start 0, k = n) is membership in the reference language."""
    p = Dyck(n_types, max_depth, length)
    xs = ref.strings(2 * n_types, length)
    x = torch.tensor(xs)
    compared = Counter()
    for start, k in windows(length):
        got = p.checks["valid"](x, start, k).tolist()
        for s, g in zip(xs, got):
            want = dyck_window_valid(s, start, k, max_depth)
            if want is not None:
                assert g == want, (s, start, k)
                compared[want] += 1
    assert compared[True] > 0 and compared[False] > 0
    language = ref.dyck_probs(n_types, max_depth, length)
    assert p.checks["valid"](x, 0, length).tolist() == [s in language for s in xs]


def parity_window_valid(x, start, k, block):
    """Every complete block whose last bit lies in [start, start + k) has an even number of ones."""
    return all(
        sum(x[e - block + 1 : e + 1]) % 2 == 0 for e in range(block - 1, len(x), block) if start <= e < start + k
    )


@pytest.mark.parametrize("block,length", [(3, 7), (2, 6), (4, 9)])
def test_parity_checker_equals_arithmetic(block, length):
    p = Parity(block=block, length=length)
    xs = ref.strings(2, length)
    x = torch.tensor(xs)
    for start, k in windows(length):
        want = [parity_window_valid(s, start, k, block) for s in xs]
        assert p.checks["parity"](x, start, k).tolist() == want, (start, k)


def addition_window_valid(x, d):
    """The rule for every window of x at once: {(start, k): valid}. '+' at d, '=' at 2d+1, digits at operand
    positions, and the digit of c at 2d+2+j equal to digit j of a + b (in d+1 digits), for the positions inside
    the window. A window whose prefix holds a non-digit operand is left out (a and b cannot be read)."""
    plus, eq = ref.ADDITION_VOCAB.index("+"), ref.ADDITION_VOCAB.index("=")
    operands = list(range(d)) + list(range(d + 1, 2 * d + 1))
    readable = all(x[t] <= 9 for t in operands)
    c = f"{int(''.join(map(str, x[:d]))) + int(''.join(map(str, x[d + 1 : 2 * d + 1]))):0{d + 1}d}" if readable else ""
    bad = []
    for t, tok in enumerate(x):
        if t == d or t == 2 * d + 1:
            bad.append(tok != (plus if t == d else eq))
        elif t in operands:
            bad.append(tok > 9)
        else:
            bad.append(readable and tok != int(c[t - 2 * d - 2]))
    first_unreadable = min([t for t in operands if x[t] > 9], default=len(x))
    return {(s, k): not any(bad[s : s + k]) for s, k in windows(len(x)) if s <= first_unreadable}


@pytest.mark.parametrize("digits", [1, 2])
def test_addition_checker_equals_arithmetic(digits):
    """Valid documents, every single-token corruption of them, and uniform random strings."""
    p = Addition(digits)
    n, g = p.length, torch.Generator().manual_seed(0)
    valid = torch.tensor(sorted(ref.addition_probs(digits)))
    valid = valid[torch.randperm(len(valid), generator=g)[:20]]
    corrupt = valid.repeat_interleave(n * 12, 0)
    pos, tok = torch.arange(n).repeat_interleave(12).repeat(len(valid)), torch.arange(12).repeat(n * len(valid))
    corrupt[torch.arange(len(corrupt)), pos] = tok
    x = torch.cat([valid, corrupt, torch.randint(0, 12, (500, n), generator=g)])
    rules = [addition_window_valid(s, digits) for s in x.tolist()]
    compared = Counter()
    for start, k in windows(n):
        got = p.checks["sum"](x, start, k).tolist()
        for i, (rule, g) in enumerate(zip(rules, got)):
            if (start, k) in rule:
                assert g == rule[start, k], (x[i].tolist(), start, k)
                compared[g] += 1
    assert compared[True] > 1000 and compared[False] > 1000


# ---- other sources and errors ----------------------------------------------------------------------


def test_hmm_matches_hmmlearn():
    hmmlearn = pytest.importorskip("hmmlearn.hmm")
    src = HMM.random(5, 4, 20, seed=3)
    model = hmmlearn.CategoricalHMM(n_components=5, init_params="", params="")
    model.startprob_, model.transmat_, model.emissionprob_ = (src.start_p.numpy(), src.trans.numpy(), src.emit.numpy())
    model.n_features = 4
    x = src.sample(10, generator=torch.Generator().manual_seed(0))
    ours = src.log_prob(x)
    for row, lp in zip(x.numpy(), ours.tolist()):
        assert abs(model.score(row.reshape(-1, 1)) - lp) < 1e-9


def test_bad_input_is_named():
    d = Dyck(1, 2, 4)
    with pytest.raises(InputError, match="outside the vocabulary"):
        d.log_prob(torch.tensor([[0, 5, 1, 1]]))
    with pytest.raises(InputError, match="length is 4"):
        d.log_prob(torch.zeros(1, 6, dtype=torch.long))
    with pytest.raises(InputError, match="even"):
        Dyck(1, 2, 5)
    with pytest.raises(ValueError, match="unknown order"):
        Factorization(2, order="middle")
    with pytest.raises(TooLargeError, match="pairs"):
        Factorization(digits=6).log_probs(torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(TooLargeError, match="items"):
        all_strings(10, 12)
    with pytest.raises(InputError, match="past the string length"):
        d.checks["valid"](torch.zeros(1, 4, dtype=torch.long), 2, 3)
    with pytest.raises(InputError, match="does not exist"):
        Text("/nonexistent/file.txt")


def test_text_source(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("abcabcabd")
    src = Text(f, length=4)
    s = src.sample(10, generator=0)
    assert s.shape == (10, 4) and all(w in "abcabcabd" for w in src.decode(s))
    with pytest.raises(NotExactError):
        src.log_probs(s)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(InputError, match="empty"):
        Text(tmp_path / "empty.txt")


def test_factorization_samples_any_digits():
    src = Factorization(digits=8)
    s = src.sample(3, generator=0)
    check = src.checks["arithmetic"]
    assert check(s, 0, src.length).all()
    for text in src.decode(s):
        n, pq = text.split("=")
        p, q = map(int, pq.split("*"))
        assert p * q == int(n) and sympy.isprime(p) and sympy.isprime(q) and len(str(p)) == 8
