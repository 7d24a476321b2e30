"""One shared battery over every exact source on tiny configurations (issue 2)."""

import math

import numpy as np
import pytest
import sympy
import torch

from nextk.errors import InputError, NotExactError, TooLargeError
from nextk.lm import log_probs_by_steps
from nextk.measure import all_strings, entropy, kl, support
from nextk.sources import HMM, Addition, Dyck, Factorization, Parity, Primes, RandomNumber, Text

TINY = {
    "hmm": lambda: HMM.random(3, 3, 5, seed=1),
    "dyck": lambda: Dyck(n_types=2, max_depth=2, length=6),
    "addition": lambda: Addition(digits=1),
    "factorization": lambda: Factorization(digits=1),
    "factorization_ff": lambda: Factorization(digits=1, order="factors_first"),
    "primes": lambda: Primes(digits=3),
    "random_number": lambda: RandomNumber(digits=3),
    "parity": lambda: Parity(block=3, length=7),
}


def support_of(src):
    """Strings with positive probability, their probabilities by log_prob, and those by the trie."""
    x, lp_trie = support(src)
    return x, src.log_prob(x).exp(), lp_trie.exp()


@pytest.fixture(params=sorted(TINY))
def src(request):
    return TINY[request.param]()


def test_probabilities_sum_to_one(src):
    x, p, p_trie = support_of(src)
    assert abs(p.sum().item() - 1) < 1e-12
    assert torch.allclose(p, p_trie, rtol=1e-12)
    if src.vocab_size**src.length <= 200_000:  # nothing outside the support has mass
        full = all_strings(src.vocab_size, src.length)
        assert abs(src.log_prob(full).exp().sum().item() - 1) < 1e-12


def test_conditionals_normalised_and_chain_rule(src):
    """Rows sum to 1, and q(x_t | x_{<t}) equals the ratio of enumerated prefix marginals."""
    full, pfull, _ = support_of(src)
    x = full
    x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:25]]
    lp = src.log_probs(x)  # (B, T, V)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(lp.shape[:2], dtype=torch.float64), atol=1e-12)
    for b, row in enumerate(x):
        for t in range(src.length):
            marg_t = pfull[(full[:, :t] == row[:t]).all(1)].sum()
            nxt = torch.stack(
                [
                    pfull[(full[:, : t + 1] == torch.cat([row[:t], torch.tensor([v])])).all(1)].sum()
                    for v in range(src.vocab_size)
                ]
            )
            assert torch.allclose(lp[b, t].exp(), nxt / marg_t, rtol=1e-9, atol=1e-15)


def test_step_equals_log_probs(src):
    x, _, _ = support_of(src)
    x = x[:50]
    assert torch.allclose(src.log_probs(x), log_probs_by_steps(src, x), atol=1e-12)


def test_sample_frequencies_match_exact(src):
    """Chi-square goodness of fit at a fixed seed; fails below p = 1e-4."""
    from scipy.stats import chisquare

    x, p, _ = support_of(src)
    samples = src.sample(20000, generator=torch.Generator().manual_seed(3))
    index = {tuple(r): i for i, r in enumerate(x.tolist())}
    counts = np.zeros(len(x))
    for r in samples.tolist():
        counts[index[tuple(r)]] += 1  # a KeyError would be a sample outside the support
    expected = p.numpy() * len(samples)
    big = expected >= 5
    obs = np.append(counts[big], counts[~big].sum())
    exp_ = np.append(expected[big], expected[~big].sum())
    if exp_[-1] == 0:
        obs, exp_ = obs[:-1], exp_[:-1]
    assert chisquare(obs, exp_).pvalue > 1e-4


def test_autoregressive_sampling_matches_too(src):
    """The generic step sampler (used with a prefix) draws from the same distribution."""
    from nextk.lm import sample_by_steps

    x, p, _ = support_of(src)
    samples = sample_by_steps(src, 4000, src.length, torch.Generator().manual_seed(5))
    lp = src.log_prob(samples)
    assert not torch.isneginf(lp).any()


def test_checkers_accept_samples_reject_corruptions(src):
    samples = src.sample(300, generator=torch.Generator().manual_seed(0))
    n = src.length
    for name, check in src.checks.items():
        for k in (1, 2, n):
            for start in range(0, n - k + 1):
                assert check(samples, start, k).all(), (name, start, k)
    # corrupt one token inside the window; strings that became impossible must be rejected
    g = torch.Generator().manual_seed(1)
    for name, check in src.checks.items():
        for _ in range(20):
            t = int(torch.randint(0, n, (1,), generator=g))
            bad = samples.clone()
            bad[:, t] = torch.randint(0, src.vocab_size, (len(bad),), generator=g)
            impossible = torch.isneginf(src.log_prob(bad))
            # judged on the whole document, every checker (exact or arithmetic) rejects each impossible one
            assert not check(bad, 0, n)[impossible].any(), name


def test_entropy_and_kl_exact_vs_sampled(src):
    h_exact = entropy(src, estimator="exact")
    h = entropy(src, num_docs=4000, seed=0)
    assert h.low - 1e-9 <= h_exact.value <= h.high + 1e-9 or h.stderr == 0
    assert abs(kl(src, src, estimator="exact").value) < 1e-12


def test_hmm_matches_plain_python_forward():
    src = HMM.random(4, 3, 7, seed=2)
    x = src.sample(30, generator=torch.Generator().manual_seed(0))
    s, t, e = src.start_p.tolist(), src.trans.tolist(), src.emit.tolist()
    for row, lp in zip(x.tolist(), src.log_prob(x).tolist()):
        alpha = [s[z] * e[z][row[0]] for z in range(4)]
        for tok in row[1:]:
            alpha = [sum(alpha[y] * t[y][z] for y in range(4)) * e[z][tok] for z in range(4)]
        assert math.isclose(lp, math.log(sum(alpha)), rel_tol=0, abs_tol=1e-9)
    assert torch.allclose(src.log_prob(x), src.log_probs(x).gather(-1, x[..., None]).squeeze(-1).sum(1), atol=1e-12)


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


@pytest.mark.parametrize("digits", [1, 2, 3])
def test_factorization_probabilities_equal_independent_counts(digits):
    src = Factorization(digits=digits)
    primes = list(sympy.primerange(10 ** (digits - 1), 10**digits))
    pi = len(primes)
    rng = np.random.default_rng(0)
    for _ in range(30):
        p, q = sorted(rng.choice(primes, 2), reverse=True)
        prob = src.log_prob(src.encode(src.render(int(p), int(q)))).exp().item()
        assert math.isclose(prob, (1 if p == q else 2) / pi**2, rel_tol=1e-12)
    # conditional of the first digit of N: count pairs whose product starts with that digit
    lp0 = src.log_probs(src.encode(src.render(primes[0], primes[0]))[None])[0, 0].exp()
    counts = np.zeros(src.vocab_size)
    for i, p in enumerate(primes):
        for q in primes[: i + 1]:
            counts[int(str(p * q)[0])] += 1 if p == q else 2
    assert np.allclose(lp0.numpy(), counts / pi**2, atol=1e-15)


@pytest.mark.parametrize("digits", [1, 2, 3, 4])
def test_primes_probabilities_equal_sympy_counts(digits):
    src = Primes(digits=digits)
    primes = list(sympy.primerange(10 ** (digits - 1), 10**digits))
    x = src.sample(50, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(src.log_prob(x).exp(), torch.full((50,), 1 / len(primes), dtype=torch.float64), rtol=1e-12)
    # next-digit conditional after the first digit '1' equals counts from sympy
    if digits >= 2:
        lp = src.log_probs(torch.tensor([[1] + [0] * (digits - 1)]))[0, 1].exp()
        counts = np.array([sum(1 for p in primes if str(p)[:2] == f"1{v}") for v in range(10)], dtype=float)
        assert np.allclose(lp.numpy(), counts / counts.sum(), atol=1e-15)


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
