"""Distinguisher RNNs compiled from nextk checkers and lookup tables (docs/theory.md §9.5).

Convention: a distinguisher RNN reads x_0 x_1 … one token per τ_D steps and its output node holds, at
time (i + 1)τ_D, d(x_{<i−k+1}, x_{i−k+1..i}): the judgement of the window made of the last k tokens
read, the rest being its prefix. Run on x_{<s} followed by a window w, it outputs d(x_{<s}, w) — what
the enumeration copy of Lemma 11 needs (Lemma 8), with no start index to feed.

- `table_rnn(table, V, k)`: d(x_{<s}, w) = table[w] (prefix ignored), by a shift register of the
  last k − 1 tokens and Σ_{w: table[w]=1} AND_j 1[window_j = w_j] at the output.
- `automaton_rnn(dfa, k)`: a checker "no bad transition inside the window" of a deterministic
  automaton over tokens; hidden set = one-hot automaton state + the age of the last bad transition.
  `parity_automaton` and `dyck_automaton` rebuild nextk's ParityCheck and DyckCheck this way (the
  states come from the rules in plain Python, written here, not from the checkers' code).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from nextk.construct import gadgets as G
from nextk.construct.expr import lin, relu
from nextk.construct.graph import Graph
from nextk.distinguishers.checks import clip
from nextk.errors import InputError, check_enumeration

MAX_STATES = 4096  # automata larger than this are refused (one hidden node per state)


class TableDistinguisher:
    """d(x_{<s}, w) = table[index of w] (w read as a base-V number, first token most significant): the
    nextk calling convention d(x, start, k) → BoolTensor."""

    def __init__(self, table, vocab_size: int, k: int):
        self.table = torch.as_tensor(table, dtype=torch.bool).reshape(-1)
        if len(self.table) != vocab_size**k:
            raise InputError(f"table needs {vocab_size}^{k} = {vocab_size**k} entries, got {len(self.table)}")
        self.vocab_size, self.k = vocab_size, k

    def __call__(self, x: torch.Tensor, start, k: int) -> torch.Tensor:
        if k != self.k:
            raise InputError(f"this table judges windows of k={self.k} tokens, asked for k={k}")
        x, starts = clip(x, start, k)
        idx = torch.zeros(x.shape[0], dtype=torch.long)
        for j in range(k):
            idx = idx * self.vocab_size + x.gather(1, (starts + j).unsqueeze(1)).squeeze(1)
        return self.table[idx]


def window_indicator(w: tuple[int, ...], vocab_size: int) -> TableDistinguisher:
    """1[window = w]: the single-window indicator."""
    k = len(w)
    table = torch.zeros(vocab_size**k, dtype=torch.bool)
    table[sum(t * vocab_size ** (k - 1 - j) for j, t in enumerate(w))] = True
    return TableDistinguisher(table, vocab_size, k)


def table_rnn(table, vocab_size: int, k: int) -> Graph:
    """The RNN of a TableDistinguisher: τ = 1, hidden = k − 1 register nodes, size k + 1."""
    d = table if isinstance(table, TableDistinguisher) else TableDistinguisher(table, vocab_size, k)
    check_enumeration(vocab_size**k, f"table distinguisher over {vocab_size}^{k} windows")
    g = Graph(f"table{k}", vocab_size, tau=1)
    reg = [g.add(f"r{j}", "hidden") for j in range(k - 1)]  # reg[-1] = the token read last
    out = g.add("d", "work")
    for j in range(k - 1):
        g.set(reg[j], reg[j + 1] if j + 1 < k - 1 else g.input)
    window = [lin(r) for r in reg] + [lin(g.input)]
    terms = lin(0.0)
    for idx, w in enumerate(itertools.product(range(vocab_size), repeat=k)):
        if d.table[idx]:
            terms = terms + G.AND(*[G.eq(window[j], w[j]) for j in range(k)])
    g.set(out, terms)
    g.output = out
    g.meta = {"role": "distinguisher", "k": k, "python": d}
    g.check()
    return g


@dataclass
class Automaton:
    """A deterministic automaton over tokens: delta[(q, a)] = q', bad = the set of (q, a) transitions
    that a window must not contain; state 0 is the start."""

    states: list
    delta: dict[tuple[int, int], int]
    bad: set[tuple[int, int]]
    vocab_size: int


def explore(start, step, vocab_size: int, max_states: int = MAX_STATES) -> Automaton:
    """Breadth-first reachable states of step(state, token) → (next state, bad) from `start`."""
    index, states, delta, bad = {start: 0}, [start], {}, set()
    i = 0
    while i < len(states):
        for a in range(vocab_size):
            nxt, is_bad = step(states[i], a)
            if nxt not in index:
                if len(states) >= max_states:
                    raise InputError(f"automaton has more than {max_states} states; use a shorter length")
                index[nxt] = len(states)
                states.append(nxt)
            delta[(i, a)] = index[nxt]
            if is_bad:
                bad.add((i, a))
        i += 1
    return Automaton(states, delta, bad, vocab_size)


def parity_automaton(block: int, length: int) -> Automaton:
    """ParityCheck's rule: the token at a block end (position ≡ block − 1) must make the block's
    parity even. State: (position mod block, parity so far); `length` only bounds nothing here."""

    def step(state, a):
        pos, par = state
        par = par ^ a
        if pos == block - 1:
            return (0, 0), par == 1
        return (pos + 1, par), False

    return explore((0, 0), step, 2)


def dyck_automaton(n_types: int, max_depth: int, length: int) -> Automaton:
    """DyckCheck's rule, for brackets 2j (open type j) and 2j + 1 (close type j): a token is bad when a
    close does not match the open bracket on top, an open would exceed max_depth, a close comes at
    depth 0, or the depth after it exceeds the tokens left. Depth is kept within [0, max_depth] after
    a bad token as the checker does. State: (position, open types on the stack)."""

    def step(state, a):
        t, stack = state
        kind, opening = a // 2, a % 2 == 0
        if opening:
            ok = len(stack) < max_depth
            stack = (stack + (kind,))[:max_depth]
        else:
            ok = bool(stack) and stack[-1] == kind
            stack = stack[:-1]
        too_deep = len(stack) > length - t - 1
        return (min(t + 1, length), stack), (not ok) or too_deep

    return explore((0, ()), step, 2 * n_types)


def automaton_rnn(dfa: Automaton, k: int, name: str = "automaton") -> Graph:
    """d = 1[no bad transition among the last k tokens]: τ = 1; hidden = one node per state (one-hot)
    and the age (tokens since the last bad transition, capped at k; initially k); size |Q| + 3.

        s_q ← Σ_{(q', a): δ(q', a) = q} AND(s_{q'}, 1[x = a]),   bad = Σ_{(q', a) bad} AND(s_{q'}, 1[x = a])
        age ← ReLU(age + 1 − 1[age ≥ k] − (k + 1)·bad),          d ← AND(NOT bad, 1[age ≥ k − 1])"""
    if k < 1:
        raise InputError(f"k must be ≥ 1, got {k}")
    v = dfa.vocab_size
    g = Graph(f"{name}{k}", v, tau=1)
    onehot = [g.add(f"s{i}", "hidden", 1.0 if i == 0 else 0.0) for i in range(len(dfa.states))]
    age = g.add("age", "hidden", float(k))
    out = g.add("d", "work")
    ind = [G.eq(g.input, a) for a in range(v)]
    fire = {(q, a): G.AND(onehot[q], ind[a]) for (q, a) in dfa.delta}
    into: dict[int, list] = {}
    for (q, a), nxt in dfa.delta.items():
        into.setdefault(nxt, []).append(fire[(q, a)])
    for i, node in enumerate(onehot):
        g.set(node, sum(into.get(i, []), lin(0.0)))
    bad = sum((fire[qa] for qa in sorted(dfa.bad)), lin(0.0))
    g.set(age, relu(lin(age) + 1 - G.ge(age, k) - (k + 1) * bad))
    g.set(out, G.AND(G.NOT(bad), G.ge(age, k - 1)))
    g.output = out
    g.meta = {"role": "distinguisher", "k": k, "states": len(dfa.states)}
    g.check()
    return g


def checker_rnn(source, k: int) -> Graph:
    """The distinguisher RNN of a nextk source's own checker: Parity → checks["parity"], Dyck →
    checks["valid"]; g.meta["python"] is that checker (the reference)."""
    from nextk.sources import Dyck, Parity

    if isinstance(source, Parity):
        g = automaton_rnn(parity_automaton(source.block, source.length), k, "parity")
        g.meta["python"] = source.checks["parity"]
    elif isinstance(source, Dyck):
        g = automaton_rnn(dyck_automaton(source.n_types, source.max_depth, source.length), k, "dyck")
        g.meta["python"] = source.checks["valid"]
    else:
        raise InputError(f"no compiled checker for {type(source).__name__}; use table_rnn for a lookup table")
    return g


def best_window_indicator(p, q, k: int) -> tuple[tuple[int, ...], float]:
    """The single-window indicator 1[window = w] with the largest |advantage| of p over q (exact, by
    enumeration; nextk.advantage): the distinguisher a boosting round can always fall back on."""
    from nextk.advantage import advantage

    check_enumeration(p.vocab_size**k, f"search over {p.vocab_size}^{k} single-window indicators")
    best, best_a = None, -1.0
    for w in itertools.product(range(p.vocab_size), repeat=k):
        a = advantage(window_indicator(w, p.vocab_size), p, q, k, estimator="exact").value
        if abs(a) > abs(best_a) or best is None:
            best, best_a = w, a
    return best, best_a
