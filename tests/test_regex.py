"""Regex source against brute force: every string over the alphabet, judged by Python's own
`re.fullmatch` (a backtracking matcher, independent of the DFA greenery builds), for every length up
to 8; weighted variants against products of weights; long lengths against a Fibonacci count;
samples by χ²; the window check by enumeration; bad input as one line (Python and CLI)."""

import itertools
import math
import re
import shlex

import pytest
import scipy.stats
import torch

from nextk.errors import InputError, TooLargeError
from nextk.measure import entropy
from nextk.sources import Regex, make_source
from tests.cli_tools import cli, cli_json

# (pattern, alphabet): alternation, classes, repetition counts, negation, and languages empty at some lengths
PATTERNS = [
    ("(ab|c)*d", "abcd"),
    ("[ab]{2,3}c*", "abc"),
    ("a(b|cc)*", "abc"),
    ("(abc)*", "abc"),  # empty unless 3 | length
    ("[^a]b?a{2}", "abc"),  # empty beyond 4
    ("(0|1[01]*)", "01"),  # binary numerals without leading zeros
    ("x{2,4}(y|z)+", "xyz"),
    # "." excludes "\n" (Python `re` without DOTALL); "[^a]", "\W", "\s" and a literal "\n" include it
    ("a.b", "ab\n"),
    ("(.|\n)[^a]\\W?", "ab\n"),
    ("a\nb.*", "ab\n"),
]


def brute(pattern: str, alphabet: str, n: int, weight=lambda s: 1.0) -> dict[str, float]:
    """{string: probability} over every string of n characters that re.fullmatch accepts."""
    hits = {"".join(s): weight("".join(s)) for s in itertools.product(alphabet, repeat=n)}
    hits = {s: w for s, w in hits.items() if re.fullmatch(pattern, s) and w > 0}
    total = sum(hits.values())
    return {s: w / total for s, w in hits.items()}


def all_probs(src: Regex, alphabet: str, n: int) -> dict[str, float]:
    strings = ["".join(s) for s in itertools.product(alphabet, repeat=n)]
    x = torch.stack([src.encode(s) for s in strings])
    return dict(zip(strings, src.log_prob(x).exp().tolist()))


@pytest.mark.parametrize("pattern,alphabet", PATTERNS)
def test_distribution_equals_fullmatch_enumeration(pattern, alphabet):
    for n in range(1, 9):
        if len(alphabet) ** n > 70_000:
            continue
        ref = brute(pattern, alphabet, n)
        if not ref:
            with pytest.raises(InputError, match="matches no string of exactly"):
                Regex(pattern, n, vocab=alphabet)
            continue
        src = Regex(pattern, n, vocab=alphabet)
        assert src.n_strings == len(ref)
        got = all_probs(src, alphabet, n)
        for s, p in got.items():
            assert abs(p - ref.get(s, 0.0)) < 1e-12, (pattern, n, s, p, ref.get(s))


def test_default_vocab_is_the_characters_the_pattern_names():
    assert Regex("(ab|c)*d", 4).vocab == list("abcd")
    assert Regex("x[0-2]", 2).vocab == list("012x")


@pytest.mark.parametrize("pattern,alphabet", PATTERNS[:3])
def test_weighted_by_token_equals_product_of_weights(pattern, alphabet):
    w = {c: 0.5 + i for i, c in enumerate(alphabet)}
    for n in (3, 5, 6):
        ref = brute(pattern, alphabet, n, weight=lambda s: math.prod(w[c] for c in s))
        src = Regex(pattern, n, vocab=alphabet).with_weights(w)
        got = all_probs(src, alphabet, n)
        assert max(abs(p - ref.get(s, 0.0)) for s, p in got.items()) < 1e-12


def test_weights_per_transition_table_and_zero_weights():
    src = Regex("(ab|c)*d", 5)
    table = [[1.0, 1.0, 3.0, 1.0] for _ in range(len(src.transitions))]
    got = all_probs(src.with_weights(table), "abcd", 5)
    ref = brute("(ab|c)*d", "abcd", 5, weight=lambda s: 3.0 ** s.count("c"))
    assert max(abs(p - ref.get(s, 0.0)) for s, p in got.items()) < 1e-12
    only_c = all_probs(src.with_weights({"a": 0.0}), "abcd", 5)  # a weight 0 removes ab
    assert abs(only_c["ccccd"] - 1.0) < 1e-12


def fib_count(m: int) -> int:
    """Strings of (ab|c)* with m characters: f(m) = f(m−1) + f(m−2), f(0) = f(1) = 1."""
    a, b = 1, 1
    for _ in range(m - 1):
        a, b = b, a + b
    return b if m >= 1 else a


def test_exact_for_lengths_in_the_hundreds():
    n = 300
    src = Regex("(ab|c)*d", n)
    assert src.n_strings == fib_count(n - 1)
    x = src.sample(5, generator=3)
    assert all(re.fullmatch("(ab|c)*d", s) for s in src.decode(x))
    expected = -math.log(fib_count(n - 1))
    assert torch.allclose(src.log_prob(x), torch.full((5,), expected, dtype=torch.float64), rtol=1e-12, atol=0)
    # after "ab" the completion count is f(n − 3): conditional of 'a' first is f(n−3)/f(n−1)
    lp = src.log_probs(x[:1])[0, 0]
    assert abs(lp[0].item() - math.log(fib_count(n - 3) / fib_count(n - 1))) < 1e-12


def test_samples_pass_chi_square_against_exact_law():
    """A weighted case with rare strings (weight 0.2 per c): counts of 20,000 draws against brute force."""
    n, w = 6, {"c": 0.2}
    ref = brute("(ab|c)*d", "abcd", n, weight=lambda s: 0.2 ** s.count("c"))
    src = Regex("(ab|c)*d", n).with_weights(w)
    x = src.sample(20_000, generator=11)
    seen = {}
    for s in src.decode(x):
        seen[s] = seen.get(s, 0) + 1
    assert set(seen) <= set(ref)
    keys = sorted(ref)
    assert min(ref.values()) < 0.01  # the rare string is in the test
    observed = [seen.get(k, 0) for k in keys]
    expected = [ref[k] * len(x) for k in keys]
    assert scipy.stats.chisquare(observed, expected).pvalue > 1e-3


def test_valid_check_reads_only_its_window_and_matches_enumeration():
    n, alphabet = 6, "abcd"
    src = Regex("(ab|c)*d", n)
    support = set(brute("(ab|c)*d", alphabet, n))
    strings = ["".join(s) for s in itertools.product(alphabet, repeat=n)]
    x = torch.stack([src.encode(s) for s in strings])
    for start, k in ((0, 2), (2, 3), (3, 3)):
        got = src.checks["valid"](x, start, k)
        # valid iff some matching string extends x[:start+k] (the prefix itself possible)
        prefixes = {s[: start + k] for s in support}
        before = {s[:start] for s in support}
        want = [s[: start + k] in prefixes or s[:start] not in before for s in strings]
        assert got.tolist() == want
        cut = src.checks["valid"](x[:, : start + k], start, k)  # columns past the window are never read
        assert torch.equal(cut, got)


def test_exact_entropy_is_log_count():
    src = Regex("[ab]{2,3}c*", 6)
    h = entropy(src, estimator="exact")
    assert abs(h.value - math.log(len(brute("[ab]{2,3}c*", "abc", 6)))) < 1e-9


def test_repr_and_params_rebuild_the_source():
    src = Regex("(ab|c)*d", 7, vocab="abcde").with_weights({"c": 2.0})
    again = make_source("regex", **src.params)
    x = src.sample(10, generator=0)
    assert torch.equal(src.log_prob(x), again.log_prob(x))
    assert "pattern='(ab|c)*d'" in repr(src) and "weights={'c': 2.0}" in repr(src)


@pytest.mark.parametrize(
    "kwargs,error,needle",
    [
        (dict(pattern="(abc)*", length=4), InputError, "matches no string of exactly 4"),
        (dict(pattern=r"(a)\1", length=2), InputError, "backreference"),
        (dict(pattern="a(?=b)b", length=2), InputError, "lookahead"),
        (dict(pattern="(?<!a)b", length=1), InputError, "lookbehind"),
        (dict(pattern="^ab$", length=2), InputError, "anchor"),
        (dict(pattern="a(b", length=2), InputError, "not a Python regular expression"),
        (dict(pattern="a.b", length=3), InputError, "give vocab="),
        (dict(pattern="abcdefgh", length=8, max_states=4), TooLargeError, "max_states=4"),
        (  # subset construction runs away (minutes unbounded): stopped at the budget, while it is built
            dict(pattern="(a[bcd]{3,12}|b[acd]{2,9}|cd{4,20})+", length=10, vocab="abcd", max_states=200),
            TooLargeError,
            "max_states=200",
        ),
        (dict(pattern="ab", length=2, weights={"a": -1.0}), InputError, "non-negative"),
        (dict(pattern="ab", length=2, weights={"z": 1.0}), InputError, "outside the vocabulary"),
        (dict(pattern="ab", length=2, weights=[[1.0]]), InputError, "weights table has shape"),
        (dict(pattern="ab", length=0), InputError, "length must be a positive integer"),
        (dict(pattern="(ab|c)*d", length=10**7), TooLargeError, "length=10,000,000 is beyond the 1,000,000"),
        (dict(pattern="[a-j]*x[a-j]{300}", length=10**6), TooLargeError, "float64 entries (25,345 MiB)"),
        (dict(pattern="ab", length=2, vocab="aab"), InputError, "distinct single characters"),
    ],
)
def test_bad_input_one_line(kwargs, error, needle):
    with pytest.raises(error, match=re.escape(needle)) as e:
        Regex(**kwargs)
    assert "\n" not in str(e.value)
    if "weights" not in kwargs:  # the same line on the command line
        r = cli("sample regex " + " ".join(f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in kwargs.items()))
        assert r.exit_code == 2 and r.output.startswith("error:") and needle in " ".join(r.output.split()), r.output


def test_greenery_is_left_as_it_was():
    import greenery.fsm

    before = greenery.fsm.crawl
    with pytest.raises(TooLargeError):
        Regex("abcdefgh", 8, max_states=4)
    Regex("(ab|c)*d", 6)
    assert greenery.fsm.crawl is before
    assert greenery.parse("a.b").to_fsm().accepts("a\nb")  # "." is patched only while compiling


def test_cli_samples_and_refuses():
    out = cli_json("sample regex --pattern '(ab|c)*d' --length 12 --num 5")
    assert all(re.fullmatch("(ab|c)*d", r["text"]) for r in out["samples"])
    assert out["params"]["pattern"] == "(ab|c)*d"
    digits = cli_json("sample regex --pattern 0101 --length 4 --num 1")  # stays text, not the number 101
    assert digits["samples"][0]["text"] == "0101"
    for command, needle in (
        ("sample regex --pattern '(a)\\1' --length 2", "backreference"),
        ("sample regex --pattern '(abc)*' --length 4", "matches no string"),
    ):
        r = cli(command)
        assert r.exit_code == 2 and r.output.startswith("error:") and needle in r.output, r.output
    assert "regex" in cli("sources").output


def test_python_api_bad_arguments_are_one_line_nextk_errors():
    src = Regex("[ab]*", 4)
    x = src.sample(3, generator=0)
    valid = src.checks["valid"]
    with pytest.raises(InputError, match=r"window start has shape \(2,\), but x has 3 rows"):
        valid(x, start=torch.tensor([0, 1]), k=2)
    for bad in (1.5, "1", True, torch.tensor([0.0, 1.0, 0.0])):
        with pytest.raises(InputError, match="window start must be an integer"):
            valid(x, start=bad, k=2)
    with pytest.raises(InputError, match="5 characters is longer than this source's documents \\(4\\)"):
        src.encode("ababa")
    assert src.encode("ab").tolist() == [0, 1]  # a prefix: log_probs take prefixes


def test_weights_from_text_on_the_command_line_and_numbers_only():
    ref = brute("(ab|c)*d", "abcd", 6, weight=lambda s: 0.5 ** s.count("c") * 2.0 ** s.count("d"))
    for text in ('{"c": 0.5, "d": 2}', "c=0.5,d=2"):
        out = cli_json(f"sample regex --pattern '(ab|c)*d' --length 6 --weights '{text}' --num 40 --json")
        for row in out["samples"]:
            assert abs(math.exp(row["log_prob"]) - ref[row["text"]]) < 1e-12
        src = Regex("(ab|c)*d", 6, weights=text)
        assert all(abs(p - ref.get(s, 0.0)) < 1e-12 for s, p in all_probs(src, "abcd", 6).items())
    src = Regex("(ab|c)*d", 6)
    for bad, needle in (({"c": "2"}, "weight of 'c' must be a number"), ("c=x", "must be a number"), ("c2", "c=0.5")):
        with pytest.raises(InputError, match=needle):
            src.with_weights(bad)
    with pytest.raises(InputError, match="entries must be numbers"):
        src.with_weights([["1"] * 4] * len(src.transitions))
