"""A user's probabilistic context-free grammar over strings of exactly `length` tokens, with exact
conditionals from length-aware prefix probabilities.

The grammar is text in NLTK's PCFG notation, read by **lark** (a maintained, dependency-free parser
generator; the grammar of the notation is `NOTATION` below): one rule per line (or separated by
`;`), alternatives with `|`, each with its probability in brackets, terminals quoted single
characters, the first left-hand side the start symbol, `#` comments:

    S -> S S [0.3] | 'a' [0.5] | 'b' [0.2]

Conditionals (docs/theory.md §1): conditioned on the length n, p̄(x) = P_G(x) / Z_n with
Z_n = Σ_{|w|=n} P_G(w). Write I(X, u, L) for the probability that X derives the tokens u followed by
any L tokens. Then q(v | u) = I(S, u·v, n−|u|−1) / I(S, u, n−|u|), and Z_n = I(S, ε, n). I follows the
inside recursion over binarised rules (a rule's remaining symbols X_d … X_k split the span into its
first symbol's part and the rest); every argument is a prefix piece of the document or a number of free
tokens, so memoised values are shared by every row and every position (Jelinek–Lafferty prefix
probabilities, restricted to one length). Rules with no symbols (ε) and unary cycles are refused.
Cost: O(n²·|rules|) memoised values and O(n³·|rules|) Python operations per new document (sampling
and scoring 50 documents of a 9-rule grammar from an empty memo took 0.07 s at n = 10 and 1.5 s at
n = 20 on one core), so PCFGs are for short documents; the memo is shared across rows, positions and
documents.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor

from nextk.distinguishers.checks import SupportCheck
from nextk.errors import InputError, TooLargeError
from nextk.lm import State, check_tokens
from nextk.sources.common import TokenSource, log_weights_to_log_probs, new_state

NOTATION = r"""
start: _sep* rule (_sep+ rule)* _sep*
rule: NAME "->" alt ("|" alt)*
alt: symbol+ "[" NUMBER "]"
symbol: NAME | STRING
_sep: _NL | ";"
NAME: /[A-Za-z_][A-Za-z0-9_]*/
STRING: /'[^']*'/ | /"[^"]*"/
COMMENT: /#[^\n]*/
_NL: /(\r?\n)+/
%import common.NUMBER
%import common.WS_INLINE
%ignore WS_INLINE
%ignore COMMENT
"""
MAX_MEMO = 2_000_000  # memoised inside values kept before the cache is cleared
MAX_LENGTH = 100  # pure-Python inside recursion: O(n³ · |rules|) per document, and its depth grows with n


@lru_cache(maxsize=1)
def notation_parser():
    from lark import Lark

    return Lark(NOTATION, parser="lalr")


def parse_grammar(text: str) -> tuple[str, dict[str, list[tuple[tuple[str, ...], float]]], list[str]]:
    """(start symbol, {lhs: [(rhs, prob)]}, terminals); terminals appear in rhs as "'a'"."""
    from lark.exceptions import LarkError, UnexpectedInput

    try:
        tree = notation_parser().parse(text)
    except UnexpectedInput as e:
        line = text.splitlines()[e.line - 1] if 0 < e.line <= len(text.splitlines()) else ""
        raise InputError(f"grammar line {e.line}, column {e.column}: cannot read {line.strip()!r}") from None
    except LarkError as e:
        raise InputError(f"cannot read the grammar: {str(e).splitlines()[0]}") from None
    rules: dict[str, list] = {}
    terminals = set()
    for rule in tree.children:
        lhs, *alts = rule.children
        for alt in alts:
            *symbols, prob = alt.children
            rhs = []
            for sym in symbols:
                tok = sym.children[0]
                if tok.type == "STRING":
                    if len(tok) != 3:
                        raise InputError(f"terminal {tok} in rule {lhs} is not a single character")
                    terminals.add(tok[1])
                    rhs.append("'" + tok[1])
                else:
                    rhs.append(str(tok))
            rules.setdefault(str(lhs), []).append((tuple(rhs), float(prob)))
    if not rules:
        raise InputError("the grammar has no rules")
    return str(tree.children[0].children[0]), rules, sorted(terminals)


def check_grammar(start: str, rules: dict) -> None:
    """Probabilities per left-hand side sum to 1; every symbol defined, reachable and productive; no
    unary cycles. One line naming the first problem."""
    for lhs, alts in rules.items():
        total = sum(p for _, p in alts)
        if any(p < 0 or not math.isfinite(p) for _, p in alts) or abs(total - 1) > 1e-9:
            raise InputError(f"the probabilities of {lhs}'s rules sum to {total:.12g}; they must be ≥ 0 and sum to 1")
    for lhs, alts in rules.items():
        for rhs, _ in alts:
            for sym in rhs:
                if not sym.startswith("'") and sym not in rules:
                    raise InputError(f"nonterminal {sym} (in a rule of {lhs}) has no rules")
    reach, todo = {start}, [start]
    while todo:
        for rhs, _ in rules[todo.pop()]:
            for sym in rhs:
                if not sym.startswith("'") and sym not in reach:
                    reach.add(sym)
                    todo.append(sym)
    if unreachable := sorted(set(rules) - reach):
        raise InputError(f"nonterminals {unreachable} cannot be reached from the start symbol {start}")
    productive, grew = set(), True
    while grew:
        grew = False
        for lhs, alts in rules.items():
            if lhs not in productive and any(
                p > 0 and all(s.startswith("'") or s in productive for s in rhs) for rhs, p in alts
            ):
                productive.add(lhs)
                grew = True
    if barren := sorted(set(rules) - productive):
        raise InputError(f"nonterminals {barren} derive no string of terminals (non-productive)")
    unary = {
        lhs: {rhs[0] for rhs, p in alts if len(rhs) == 1 and p > 0 and rhs[0] in rules} for lhs, alts in rules.items()
    }

    def visit(sym, path):
        for nxt in unary[sym]:
            if nxt in path:
                cycle = path[path.index(nxt) :] + [nxt]
                raise InputError(f"the unary rules form a cycle {' -> '.join(cycle)}, which is not supported")
            visit(nxt, path + [nxt])

    for sym in rules:
        visit(sym, [sym])


class PCFG(TokenSource):
    """Strings of exactly `length` tokens from a PCFG (NLTK notation, see the module docstring),
    conditioned on that length; `grammar` is the text or a path to a file holding it (kept as the
    text). Tokens are the grammar's terminals, sorted.

    >>> src = PCFG("S -> 'a' S 'b' [0.4] | 'a' 'b' [0.3] | 'c' [0.3]", length=3)   # acb only
    >>> src.vocab, round(src.log_prob(src.encode("acb")).exp().item(), 12)
    (['a', 'b', 'c'], 1.0)
    >>> amb = PCFG("S -> S S [0.4] | 'a' [0.6]", length=3)   # one string, two derivations
    >>> round(amb.log_prob(amb.encode("aaa")).exp().item(), 12)
    1.0
    """

    def __init__(self, grammar: str, length: int = 8):
        if not isinstance(grammar, str):
            raise InputError(f"grammar must be text (or a path to a file), got {type(grammar).__name__}")
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise InputError(f"length must be a positive integer, got {length!r}")
        if length > MAX_LENGTH:
            raise TooLargeError(
                f"PCFG length {length} is over {MAX_LENGTH}: exact prefix probabilities cost O(n³·|rules|) per document"
            )
        text = grammar
        if "->" not in grammar:
            path = Path(grammar)
            if not path.is_file():
                raise InputError(f"grammar {grammar!r} has no rule (->) and is not a file")
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as e:
                raise InputError(
                    f"grammar file {str(path)!r} is not UTF-8 (byte 0x{e.object[e.start]:02x} at offset {e.start}): "
                    "convert it, e.g. iconv -f latin1 -t utf-8"
                ) from None
        self.grammar, self.length = text, length  # the text itself, so params rebuild it without the file
        self.start_symbol, self.rules, self.vocab = parse_grammar(text)
        check_grammar(self.start_symbol, self.rules)
        self._index = {c: i for i, c in enumerate(self.vocab)}
        # rules as (lhs, [(rhs with terminals as token ids (int) and nonterminals as str, prob)])
        self._rules = {
            lhs: [(tuple(self._index[s[1]] if s.startswith("'") else s for s in rhs), p) for rhs, p in alts if p > 0]
            for lhs, alts in self.rules.items()
        }
        self._memo: dict = {}
        self.z = self.inside(self.start_symbol, (), length)
        if self.z <= 0:
            raise InputError(
                f"the grammar derives no string of exactly {length} tokens (or their probability underflows float64)"
            )
        self.checks = {"valid": SupportCheck(self)}

    @property
    def params(self) -> dict:
        return {"grammar": self.grammar, "length": self.length}

    # ---- inside probabilities of "u then L free tokens" ---------------------------------------

    def inside(self, sym, u: tuple, free: int) -> float:
        """I(sym, u, free): probability that sym derives the tokens u followed by any `free` tokens."""
        if isinstance(sym, int):  # a terminal
            return 1.0 if (u == (sym,) and free == 0) or (u == () and free == 1) else 0.0
        key = (sym, u, free)
        if key in self._memo:
            return self._memo[key]
        if len(self._memo) > MAX_MEMO:
            self._memo.clear()
        total = sum(p * self._suffix(rhs, 0, u, free) for rhs, p in self._rules[sym])
        self._memo[key] = total
        return total

    def _suffix(self, rhs: tuple, d: int, u: tuple, free: int) -> float:
        """Probability that rhs[d:] derives the span u · (free tokens): split off rhs[d]'s part."""
        rest = len(rhs) - d - 1  # symbols after rhs[d], each needs ≥ 1 token
        span = len(u) + free
        if span < rest + 1:
            return 0.0
        if rest == 0:
            return self.inside(rhs[d], u, free)
        key = (rhs, d, u, free)
        if key in self._memo:
            return self._memo[key]
        total = 0.0
        for cut in range(1, span - rest + 1):  # rhs[d] takes the first `cut` tokens of the span
            if cut <= len(u):
                left, right = (u[:cut], 0), (u[cut:], free)
            else:
                left, right = (u, cut - len(u)), ((), free - (cut - len(u)))
            a = self.inside(rhs[d], *left)
            if a > 0:
                total += a * self._suffix(rhs, d + 1, *right)
        self._memo[key] = total
        return total

    # ---- the LanguageModel interface -----------------------------------------------------------

    def log_prob(self, x: Tensor) -> Tensor:
        """log p̄(x) = log I(S, x, 0) − log Z_n per row (one inside computation per string)."""
        x = check_tokens(x, self.vocab_size, self.length)
        if x.shape[1] < self.length:
            return super().log_prob(x)
        vals = [self.inside(self.start_symbol, tuple(row), 0) / self.z for row in x.tolist()]
        return torch.tensor([math.log(v) if v > 0 else -math.inf for v in vals], dtype=torch.float64)

    def start(self, batch: int) -> State:
        prefix = torch.full((batch, self.length), -1, dtype=torch.long)
        return self._state(prefix, torch.zeros(batch, dtype=torch.long))

    def step(self, state: State, tokens: Tensor) -> tuple[State, Tensor]:
        prefix, pos = state.tensors["prefix"].clone(), state.tensors["pos"]
        rows = (pos < self.length).nonzero().squeeze(1)
        prefix[rows, pos[rows]] = tokens.long()[rows]
        new = self._state(prefix, pos + 1)
        return new, new.log_probs

    def _state(self, prefix: Tensor, pos: Tensor) -> State:
        weights = torch.zeros(len(pos), self.vocab_size, dtype=torch.float64)
        for b, (row, t) in enumerate(zip(prefix.tolist(), pos.tolist())):
            if t < self.length:
                u, free = tuple(row[:t]), self.length - t - 1
                row_w = [self.inside(self.start_symbol, u + (v,), free) for v in range(self.vocab_size)]
                weights[b] = torch.tensor(row_w, dtype=torch.float64)
        return new_state(log_weights_to_log_probs(weights.log()), prefix=prefix, pos=pos)
