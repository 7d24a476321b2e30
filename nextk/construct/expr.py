"""Transition functions as expressions over node values (the paper's Definition 3; docs/theory.md §9.1).

A transition function is a composition of the paper's elementary functions — ReLU, product and
reciprocal — with affine maps (weights and biases) between them. Here:

- `Lin` is an affine form Σ w_a · a + b over *atoms*; an atom is a graph `Node` (its value at the
  previous internal step) or an `Op`;
- `Op` is one elementary function applied to `Lin` arguments: `relu(a)`, `a · b` (product),
  `1 / a` (reciprocal). Affine maps are weights, not operations: they are free, as the paper's
  ReLU(wᵀx + b) carries its own weights. `count_ops` counts elementary functions only.

Ops are hash-consed (structurally equal ops are one object), so a gate such as 1[c = 0] written in
many nodes' transitions is evaluated once per step by the executor while each node's transition is
still, on paper, its own composition. Constants fold: a product with a constant is a weight.
"""

from __future__ import annotations

import itertools
import weakref

import numpy as np

_UID = itertools.count()
_INTERN: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
KINDS = ("input", "hidden", "work")


class Node:
    """A node of a graph RNN: a real value that evolves over internal steps. `kind` is "input" (set
    from the token stream), "hidden" (in the declared hidden node set) or "work". `init` is its value
    at time 0; `fmt` = (int_bits, frac_bits) fixes its own fixed-point format (Definition 4), else the
    run's default applies. `expr` (a Lin) is its transition function, set with `Graph.set`."""

    __slots__ = ("uid", "name", "kind", "init", "fmt", "expr", "__weakref__")

    def __init__(self, name: str, kind: str, init: float = 0.0, fmt: tuple[int, int] | None = None):
        if kind not in KINDS:
            raise ValueError(f"node kind must be one of {KINDS}, got {kind!r}")
        self.uid, self.name, self.kind, self.init, self.fmt = next(_UID), name, kind, float(init), fmt
        self.expr: Lin | None = None

    def __repr__(self) -> str:
        return f"Node({self.name!r}, {self.kind})"

    # arithmetic on a node is arithmetic on its value (a Lin)
    def __add__(self, o):
        return lin(self) + o

    def __radd__(self, o):
        return lin(o) + lin(self)

    def __sub__(self, o):
        return lin(self) - o

    def __rsub__(self, o):
        return lin(o) - lin(self)

    def __mul__(self, o):
        return lin(self) * o

    def __rmul__(self, o):
        return lin(o) * lin(self)

    def __neg__(self):
        return -lin(self)

    def __truediv__(self, c):
        return lin(self) / c


class Op:
    """One elementary function ("relu", "mul", "recip") of Lin arguments (2 for mul, 1 otherwise)."""

    __slots__ = ("uid", "kind", "args", "_reach", "__weakref__")

    def __init__(self, kind: str, args: tuple[Lin, ...]):
        self.uid, self.kind, self.args = next(_UID), kind, args
        self._reach = None

    def reach(self) -> tuple[frozenset, int]:
        """(nodes it reads, its depth), computed once (ops are immutable) so walks over large graphs
        share the work."""
        if self._reach is None:
            nodes, deep = set(), 0
            for e in self.args:
                n, d = _reach(e)
                nodes, deep = nodes | n, max(deep, d)
            self._reach = (frozenset(nodes), deep + 1)
        return self._reach


def _op(kind: str, args: tuple[Lin, ...]) -> Lin:
    if kind == "mul":
        args = tuple(sorted(args, key=lambda a: a.key))  # a·b = b·a: one object for both
    key = (kind, tuple(a.key for a in args))
    op = _INTERN.get(key)
    if op is None:
        op = Op(kind, args)
        _INTERN[key] = op
    return Lin(((op, 1.0),), 0.0)


def _by_uid(term) -> int:
    return term[0].uid


class Lin:
    """An affine form Σ w · atom + bias. Arithmetic: +, −, scalar ·, and Lin · Lin (a product op
    unless one side is constant). Immutable; terms sorted by atom uid."""

    __slots__ = ("terms", "bias", "_key", "__weakref__")

    def __init__(self, terms=(), bias: float = 0.0):
        merged: dict = {}
        for atom, w in terms:
            merged[atom] = merged.get(atom, 0.0) + w
        items = [(a, float(w)) for a, w in merged.items() if w != 0.0]
        if len(items) > 1:
            items.sort(key=_by_uid)
        self.terms = tuple(items)
        self.bias = float(bias) + 0.0  # −0.0 → 0.0
        self._key = None

    @property
    def key(self) -> tuple:
        """Structural identity: ((atom uid, weight), …), bias — what op interning compares."""
        if self._key is None:
            self._key = (tuple((a.uid, w) for a, w in self.terms), self.bias)
        return self._key

    # ---- arithmetic --------------------------------------------------------------------------------
    @property
    def is_const(self) -> bool:
        return not self.terms

    def __add__(self, other) -> Lin:
        other = lin(other)
        return Lin(self.terms + other.terms, self.bias + other.bias)

    __radd__ = __add__

    def __neg__(self) -> Lin:
        return Lin(((a, -w) for a, w in self.terms), -self.bias)

    def __sub__(self, other) -> Lin:
        return self + (-lin(other))

    def __rsub__(self, other) -> Lin:
        return lin(other) + (-self)

    def __mul__(self, other) -> Lin:
        other = lin(other)
        if other.is_const:
            return Lin(((a, w * other.bias) for a, w in self.terms), self.bias * other.bias)
        if self.is_const:
            return other * self
        return _op("mul", (self, other))

    __rmul__ = __mul__

    def __truediv__(self, c: float) -> Lin:
        return self * (1.0 / float(c))

    def __repr__(self) -> str:
        parts = [f"{w:g}·{getattr(a, 'name', None) or a!r}" for a, w in self.terms]
        return " + ".join(parts + ([f"{self.bias:g}"] if self.bias or not parts else []))


def lin(x) -> Lin:
    """A Lin from a Lin, a Node (its value) or a number (a constant)."""
    if isinstance(x, Lin):
        return x
    if isinstance(x, Node):
        return Lin(((x, 1.0),), 0.0)
    return Lin((), float(x))


def const(c: float) -> Lin:
    return Lin((), float(c))


def relu(x) -> Lin:
    """ReLU(x) = max(0, x): an elementary function (folded for a constant)."""
    x = lin(x)
    return const(max(0.0, x.bias)) if x.is_const else _op("relu", (x,))


def recip(x) -> Lin:
    """1 / x: an elementary function; the denominator must be nonzero (Definition 3)."""
    x = lin(x)
    if x.is_const:
        if x.bias == 0:
            raise ZeroDivisionError("reciprocal of the constant 0")
        return const(1.0 / x.bias)
    return _op("recip", (x,))


# ---- walking expressions -------------------------------------------------------------------------------


def ops_of(x: Lin, seen: set[int] | None = None) -> list[Op]:
    """Every distinct op in x, each after its arguments' ops (a topological order); ops whose uid is in
    `seen` (shared between calls) are skipped."""
    seen = set() if seen is None else seen
    out: list[Op] = []

    def visit(e: Lin) -> None:
        for atom, _ in e.terms:
            if isinstance(atom, Op) and atom.uid not in seen:
                seen.add(atom.uid)
                for a in atom.args:
                    visit(a)
                out.append(atom)

    visit(x)
    return out


def _reach(x: Lin) -> tuple[set, int]:
    nodes, deep = set(), 0
    for atom, _ in x.terms:
        if isinstance(atom, Op):
            n, d = atom.reach()
            nodes |= n
            deep = max(deep, d)
        else:
            nodes.add(atom)
    return nodes, deep


def nodes_of(x: Lin) -> list[Node]:
    """The nodes x reads (its in-neighbours), directly or through ops."""
    return sorted(_reach(x)[0], key=lambda nd: nd.uid)


def count_ops(x: Lin) -> int:
    """Number of elementary functions (ReLU, product, reciprocal) in the composition x."""
    return len(ops_of(x))


def depth(x: Lin) -> int:
    """Longest chain of elementary functions in x."""
    return _reach(x)[1]


def _apply(kind: str, args: tuple[Lin, ...]) -> Lin:
    if kind == "relu":
        return relu(args[0])
    if kind == "recip":
        return recip(args[0])
    return args[0] * args[1]


def substitute(x: Lin, mapping: dict[int, Lin], memo: dict[int, Lin] | None = None) -> Lin:
    """x with every node atom n replaced by mapping[n.uid] (a Lin). Used to copy a transition function
    into another graph (Claims 4–6) and to feed a copy from another source than its input node."""
    memo = {} if memo is None else memo

    def sub(e: Lin) -> Lin:
        terms, bias = [], e.bias
        for atom, w in e.terms:
            if isinstance(atom, Node):
                if atom.uid not in mapping:
                    raise KeyError(f"substitute: no replacement for node {atom.name!r}")
                rep = mapping[atom.uid]
            else:
                if atom.uid not in memo:
                    memo[atom.uid] = _apply(atom.kind, tuple(sub(a) for a in atom.args))
                rep = memo[atom.uid]
            bias += rep.bias * w
            terms.extend((a, v * w) for a, v in rep.terms)
        return Lin(terms, bias)

    return sub(x)


def evaluate(x: Lin, env: dict[int, np.ndarray | float]):
    """The value of x with node values env[node.uid] — a direct recursive evaluator, independent of
    the compiled executor (nextk.construct.execute); tests compare the two."""
    memo: dict[int, object] = {}

    def ev(e: Lin):
        total = e.bias
        for atom, w in e.terms:
            if isinstance(atom, Node):
                val = env[atom.uid]
            else:
                if atom.uid not in memo:
                    a = [ev(arg) for arg in atom.args]
                    with np.errstate(divide="ignore"):
                        memo[atom.uid] = (
                            np.maximum(a[0], 0.0)
                            if atom.kind == "relu"
                            else a[0] * a[1]
                            if atom.kind == "mul"
                            else 1.0 / np.asarray(a[0])
                        )
                val = memo[atom.uid]
            total = total + w * val
        return total

    return ev(x)


def reach_ops(x: Lin) -> set:
    """The distinct ops of x (a set, for counting across many transitions)."""
    return {op.uid for op in ops_of(x)}
