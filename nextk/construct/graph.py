"""Graph RNNs per the paper's Definition 3 (docs/theory.md §9.1).

A `Graph` is a set of nodes with real values, one input node fed from a pointer into the token
stream that advances every τ internal steps, a transition function per non-input node (a `Lin`
composed of ReLU, product and reciprocal), a designated output node and a declared hidden node set
(the nodes of kind "hidden").

Timing convention: at time t the input node holds x_{⌊t/τ⌋}; one internal step computes every
non-input node's value at t + 1 from all values at t (synchronously). An LM-RNN's output node holds
q(x_i | x_{<i}) at time (i + 1)τ; a distinguisher RNN's output holds d(x_{<i−k+1}, x_{i−k+1..i})
(the window of the last k tokens read) at time (i + 1)τ.

The hidden node set's two properties are *checked*, not assumed: property (i) here, syntactically
(`check_hidden_reads`: a hidden node's transition reads only hidden nodes and the input); property
(ii) on executions by `nextk.construct.execute.check_sufficiency` (taint analysis).
"""

from __future__ import annotations

from dataclasses import dataclass

from nextk.construct.expr import Node, count_ops, depth, lin, nodes_of, reach_ops
from nextk.errors import InputError


class HiddenSetError(InputError):
    """A declared hidden node set violates Definition 3 (i) or (ii); the message names the node."""


@dataclass
class GraphStats:
    """Sizes counted from the graph: s (all nodes, input included), h (declared hidden set), τ
    (RNN-time per token), elementary functions (max per node, distinct in the whole graph), longest
    chain of elementary functions in one transition, and edges (in-neighbour pairs)."""

    size: int
    hidden: int
    tau: int
    max_ops_per_node: int
    total_ops: int
    max_depth: int
    edges: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class Graph:
    """A graph RNN (Definition 3) over tokens 0..vocab_size−1 with RNN-time `tau` per token."""

    def __init__(self, name: str, vocab_size: int, tau: int):
        if vocab_size < 1 or tau < 1:
            raise InputError(f"need vocab_size ≥ 1 and tau ≥ 1, got {vocab_size}, {tau}")
        self.name, self.vocab_size, self.tau = name, int(vocab_size), int(tau)
        self.nodes: list[Node] = []
        self.input = self.add("x", "input")
        self._output: Node | None = None
        self.meta: dict = {}
        self._checked = False  # Graph.check passed and nothing changed since

    @property
    def output(self) -> Node | None:
        """The designated output node."""
        return self._output

    @output.setter
    def output(self, node: Node) -> None:
        self._output = node
        self._checked = False

    def add(self, name: str, kind: str, init: float = 0.0, fmt: tuple[int, int] | None = None) -> Node:
        if kind == "input" and self.nodes:
            raise InputError("a graph has exactly one input node (the token pointer)")
        node = Node(name, kind, init, fmt)
        self.nodes.append(node)
        self._checked = False
        return node

    def set(self, node: Node, expr) -> None:
        """Give `node` its transition function (a Lin, a Node or a number)."""
        if node.kind == "input":
            raise InputError(f"the input node {node.name!r} is set from the token stream, not by a transition")
        node.expr = lin(expr)
        self._checked = False

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, size={self.size}, hidden={len(self.hidden)}, tau={self.tau})"

    @property
    def size(self) -> int:
        return len(self.nodes)

    @property
    def hidden(self) -> list[Node]:
        return [nd for nd in self.nodes if nd.kind == "hidden"]

    @property
    def work(self) -> list[Node]:
        return [nd for nd in self.nodes if nd.kind == "work"]

    def find(self, name: str) -> Node:
        for nd in self.nodes:
            if nd.name == name:
                return nd
        raise KeyError(name)

    def check(self) -> None:
        """Well-formed (every non-input node has a transition reading only this graph's nodes, an
        output node is set) and hidden-set property (i). Raises InputError / HiddenSetError."""
        if self._checked:
            return
        if self.output is None:
            raise InputError(f"graph {self.name!r} has no output node")
        own = {nd.uid for nd in self.nodes}
        if self.output.uid not in own:
            raise InputError(f"graph {self.name!r}: the output node is not one of its nodes")
        for nd in self.nodes:
            if nd.kind != "input" and nd.expr is None:
                raise InputError(f"graph {self.name!r}: node {nd.name!r} has no transition function")
            if nd.expr is not None:
                stray = [m.name for m in nodes_of(nd.expr) if m.uid not in own]
                if stray:
                    raise InputError(f"graph {self.name!r}: node {nd.name!r} reads foreign nodes {stray[:3]}")
        check_hidden_reads(self)
        self._checked = True

    def bit_size(self, default: tuple[int, int] | None = None) -> int:
        """Definition 4 counted from the graph: max over non-input nodes of 1 + I + F, each node in its own
        format or `default`."""
        fmts = [nd.fmt or default for nd in self.nodes if nd.kind != "input"]
        if any(f is None for f in fmts):
            raise InputError(f"graph {self.name!r} has nodes without a fixed-point format; pass default=(I, F)")
        return max(1 + ib + fb for ib, fb in fmts)

    def stats(self) -> GraphStats:
        exprs = [nd.expr for nd in self.nodes if nd.expr is not None]
        return GraphStats(
            size=self.size,
            hidden=len(self.hidden),
            tau=self.tau,
            max_ops_per_node=max((count_ops(e) for e in exprs), default=0),
            total_ops=len(set().union(*(reach_ops(e) for e in exprs))),
            max_depth=max((depth(e) for e in exprs), default=0),
            edges=sum(len(nodes_of(e)) for e in exprs),
        )


def check_hidden_reads(graph: Graph) -> None:
    """Definition 3 (i): every hidden node's transition reads only hidden nodes and the input node.
    Raises HiddenSetError naming the first hidden node that reads a work node."""
    for nd in graph.hidden:
        bad = [m.name for m in nodes_of(nd.expr) if m.kind == "work"] if nd.expr is not None else []
        if bad:
            raise HiddenSetError(
                f"graph {graph.name!r}: hidden node {nd.name!r} reads work node(s) {bad[:3]} (Definition 3 (i))"
            )
