"""A user's regular language: the uniform (or weighted) distribution over the strings of exactly
`length` tokens that fully match a pattern, with exact conditionals from completion counts.

The pattern is read with Python's own parser (`re`), which names any construct a finite automaton
cannot express (backreferences, lookaround, anchors, conditionals), and is then compiled to a DFA by
**greenery** (pure Python, no dependencies, maintained since 2012 with a 2026 release; it reads Python
`re` syntax and yields a complete DFA over character classes). The alternatives were weighed:
interegular has had no release since January 2024 and yields an automaton meant for overlap checks,
and pyformlang's regex syntax is its own, not Python's. greenery's subset construction runs here
with a state budget (`crawl_within`), so a pattern whose DFA runs away is refused while it is built.

Conditionals (docs/theory.md §1): with C_r(s) = Σ_v w(s, v) · C_{r−1}(δ(s, v)), C_0(s) = 1[s final],
a prefix that left the DFA in state s with r tokens to go continues with v with probability
w(s, v) · C_{r−1}(δ(s, v)) / C_r(s). Unweighted (w = 1), C_r(s) counts completions as exact Python
integers; weighted, the same recursion runs in log space. After the O(n·|DFA|·V) table, each token
costs one row lookup: O(V).
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections import deque

import numpy as np
import torch
from torch import Tensor

from nextk.distinguishers.checks import SupportCheck
from nextk.errors import InputError, TooLargeError
from nextk.lm import State
from nextk.sources.common import TokenSource, new_state

MAX_STATES = 2_000  # default budget on DFA states (also on each automaton built on the way)
MAX_TABLE = 50_000_000  # entries of the (length, states, vocab) conditional table
UNSUPPORTED = {  # re's parser opcodes that no finite automaton reads, and how to name them
    "GROUPREF": "a backreference (\\1 or (?P=name)), which a finite automaton cannot read",
    "GROUPREF_EXISTS": "a conditional group (?(id)yes|no), which a finite automaton cannot read",
    "ASSERT": "a lookahead or lookbehind (?=…), (?<=…), which is not supported",
    "ASSERT_NOT": "a negative lookahead or lookbehind (?!…), (?<!…), which is not supported",
    "AT": "an anchor (^, $, \\b, \\A, \\Z), which is not supported: the pattern always matches the whole string",
    "ATOMIC_GROUP": "an atomic group (?>…), which is not supported",
    "POSSESSIVE_REPEAT": "a possessive repeat (*+, ++, ?+), which is not supported",
}


def check_pattern(pattern: str) -> None:
    """One clear line for a pattern that is not Python `re` syntax or that a DFA cannot express."""
    if not isinstance(pattern, str):
        raise InputError(f"pattern must be a string, got {type(pattern).__name__}")
    try:
        from re import _parser as sre_parse  # Python ≥ 3.11
    except ImportError:  # pragma: no cover
        import sre_parse
    try:
        parsed = sre_parse.parse(pattern)
    except re.error as e:
        raise InputError(f"pattern {pattern!r} is not a Python regular expression: {e}") from None
    if parsed.state.flags & ~(re.UNICODE | re.U):
        raise InputError(f"pattern {pattern!r} sets inline flags ((?i), (?s), …), which are not supported")

    def walk(items):
        for op, arg in items:
            name = str(op)
            if name in UNSUPPORTED:
                raise InputError(f"pattern {pattern!r} uses {UNSUPPORTED[name]}")
            for sub in arg if isinstance(arg, (list, tuple)) else ():
                if isinstance(sub, sre_parse.SubPattern):
                    walk(sub)
                elif isinstance(sub, (list, tuple)):
                    for s in sub:
                        if isinstance(s, sre_parse.SubPattern):
                            walk(s)

    walk(parsed)


def crawl_within(max_states: int, pattern: str):
    """greenery's `crawl` (the subset construction behind every operation) with a dict index instead
    of its list search (O(states) per transition, quadratic overall) and a budget: building any
    intermediate automaton with more than `max_states` states stops with TooLargeError, before the
    work runs away. Same states, same numbering; installed only while `compile_dfa` runs."""
    from greenery.fsm import Fsm

    def crawl(alphabet, initial, final, follow):
        def key(state):  # a hashable twin of greenery's meta-states (ints, tuples, sets, dicts)
            if isinstance(state, dict):
                return ("d", frozenset((k, key(v)) for k, v in state.items()))
            if isinstance(state, (set, frozenset)):
                return frozenset(key(v) for v in state)
            if isinstance(state, (tuple, list)):
                return tuple(key(v) for v in state)
            return state

        states, index, finals, transitions = [initial], {key(initial): 0}, set(), {}
        symbols = sorted(alphabet)
        i = 0
        while i < len(states):
            if final(states[i]):
                finals.add(i)
            transitions[i] = {}
            for symbol in symbols:
                nxt = follow(states[i], symbol)
                j = index.setdefault(key(nxt), len(states))
                if j == len(states):
                    if j >= max_states:
                        raise TooLargeError(
                            f"pattern {pattern!r} needs more than max_states={max_states:,} DFA states; "
                            "raise max_states or simplify the pattern"
                        )
                    states.append(nxt)
                transitions[i][symbol] = j
            i += 1
        return Fsm(alphabet=alphabet, states=set(range(len(states))), initial=0, finals=finals, map=transitions)

    return crawl


def compile_dfa(pattern: str, vocab: list[str] | None, max_states: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(vocab, transitions (S, V) with −1 for "no completion", finals (S,)) of the trimmed DFA whose
    state 0 is the start; states are numbered breadth-first over the vocabulary order."""
    import importlib

    import greenery.fsm
    from greenery import parse
    from greenery.charclass import DOT, Charclass

    check_pattern(pattern)
    parse_module = importlib.import_module("greenery.parse")  # the package's `parse` attribute is the function
    original, original_shorthand = greenery.fsm.crawl, parse_module.shorthand
    greenery.fsm.crawl = crawl_within(max_states, pattern)
    # Python `re` without DOTALL: "." is any character but "\n" (greenery's "." is any character at all)
    not_newline = ~Charclass((("\n", "\n"),))
    parse_module.shorthand = {(not_newline if c == DOT else c): s for c, s in original_shorthand.items()}
    try:
        fsm = parse(pattern).to_fsm()
    except TooLargeError:
        raise
    except Exception as e:  # greenery's own parse errors: name them in one line
        raise InputError(f"greenery cannot compile pattern {pattern!r}: {e}") from None
    finally:
        greenery.fsm.crawl, parse_module.shorthand = original, original_shorthand
    live = {s for s in fsm.states if fsm.islive(s)}
    if vocab is None:
        outside = [c for s in live for c, d in fsm.map[s].items() if d in live and c.negated]
        if outside:
            raise InputError(
                f"pattern {pattern!r} matches characters it does not list (., [^…], \\W, …); give vocab= explicitly"
            )
        vocab = sorted({ch for s in live for c, d in fsm.map[s].items() if d in live for ch in c.get_chars()})
    vocab = list(vocab)
    if not vocab or any(not isinstance(c, str) or len(c) != 1 for c in vocab) or len(set(vocab)) != len(vocab):
        raise InputError(f"vocab must be distinct single characters, got {vocab!r}")

    def move(state, ch):
        for cls, dest in fsm.map[state].items():
            if cls.accepts(ch):
                return dest if dest in live else None
        return None

    if fsm.initial not in live:
        return vocab, np.full((1, len(vocab)), -1, dtype=np.int64), np.zeros(1, dtype=bool)
    index, order, queue = {fsm.initial: 0}, [fsm.initial], deque([fsm.initial])
    while queue:
        s = queue.popleft()
        for ch in vocab:
            d = move(s, ch)
            if d is not None and d not in index:
                if len(index) >= max_states:
                    raise TooLargeError(
                        f"pattern {pattern!r} needs more than max_states={max_states:,} DFA states; "
                        "raise max_states or simplify the pattern"
                    )
                index[d] = len(order)
                order.append(d)
                queue.append(d)
    trans = np.array([[index.get(move(s, ch), -1) for ch in vocab] for s in order], dtype=np.int64)
    finals = np.array([s in fsm.finals for s in order], dtype=bool)
    return vocab, trans, finals


def parse_weights(weights):
    """`weights` as given, or parsed from text (the command line's --weights): JSON ('{"c": 0.5}' or a table) or
    'c=0.5,d=2'. Every weight must be a number (a string "2" is refused, not kept)."""
    if isinstance(weights, str):
        text = weights.strip()
        if text.startswith(("{", "[")):
            try:
                weights = json.loads(text)
            except json.JSONDecodeError as e:
                raise InputError(f"weights {text!r} is not valid JSON: {e}") from None
        else:
            weights = {}
            for item in filter(None, (t.strip() for t in text.split(","))):
                char, eq, value = item.rpartition("=")
                if not eq or len(char) != 1:
                    raise InputError(f"weights take 'c=0.5,d=2' (one character each) or JSON, got {text!r}")
                try:
                    weights[char] = float(value)
                except ValueError:
                    raise InputError(f"weight of {char!r} must be a number, got {value!r}") from None
    if isinstance(weights, dict):
        for c, w in weights.items():
            if isinstance(w, bool) or not isinstance(w, numbers.Real):
                raise InputError(f"weight of {c!r} must be a number, got {w!r}")
    elif weights is not None and not isinstance(weights, (list, tuple, np.ndarray)):
        raise InputError(f"weights must be a dict {{char: weight}}, a (states, vocab) table or text, got {weights!r}")
    return weights


class Regex(TokenSource):
    """The strings of exactly `length` tokens that fully match `pattern` (Python `re` syntax), each
    with probability 1 / #matches; tokens are single characters. With `weights` a string's
    probability is proportional to the product of its transition weights: a dict {char: weight} (the
    same weight in every state) or a (states, vocab) table over `transitions` (see `with_weights`).
    `vocab=None` takes the characters the pattern names; `max_states` caps the DFA.

    >>> src = Regex("(ab|c)*d", length=4)      # abcd, cabd, cccd
    >>> src.vocab, src.n_strings
    (['a', 'b', 'c', 'd'], 3)
    >>> round(src.log_prob(src.encode("cabd")).exp().item(), 12)
    0.333333333333
    >>> [round(p, 6) for p in src.log_probs(src.encode("c")[None])[0, 0].exp().tolist()]   # a, b, c, d
    [0.333333, 0.0, 0.666667, 0.0]
    >>> w = src.with_weights({"c": 2.0})       # cccd weighs 8, abcd and cabd weigh 2
    >>> round(w.log_prob(w.encode("cccd")).exp().item(), 6)
    0.666667
    """

    def __init__(
        self,
        pattern: str,
        length: int,
        vocab: str | None = None,
        weights: dict | list | None = None,
        max_states: int = MAX_STATES,
    ):
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise InputError(f"length must be a positive integer, got {length!r}")
        if not isinstance(max_states, int) or max_states < 1:
            raise InputError(f"max_states must be a positive integer, got {max_states!r}")
        self.pattern, self.length, self.max_states = pattern, length, max_states
        vocab_list = None if vocab is None else list(vocab)
        self.vocab, self.transitions, self.finals = compile_dfa(pattern, vocab_list, max_states)
        self.vocab_arg = None if vocab is None else "".join(vocab_list)
        self.weights = weights = parse_weights(weights)
        n_states, v = self.transitions.shape
        if length * n_states * v > MAX_TABLE:
            raise TooLargeError(
                f"the conditional table needs {length:,} × {n_states:,} × {v} = {length * n_states * v:,} float64 "
                f"entries ({length * n_states * v * 8 / 2**20:,.0f} MiB), over {MAX_TABLE:,}; shorten length or "
                "simplify the pattern"
            )
        log_w = self._log_weights(weights)
        if weights is None:
            counts = self._counts()
            self.n_strings = counts[length][0]
            log_c = np.array([[math.log(c) if c > 0 else -math.inf for c in row] for row in counts])
        else:
            self.n_strings = None
            log_c = self._log_counts(log_w)
        if np.isneginf(log_c[length, 0]):
            raise InputError(f"pattern {pattern!r} matches no string of exactly {length} tokens over {self.vocab}")
        self._table = self._conditionals(log_c, log_w)  # (length, S, V)
        self._trans = torch.from_numpy(self.transitions)
        self.checks = {"valid": SupportCheck(self)}

    @property
    def params(self) -> dict:
        return dict(
            pattern=self.pattern, length=self.length, vocab=self.vocab_arg, weights=self.weights,
            max_states=self.max_states,
        )  # fmt: skip

    def with_weights(self, weights: dict | list) -> Regex:
        """The same language with per-transition weights (a dict {char: weight} or a (states, vocab) table)."""
        return Regex(self.pattern, self.length, self.vocab_arg, weights, self.max_states)

    def _log_weights(self, weights) -> np.ndarray:
        """log w(s, v) (S, V): 0 unweighted, −inf where the DFA has no live move."""
        n_states, v = self.transitions.shape
        if weights is None:
            w = np.ones((n_states, v))
        elif isinstance(weights, dict):
            unknown = [c for c in weights if c not in self.vocab]
            if unknown:
                raise InputError(f"weights name characters {unknown} outside the vocabulary {self.vocab}")
            w = np.tile(np.array([float(weights.get(c, 1.0)) for c in self.vocab]), (n_states, 1))
        else:
            try:
                w = np.asarray(weights)
            except ValueError:
                raise InputError("weights table rows have different lengths") from None
            if w.dtype == bool or not np.issubdtype(w.dtype, np.number):
                raise InputError(f"weights table entries must be numbers, got dtype {w.dtype}")
            w = w.astype(np.float64)
            if w.shape != (n_states, v):
                raise InputError(
                    f"weights table has shape {w.shape}, but the DFA has {n_states} states × {v} tokens "
                    "(see .transitions)"
                )
        if not np.isfinite(w).all() or (w < 0).any():
            raise InputError("weights must be finite and non-negative")
        with np.errstate(divide="ignore"):
            log_w = np.log(w)
        log_w[self.transitions < 0] = -math.inf
        return log_w

    def _counts(self) -> list[list[int]]:
        """C[r][s]: number of strings of r tokens that take state s to a final state (exact ints)."""
        trans = self.transitions.tolist()
        c = [[int(f) for f in self.finals]]
        for _ in range(self.length):
            prev = c[-1]
            c.append([sum(prev[d] for d in row if d >= 0) for row in trans])
        return c

    def _log_counts(self, log_w: np.ndarray) -> np.ndarray:
        """log C[r][s] with weights: C_r(s) = Σ_v w(s, v) C_{r−1}(δ(s, v)), in log space. (n+1, S)."""
        safe = np.where(self.transitions >= 0, self.transitions, 0)
        out = np.empty((self.length + 1, len(self.finals)))
        with np.errstate(divide="ignore"):
            out[0] = np.log(self.finals.astype(np.float64))
        for r in range(1, self.length + 1):
            terms = log_w + out[r - 1][safe]  # (S, V)
            top = terms.max(1, keepdims=True)
            top[np.isneginf(top)] = 0.0
            with np.errstate(divide="ignore"):
                out[r] = (top + np.log(np.exp(terms - top).sum(1, keepdims=True)))[:, 0]
        return out

    def _conditionals(self, log_c: np.ndarray, log_w: np.ndarray) -> Tensor:
        """T[t, s, v] = log q(v | state s at position t); rows of prefixes with no completion are uniform."""
        n, v = self.length, len(self.vocab)
        safe = np.where(self.transitions >= 0, self.transitions, 0)
        table = np.empty((n, len(self.finals), v))
        for t in range(n):
            r = n - t
            with np.errstate(invalid="ignore"):
                table[t] = log_w + log_c[r - 1][safe] - log_c[r][:, None]
            table[t][np.isneginf(log_c[r])] = -math.log(v)
        return torch.from_numpy(table)

    def start(self, batch: int) -> State:
        z = torch.zeros(batch, dtype=torch.long)
        return self._state(z, z.clone())

    def step(self, state: State, tokens: Tensor) -> tuple[State, Tensor]:
        s = state.tensors
        q, pos = s["q"], s["pos"]
        ok = (q >= 0) & (pos < self.length)
        moved = self._trans[q.clamp_min(0), tokens.long()]
        new = self._state(torch.where(ok, moved, -1), pos + 1)
        return new, new.log_probs

    def _state(self, q: Tensor, pos: Tensor) -> State:
        lp = self._table[pos.clamp(max=self.length - 1), q.clamp_min(0)].clone()  # (B, V)
        lp[(q < 0) | (pos >= self.length)] = -math.log(len(self.vocab))
        return new_state(lp, q=q, pos=pos)
