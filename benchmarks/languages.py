"""Exact conditionals of a user's language, tokens/s of `log_probs` over sampled documents, against the
strongest alternative a user would write without nextk:

- Regex, a 50-state DFA over {a, b, c, d}: nextk's completion-count table (its one-time build timed
  apart) against enumerating every string of length n once with `re.fullmatch` and counting completions
  per prefix in a dict (then one dict lookup per token and symbol).
- PFSA, 64 states, 16 symbols: nextk's batched forward against a NumPy forward written here
  (per step, each row's α times its token's (S, S) matrix with einsum, then normalised).
- PCFG, a 20-rule grammar: nextk's memoised prefix-inside recursion against enumerating every
  leftmost derivation that fits n once and summing completions per prefix in a dict.

Run: .venv/bin/python benchmarks/languages.py      (BENCH_SMALL=1 or --small: a quick check)
"""

import itertools
import math
import re
import time

import numpy as np
from common import best_of, fmt, setup, size

from nextk.sources import PCFG, PFSA, Regex

HEADER = (
    "| language | nextk tokens/s | alternative tokens/s | ratio | nextk one-time build | alternative one-time "
    "build | max \\|Δ log q\\| |\n|---|---|---|---|---|---|---|"
)
PATTERN = "(a|b(c|d){0,13}a|c{4}d{2,32})*"  # 50 live DFA states over abcd
GRAMMAR = """S -> NP VP [0.9] | VP [0.1]
NP -> D N [0.5] | D A N [0.2] | NP PP [0.2] | N [0.1]
VP -> V NP [0.5] | V [0.2] | VP PP [0.2] | V NP PP [0.1]
PP -> P NP [1.0]
D -> 'd' [0.7] | 'e' [0.3]
N -> 'n' [0.6] | 'm' [0.4]
A -> 'a' [0.8] | 'a' A [0.2]
V -> 'v' [0.5] | 'w' [0.5]
P -> 'p' [1.0]
"""  # 20 alternatives


def prefix_table(weighted: dict[str, float]) -> dict[str, float]:
    """{prefix: total weight of its completions} from {string: weight}."""
    table: dict[str, float] = {}
    for s, w in weighted.items():
        for t in range(len(s) + 1):
            table[s[:t]] = table.get(s[:t], 0.0) + w
    return table


def table_log_probs(table: dict, vocab: list[str], docs: list[str]) -> np.ndarray:
    """log q(v | prefix) by lookups: (N, n, V)."""
    out = np.full((len(docs), len(docs[0]), len(vocab)), -np.inf)
    for i, d in enumerate(docs):
        for t in range(len(d)):
            z = table[d[:t]]
            for j, v in enumerate(vocab):
                w = table.get(d[:t] + v, 0.0)
                if w > 0:
                    out[i, t, j] = math.log(w / z)
    return out


def derivations(text: str, n: int) -> dict[str, float]:
    """{string: P_G(string)} over strings of exactly n tokens, by leftmost derivations that fit n."""
    rules, start = {}, None
    for line in text.strip().splitlines():
        lhs, body = (s.strip() for s in line.split("->"))
        start = start or lhs
        for alt in body.split("|"):
            symbols, prob = alt.strip().rsplit("[", 1)
            rules.setdefault(lhs, []).append((symbols.split(), float(prob.rstrip("] "))))
    out, stack = {}, [((start,), 1.0)]
    while stack:
        form, p = stack.pop()
        if len(form) > n:
            continue
        i = next((j for j, s in enumerate(form) if not s.startswith("'")), None)
        if i is None:
            if len(form) == n:
                s = "".join(t.strip("'") for t in form)
                out[s] = out.get(s, 0.0) + p
            continue
        stack.extend((form[:i] + tuple(rhs) + form[i + 1 :], p * q) for rhs, q in rules[form[i]])
    return out


def numpy_pfsa(initial: np.ndarray, trans: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Forward conditionals (N, n, V): q = α E, α ← normalise(α T_x) with einsum over rows."""
    emit = trans.sum(2).T  # (S, V)
    alpha = np.broadcast_to(initial, (len(x), len(initial))).copy()
    out = np.empty((x.shape[0], x.shape[1], trans.shape[0]))
    for t in range(x.shape[1]):
        q = alpha @ emit
        out[:, t] = np.log(q / q.sum(1, keepdims=True))
        alpha = np.einsum("bs,bst->bt", alpha, trans[x[:, t]])
        alpha /= alpha.sum(1, keepdims=True)
    return out


def compare(name: str, build, alt_build, nextk_fn, alt_fn, tokens: int, repeats: int) -> dict:
    t0 = time.perf_counter()
    build()
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    alt_build()
    t_alt_build = time.perf_counter() - t0
    t = best_of({"nextk": nextk_fn, "alt": alt_fn}, repeats)
    a, b = t["nextk"][1], t["alt"][1]
    both = np.isfinite(a) & np.isfinite(b)
    assert (np.isfinite(a) == np.isfinite(b)).all(), f"{name}: supports differ"
    delta = float(np.abs(a[both] - b[both]).max())
    row = dict(
        language=name,
        nextk=tokens / t["nextk"][0],
        alt=tokens / t["alt"][0],
        build=t_build,
        alt_build=t_alt_build,
        delta=delta,
    )
    print(
        f"| {name} | {fmt(row['nextk'])} | {fmt(row['alt'])} | {row['nextk'] / row['alt']:.1f}x | "
        f"{t_build:.2f} s | {t_alt_build:.2f} s | {delta:.1e} |",
        flush=True,
    )
    return row


def main():
    setup()
    num, repeats = size(500, 20), size(3, 1)
    rows = []

    n = size(10, 7)  # 4^10 strings for the enumeration
    src: dict = {}
    alt: dict = {}

    def build_regex():
        src["re"] = Regex(PATTERN, n, vocab="abcd")

    def alt_regex():
        hits = {"".join(s): 1.0 for s in itertools.product("abcd", repeat=n) if re.fullmatch(PATTERN, "".join(s))}
        alt["re"] = prefix_table(hits)

    build_regex()
    x = src["re"].sample(num, generator=0)
    docs = src["re"].decode(x)
    rows.append(
        compare(
            f"Regex, {len(src['re'].transitions)}-state DFA, n={n}",
            build_regex,
            alt_regex,
            lambda: src["re"].log_probs(x).numpy(),
            lambda: table_log_probs(alt["re"], src["re"].vocab, docs),
            x.numel(),
            repeats,
        )
    )

    pfsa = PFSA.random(64, 16, rank=8, seed=0, length=size(128, 16))
    xp = pfsa.sample(num, generator=0)
    init, trans, xn = pfsa.initial.numpy(), pfsa.transitions.numpy(), xp.numpy()
    rows.append(
        compare(
            f"PFSA, 64 states, V=16, n={pfsa.length}",
            lambda: None,
            lambda: None,
            lambda: pfsa.log_probs(xp).numpy(),
            lambda: numpy_pfsa(init, trans, xn),
            xp.numel(),
            repeats,
        )
    )

    m = size(9, 6)

    def alt_pcfg():
        alt["g"] = prefix_table(derivations(GRAMMAR, m))

    xg = PCFG(GRAMMAR, m).sample(num, generator=0)

    def build_pcfg():  # the grammar, Z_n and a first pass over the documents (fills the memo)
        src["g"] = PCFG(GRAMMAR, m)
        src["g"].log_probs(xg)

    gdocs = PCFG(GRAMMAR, m).decode(xg)
    rows.append(
        compare(
            f"PCFG, 20 rules, n={m} (memo warm; first pass in the build)",
            build_pcfg,
            alt_pcfg,
            lambda: src["g"].log_probs(xg).numpy(),
            lambda: table_log_probs(alt["g"], src["g"].vocab, gdocs),
            xg.numel(),
            repeats,
        )
    )
    return rows


if __name__ == "__main__":
    print(HEADER)
    main()
