"""PCFG against brute-force enumeration of leftmost derivations (written here: expand the leftmost
nonterminal by every rule, multiply rule probabilities, keep terminal strings of the length), for
small grammars including ambiguous ones and lengths where the language is empty; conditionals by the
chain rule through start/step; samples by χ²; bad grammars as one line (Python and CLI)."""

import itertools
import math
import re

import numpy as np
import pytest
import scipy.stats
import torch

from nextk.errors import InputError, TooLargeError
from nextk.measure import entropy
from nextk.sources import PCFG, make_source
from tests.cli_tools import cli, cli_json

AMBIGUOUS = "S -> S S [0.3] | 'a' [0.5] | 'b' [0.2]"
NESTED = "S -> 'a' S 'b' [0.5] | 'c' [0.5]"  # a^k c b^k: odd lengths only
ENGLISH = """# PP attachment (NP PP or VP PP) makes it ambiguous; NP -> N is a unary rule
S -> NP VP [1.0]
NP -> 'd' N [0.6] | NP PP [0.2] | N [0.2]
VP -> 'v' NP [0.5] | VP PP [0.3] | 'v' [0.2]
PP -> 'p' NP [1.0]
N -> 'n' [0.7] | 'a' N [0.3]
"""
GRAMMARS = {"ambiguous": AMBIGUOUS, "nested": NESTED, "english": ENGLISH}


def parse_rules(text: str) -> tuple[str, dict]:
    """Plain string splitting of the notation (independent of lark): {lhs: [(rhs, prob)]}."""
    rules, start = {}, None
    for line in re.split(r"[;\n]", "\n".join(row.split("#")[0] for row in text.splitlines())):
        line = line.strip()
        if not line:
            continue
        lhs, body = (s.strip() for s in line.split("->"))
        start = start or lhs
        for alt in body.split("|"):
            symbols, prob = alt.strip().rsplit("[", 1)
            rules.setdefault(lhs, []).append((symbols.split(), float(prob.rstrip("] "))))
    return start, rules


def brute(text: str, n: int) -> dict[str, float]:
    """{string: P(string | length n)} by enumerating every leftmost derivation whose form fits n."""
    start, rules = parse_rules(text)
    out: dict[str, float] = {}
    stack = [((start,), 1.0)]
    while stack:
        form, p = stack.pop()
        if len(form) > n:  # no rule is empty: every symbol yields at least one token
            continue
        i = next((j for j, s in enumerate(form) if not s.startswith("'")), None)
        if i is None:
            if len(form) < n:
                continue
            s = "".join(t.strip("'") for t in form)
            out[s] = out.get(s, 0.0) + p
            continue
        for rhs, q in rules[form[i]]:
            stack.append((form[:i] + tuple(rhs) + form[i + 1 :], p * q))
    total = sum(out.values())
    return {s: p / total for s, p in out.items()} if total else {}


@pytest.mark.parametrize("name", sorted(GRAMMARS))
def test_distribution_equals_derivation_enumeration(name):
    text = GRAMMARS[name]
    for n in range(1, 8):
        ref = brute(text, n)
        if not ref:
            with pytest.raises(InputError, match=f"derives no string of exactly {n} tokens"):
                PCFG(text, n)
            continue
        src = PCFG(text, n)
        strings = ["".join(s) for s in itertools.product(src.vocab, repeat=n)]
        if len(strings) > 20_000:
            strings = sorted(ref) + strings[:: len(strings) // 2000]
        x = torch.stack([src.encode(s) for s in strings])
        direct = src.log_prob(x).exp()
        chain = src.log_probs(x).gather(-1, x.unsqueeze(-1)).squeeze(-1).sum(1).exp()  # through start/step
        for s, p, c in zip(strings, direct.tolist(), chain.tolist()):
            assert abs(p - ref.get(s, 0.0)) < 1e-12 and abs(c - ref.get(s, 0.0)) < 1e-12, (name, n, s, p, c)


def test_ambiguous_grammar_sums_derivations():
    """Every 3-token string has the same two trees, (xy)z and x(yz), each 0.3² times its leaves, so
    p̄(s) = Π leaves / (0.5 + 0.2)³ by hand; a parser that kept one tree would still match here, the
    enumeration test above at n = 4…7 (2 to 5 trees, Catalan) is the one that needs the sum."""
    src = PCFG(AMBIGUOUS, 3)
    for s in ("aaa", "aba", "bbb"):
        want = math.prod(0.5 if c == "a" else 0.2 for c in s) / 0.7**3
        assert abs(src.log_prob(src.encode(s)).exp().item() - want) < 1e-12


def test_samples_pass_chi_square_against_exact_law():
    n = 5
    src = PCFG(ENGLISH, n)
    ref = brute(ENGLISH, n)
    x = src.sample(4000, generator=7)
    counts = {}
    for s in src.decode(x):
        counts[s] = counts.get(s, 0) + 1
    assert set(counts) <= set(ref) and min(ref.values()) < 0.01  # rare strings are in the law
    keys = sorted(ref)
    observed = np.array([counts.get(k, 0) for k in keys])
    expected = np.array([ref[k] for k in keys]) * len(x)
    big = expected >= 5
    obs, exp = observed[big], expected[big]
    if (~big).any():  # pool rare cells so the χ² approximation holds
        obs, exp = np.append(obs, observed[~big].sum()), np.append(exp, expected[~big].sum())
    assert scipy.stats.chisquare(obs, exp).pvalue > 1e-3


def test_valid_check_entropy_and_rebuild(tmp_path):
    src = PCFG(NESTED, 5)
    ref = brute(NESTED, 5)
    assert abs(entropy(src, estimator="exact").value + sum(p * math.log(p) for p in ref.values())) < 1e-12
    x = torch.stack([src.encode(s) for s in ("aacbb", "aabbb", "ccbbb")])  # only aacbb has length 5
    assert src.checks["valid"](x, 0, 3).tolist() == [True, False, False]  # "aab" and "c…" cannot continue
    assert src.checks["valid"](x, 2, 3).tolist() == [True, False, True]  # prefix "cc" impossible: not judged
    path = tmp_path / "g.pcfg"
    path.write_text(NESTED)
    from_file = make_source("pcfg", grammar=str(path), length=5)
    assert torch.equal(from_file.log_prob(x), src.log_prob(x)) and from_file.params["grammar"] == NESTED
    assert make_source("pcfg", **src.params).params == src.params and "grammar=" in repr(src)


@pytest.mark.parametrize(
    "grammar,needle",
    [
        ("S -> 'a' [0.5] | 'b' [0.4]", "S's rules sum to 0.9"),
        ("S -> A 'a' [1.0]", "nonterminal A (in a rule of S) has no rules"),
        ("S -> 'a' [1.0]; B -> 'b' [1.0]", "['B'] cannot be reached"),
        ("S -> 'a' [0.5] | B [0.5]; B -> B 'b' [1.0]", "['B'] derive no string of terminals"),
        ("S -> B [0.5] | 'a' [0.5]; B -> S [1.0]", "unary rules form a cycle S -> B -> S"),
        ("S -> 'ab' [1.0]", "not a single character"),
        ("S -> 'a' [1.0] 'b'", "cannot read"),
        ("no rules here", "has no rule (->) and is not a file"),
        ("S -> 'a' S 'b' [0.5] | 'c' [0.5]", "derives no string of exactly 4 tokens"),
    ],
)
def test_bad_grammar_one_line(grammar, needle):
    with pytest.raises(InputError, match=re.escape(needle)) as e:
        PCFG(grammar, 4)
    assert "\n" not in str(e.value)
    r = cli(f'sample pcfg --grammar "{grammar}" --length 4')
    assert r.exit_code == 2 and r.output.startswith("error:") and needle in " ".join(r.output.split()), r.output


def test_too_long_and_cli_sample():
    with pytest.raises(TooLargeError, match="over 100"):
        PCFG(NESTED, 101)
    out = cli_json(f'sample pcfg --grammar "{NESTED}" --length 7 --num 4')
    assert all(re.fullmatch("a*cb*", r["text"]) for r in out["samples"]) and out["params"]["length"] == 7


def test_a_grammar_file_that_is_not_utf8_is_named(tmp_path):
    bad = tmp_path / "bad.cfg"
    bad.write_bytes(b"S -> 'a' S [0.5] | '\xe9' [0.5]\n")
    r = cli(f"sample pcfg --grammar {bad} --length 3")
    assert r.exit_code == 2 and r.output.startswith("error:") and "bad.cfg" in r.output and "not UTF-8" in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
