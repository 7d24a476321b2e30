"""Running graph RNNs: float64 or fixed point, vectorised over a batch (docs/theory.md §9.1, §9.7).

`Program` compiles a `Graph` once: the distinct elementary functions of all transitions are sorted
into levels (an op's level is one more than its arguments' deepest op); per level one sparse matrix
computes every op's affine arguments from the values below it, then the products, ReLUs and
reciprocals are applied elementwise. A last sparse matrix gives every non-input node its new value.
So one internal step costs a few NumPy calls per level, whatever the graph's size.

`run` executes from the initial values (or given values) on a batch of token strings. With `fixed`,
every node value is stored in signed fixed point after every internal step
(`nextk.quantize.fixed_point`, Definition 4); a node with its own `fmt` keeps it, the others use
`fixed` = (int_bits, frac_bits). Values inside a transition are float64 (not stored in a node).

`check_sufficiency` checks Definition 3 (ii) on executions by taint analysis (§9.1): at time iτ every
work node is marked as unknown; a mark passes through affine maps, ReLU and reciprocal, and through a
product unless the other factor is an unmarked exact zero (the gating products of Lemma 10 and the
if-else of Lemma 18). Every later output at a multiple of τ must stay unmarked: the outputs then
depend on the hidden values at iτ and the remaining input only, whatever the work nodes hold.

`GraphLM` wraps an LM-RNN as a nextk LanguageModel (q(v | x_{<t}) for every v by branching the
node values V ways and running τ steps with input v).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse import csr_matrix

from nextk.construct.expr import Lin, Op, ops_of
from nextk.construct.graph import Graph, HiddenSetError
from nextk.errors import InputError
from nextk.lm import State, check_tokens, gather_log_prob, log_probs_by_steps, sample_by_steps
from nextk.quantize import fixed_point

try:  # the kernel behind `csr_matrix @ dense`, called directly to skip scipy's per-call dispatch
    from scipy.sparse._sparsetools import csr_matvecs as _csr_matvecs
except ImportError:  # pragma: no cover - other scipy layouts
    _csr_matvecs = None


class _Affine:
    """x ↦ m @ x + bias[:, None] for a C-contiguous float64 x (columns × batch), written into a buffer
    kept between calls (one internal step after another reuses it)."""

    def __init__(self, m: csr_matrix, bias: np.ndarray):
        self.m, self.rows, self.cols = m, m.shape[0], m.shape[1]
        self.indptr, self.indices, self.data = m.indptr, m.indices, m.data
        self.bias = bias[:, None]
        self.buf = np.empty((self.rows, 0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        b = x.shape[1]
        if self.buf.shape[1] != b:
            self.buf = np.empty((self.rows, b))
        out = self.buf
        out[...] = self.bias
        if _csr_matvecs is None:
            out += self.m @ x
        else:
            _csr_matvecs(self.rows, self.cols, b, self.indptr, self.indices, self.data, x.ravel(), out.ravel())
        return out


class GraphRuntimeError(ValueError):
    """A node value became non-finite (a reciprocal of zero, an overflow): the message names it."""


def _matrix(lins: list[Lin], slot: dict[int, int], ncols: int) -> tuple[csr_matrix, csr_matrix, np.ndarray]:
    rows, cols, data = [], [], []
    bias = np.zeros(len(lins))
    for i, e in enumerate(lins):
        bias[i] = e.bias
        for atom, w in e.terms:
            rows.append(i)
            cols.append(slot[atom.uid])
            data.append(w)
    m = csr_matrix((data, (rows, cols)), shape=(len(lins), ncols))
    pattern = csr_matrix((np.ones(len(data)), (rows, cols)), shape=(len(lins), ncols))
    return m, pattern, bias


class _Level:
    """The ops of one level: their affine arguments (and the taint pattern), and where they go."""

    def __init__(self, m, pattern, bias, lo: int, n_mul: int, n_relu: int, n_recip: int):
        self.ncols, self.lo = m.shape[1], lo
        self.args, self.taint_args = _Affine(m, bias), _Affine(pattern, np.zeros(m.shape[0]))
        self.n_mul, self.n_relu, self.n_recip = n_mul, n_relu, n_recip
        nm, nr = n_mul, n_relu
        self.mul_out, self.relu_out, self.recip_out = (
            slice(lo, lo + nm),
            slice(lo + nm, lo + nm + nr),
            slice(lo + nm + nr, lo + nm + nr + n_recip),
        )
        self.a, self.b = slice(0, nm), slice(nm, 2 * nm)
        self.relu_in, self.recip_in = slice(2 * nm, 2 * nm + nr), slice(2 * nm + nr, 2 * nm + nr + n_recip)


class Program:
    """A graph compiled for execution (see the module docstring)."""

    def __init__(self, graph: Graph):
        graph.check()
        self.graph, self.tau = graph, graph.tau
        nodes = graph.nodes
        self.n_nodes = len(nodes)
        slot = {nd.uid: i for i, nd in enumerate(nodes)}
        level: dict[int, int] = {}
        by_level: dict[int, list[Op]] = {}
        seen: set[int] = set()
        for nd in nodes:
            if nd.expr is None:
                continue
            for op in ops_of(nd.expr, seen):
                lv = 1 + max((level[a.uid] for e in op.args for a, _ in e.terms if isinstance(a, Op)), default=0)
                level[op.uid] = lv
                by_level.setdefault(lv, []).append(op)
        self.levels: list[_Level] = []
        nxt = self.n_nodes
        for lv in sorted(by_level):
            ops = sorted(by_level[lv], key=lambda o: ("mul", "relu", "recip").index(o.kind))
            for j, op in enumerate(ops):
                slot[op.uid] = nxt + j
            muls = [o for o in ops if o.kind == "mul"]
            rows = [o.args[0] for o in muls] + [o.args[1] for o in muls]
            rows += [o.args[0] for o in ops if o.kind != "mul"]
            m, pat, bias = _matrix(rows, slot, nxt)
            n_relu = sum(o.kind == "relu" for o in ops)
            self.levels.append(_Level(m, pat, bias, nxt, len(muls), n_relu, len(ops) - len(muls) - n_relu))
            nxt += len(ops)
        self.n_slots = nxt
        self.upd = np.array([i for i, nd in enumerate(nodes) if nd.kind != "input"], dtype=np.int64)
        final, final_pattern, final_bias = _matrix([nodes[i].expr for i in self.upd], slot, nxt)
        self.final, self.final_taint = _Affine(final, final_bias), _Affine(final_pattern, np.zeros(len(self.upd)))
        self.inp = slot[graph.input.uid]
        self.out = slot[graph.output.uid]
        self.init = np.array([nd.init for nd in nodes])
        self.work = np.array([i for i, nd in enumerate(nodes) if nd.kind == "work"], dtype=np.int64)

    def formats(self, default: tuple[int, int] | None) -> list[tuple[np.ndarray, int, int]]:
        """Groups (rows of `upd`, int_bits, frac_bits) for the fixed-point run."""
        groups: dict[tuple[int, int], list[int]] = {}
        for r, i in enumerate(self.upd):
            fmt = self.graph.nodes[i].fmt or default
            if fmt is None:
                raise InputError(f"node {self.graph.nodes[i].name!r} has no fixed-point format; pass fixed=(I, F)")
            groups.setdefault(tuple(fmt), []).append(r)
        return [(np.array(rows), ib, fb) for (ib, fb), rows in groups.items()]


@dataclass
class RunResult:
    outputs: np.ndarray  # (B, L): the output node at times (i + 1)τ
    final: np.ndarray  # (N, B): every node's value at time Lτ
    trace: dict[str, np.ndarray] | None  # node name → (Lτ + 1, B) values at every time
    max_abs: np.ndarray | None  # (N,): max |value| of each node over the run
    out_taint: np.ndarray | None  # (B, L) bool: output marked at (i + 1)τ (taint analysis)
    final_taint: np.ndarray | None = None  # (N, B) bool: nodes marked at time Lτ
    states: np.ndarray | None = None  # (L + 1, N, B): every node's value at times iτ


def compiled(graph: Graph | Program) -> Program:
    return graph if isinstance(graph, Program) else Program(graph)


def run(
    graph: Graph | Program,
    x,
    *,
    fixed: tuple[int, int] | bool | None = None,
    start: np.ndarray | None = None,
    record: list[str] | None = None,
    taint_at: np.ndarray | None = None,
    track_max: bool = False,
    keep_states: bool = False,
) -> RunResult:
    """Execute on token strings x (B, L). `fixed`: None for float64; (I, F) as the default format (a
    node's own fmt wins); True to use node formats only. `start`: node values (N, B) at time 0 instead
    of the initial values. `record`: node names whose values at every time are returned. `taint_at`:
    per string the token index i at which work nodes are marked (taint analysis). `keep_states`: return
    every node's value at every multiple of τ."""
    prog = compiled(graph)
    x = np.asarray(x.numpy() if isinstance(x, torch.Tensor) else x, dtype=np.int64)
    if x.ndim != 2:
        raise InputError(f"x must have shape (batch, length), got {x.shape}")
    if x.size and (x.min() < 0 or x.max() >= prog.graph.vocab_size):
        raise InputError(f"token ids must lie in 0..{prog.graph.vocab_size - 1}")
    b, length = x.shape
    s = np.zeros((prog.n_slots, b))
    s[: prog.n_nodes] = prog.init[:, None] if start is None else start
    groups = None if fixed is None or fixed is False else prog.formats(None if fixed is True else fixed)
    if groups is not None:  # values at time 0 are stored in nodes too (Definition 4)
        s[prog.upd] = _quantise(s[prog.upd], groups)
    names = [nd.name for nd in prog.graph.nodes]
    rec = [names.index(r) for r in record] if record else []
    trace = np.zeros((length * prog.tau + 1, len(rec), b)) if rec else None
    outputs = np.zeros((b, length))
    max_abs = np.abs(s[: prog.n_nodes]).max(axis=1) if track_max and b else None
    taint = np.zeros((prog.n_slots, b)) if taint_at is not None else None
    out_taint = np.zeros((b, length), dtype=bool) if taint is not None else None
    if length:
        s[prog.inp] = x[:, 0]
    states = np.zeros((length + 1, prog.n_nodes, b)) if keep_states else None
    if states is not None:
        states[0] = s[: prog.n_nodes]
    if trace is not None:
        trace[0] = s[rec]
    for t in range(length * prog.tau):
        if taint is not None and t % prog.tau == 0:
            cols = np.nonzero(np.asarray(taint_at) == t // prog.tau)[0]
            taint[np.ix_(prog.work, cols)] = 1.0
        _step(prog, s, taint, groups, t)
        if max_abs is not None:
            np.maximum(max_abs, np.abs(s[: prog.n_nodes]).max(axis=1), out=max_abs)
        if (t + 1) % prog.tau == 0:
            i = (t + 1) // prog.tau
            outputs[:, i - 1] = s[prog.out]
            if taint is not None:
                out_taint[:, i - 1] = taint[prog.out] > 0
            if i < length:
                s[prog.inp] = x[:, i]
            if states is not None:
                states[i] = s[: prog.n_nodes]
        if trace is not None:
            trace[t + 1] = s[rec]
    traces = {r: trace[:, j] for j, r in enumerate(record)} if trace is not None else None
    final_taint = taint[: prog.n_nodes] > 0 if taint is not None else None
    return RunResult(outputs, s[: prog.n_nodes].copy(), traces, max_abs, out_taint, final_taint, states)


def _step(prog: Program, s: np.ndarray, taint: np.ndarray | None, groups, t: int) -> None:
    """One synchronous internal step in place: op slots level by level, then every non-input node."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for lv in prog.levels:
            a = lv.args(s[: lv.ncols])
            if lv.n_mul:
                np.multiply(a[lv.a], a[lv.b], out=s[lv.mul_out])
            if lv.n_relu:
                np.maximum(a[lv.relu_in], 0.0, out=s[lv.relu_out])
            if lv.n_recip:
                np.divide(1.0, a[lv.recip_in], out=s[lv.recip_out])
            if taint is not None:
                ta = lv.taint_args(taint[: lv.ncols]) > 0
                x, y, tx, ty = a[lv.a], a[lv.b], ta[lv.a], ta[lv.b]
                killed = (~tx & (x == 0)) | (~ty & (y == 0))
                taint[lv.mul_out] = (tx | ty) & ~killed
                taint[lv.lo + lv.n_mul : lv.recip_out.stop] = ta[2 * lv.n_mul :]
        new = prog.final(s)
    if groups is not None:
        new = _quantise(new, groups)
    if not np.isfinite(new).all():
        r, col = np.argwhere(~np.isfinite(new))[0]
        node = prog.graph.nodes[prog.upd[r]]
        raise GraphRuntimeError(
            f"graph {prog.graph.name!r}: node {node.name!r} became {new[r, col]} at time {t + 1} (row {col})"
        )
    if taint is not None:
        taint[prog.upd] = prog.final_taint(taint) > 0
    s[prog.upd] = new


def _quantise(values: np.ndarray, groups) -> np.ndarray:
    """Every row (a non-input node) in its fixed-point format (nextk.quantize.fixed_point)."""
    for rows, ib, fb in groups:
        values[rows] = fixed_point(torch.from_numpy(values[rows]), ib, fb).numpy()
    return values


def check_sufficiency(graph: Graph | Program, x, states: np.ndarray | None = None) -> None:
    """Definition 3 (ii), strong form, on the strings x (B, L): for every string and every token index
    i, marking all work nodes at time iτ leaves every output at (j + 1)τ, j ≥ i, unmarked. Raises
    HiddenSetError naming the first failure. (Property (i) is checked by Graph.check.)

    All (string, i) pairs run together for one token from the states at iτ; a pair whose work nodes
    are still marked at (i + 1)τ is then followed over its remaining tokens. `states`: the
    `keep_states` of an earlier run on x, to save running it again."""
    prog = compiled(graph)
    x = np.asarray(x.numpy() if isinstance(x, torch.Tensor) else x, dtype=np.int64)
    b, length = x.shape
    if states is None:
        states = run(prog, x, keep_states=True).states
    states = states[:length]  # (L, N, B) at iτ
    start = states.transpose(1, 2, 0).reshape(prog.n_nodes, b * length)  # column b·L + i
    one = run(prog, x.reshape(-1, 1), start=start, taint_at=np.zeros(b * length))
    for col in range(b * length):
        row, i = divmod(col, length)
        if one.out_taint[col, 0]:
            _insufficient(prog, x[row], i, i)
        if one.final_taint[:, col].any() and i + 1 < length:  # marks linger in work nodes: follow them
            rest = run(prog, x[row : row + 1, i:], start=start[:, col : col + 1], taint_at=np.zeros(1))
            if rest.out_taint.any():
                _insufficient(prog, x[row], i, i + int(np.argmax(rest.out_taint[0])))


def _insufficient(prog: Program, string: np.ndarray, i: int, j: int) -> None:
    raise HiddenSetError(
        f"graph {prog.graph.name!r}: the output at token {j} depends on work-node values at token {i} "
        f"(string {string.tolist()}), not only on the hidden set and the input (Definition 3 (ii))"
    )


def verify_hidden_set(graph: Graph | Program, x) -> None:
    """Both hidden-set properties: (i) syntactically (Graph.check) and (ii) by taint on x."""
    prog = compiled(graph)  # compiling runs graph.check()
    check_sufficiency(prog, x)


class GraphLM:
    """An LM-RNN graph as a nextk LanguageModel: q(v | x_{<t}) is the output node after τ steps with
    input v from the node values after x_{<t}. State: {"log_probs", "nodes" (B, N) float64}. The
    outputs are taken as they are (a fixed-point run need not sum to exactly 1; nothing renormalises)."""

    exact = True

    def __init__(self, graph: Graph, fixed: tuple[int, int] | bool | None = None, length: int | None = None):
        self.graph, self.prog, self.fixed, self.length = graph, Program(graph), fixed, length
        self.vocab_size = graph.vocab_size

    def __repr__(self) -> str:
        return f"GraphLM({self.graph!r}, fixed={self.fixed})"

    def _log_next(self, values: np.ndarray) -> torch.Tensor:
        v, b = self.vocab_size, values.shape[1]
        toks = np.tile(np.arange(v), b)[:, None]
        out = run(self.prog, toks, start=np.repeat(values, v, axis=1), fixed=self.fixed).outputs[:, 0]
        if (out <= 0).any():
            raise GraphRuntimeError(f"{self!r} gave a non-positive probability {out.min()}")
        return torch.from_numpy(np.log(out).reshape(b, v))

    def _state(self, values: np.ndarray) -> State:
        return State({"log_probs": self._log_next(values), "nodes": torch.from_numpy(values.T.copy())})

    def start(self, batch: int) -> State:
        return self._state(np.repeat(self.prog.init[:, None], batch, axis=1))

    def step(self, state: State, tokens: torch.Tensor) -> tuple[State, torch.Tensor]:
        values = state.tensors["nodes"].numpy().T.copy()
        res = run(self.prog, tokens.long().reshape(-1, 1), start=values, fixed=self.fixed)
        new = self._state(res.final)
        return new, new.log_probs

    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        return log_probs_by_steps(self, check_tokens(x, self.vocab_size, self.length))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x = check_tokens(x, self.vocab_size, self.length)
        return gather_log_prob(self.log_probs(x), x)

    def sample(self, num: int, length: int | None = None, *, generator=None, prefix=None) -> torch.Tensor:
        from nextk.lm import make_generator

        length = self.length if length is None else length
        return sample_by_steps(self, num, length, make_generator(generator), prefix)
