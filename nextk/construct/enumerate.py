"""Lemma 10 (gated LOAD/RUN/HOLD) and Lemma 11 (synchronised enumeration), docs/theory.md §9.3–9.4.

Every token x_t is processed in an *input loop* of T internal steps, cut into (V^k + 2) segments of
(k + 1) slots of τ_c = max(τ_R, τ_D) + 2 steps (`Layout`):

- segments g = 0 … V^k − 1 enumerate the strings w_g ∈ Σ^k (lexicographic): in slot i < k a copy of
  the hidden set is LOADed from the anchor copy (slot 0, step 0), RUNs τ_R steps on the digit
  w_g[i] and HOLDs; slot k is bookkeeping (used by Lemmas 7–9 and 3);
- segment V^k ("plain") runs the copy once on the real token x_t;
- segment V^k + 1 ("absorb") RUNs the anchor copy over the stored tokens that must enter it: the k
  tokens x_s … x_t of a block that ends at t, or the single token x_t outside every block.

Claims 1–3 (`Frame`): counters c_δ (step in slot), c_i (slot), c_g (segment), c_pos (token position,
capped) and c_j (depth t − s in the block), the input storage z_0 … z_{k−1} and the enumerator digits
u_0 … u_{k−1} (a base-V counter, Lemma 18.4). Claims 4–6 (`add_copies`): the anchor copy of the hidden
set (hidden nodes of the new RNN) and the enumeration copy of every non-input node (work nodes).
"""

from __future__ import annotations

from dataclasses import dataclass

from nextk.construct import gadgets as G
from nextk.construct.expr import Lin, Node, lin, substitute
from nextk.construct.graph import Graph
from nextk.errors import InputError, check_enumeration


@dataclass(frozen=True)
class Layout:
    """The schedule of one input loop (§9.3). Times are absolute internal steps."""

    vocab: int
    k: int
    offset: int
    length: int
    tau_r: int
    tau_d: int

    @property
    def tau_c(self) -> int:
        return max(self.tau_r, self.tau_d) + 2

    @property
    def segments(self) -> int:
        return self.vocab**self.k + 2

    @property
    def slots(self) -> int:
        return self.k + 1

    @property
    def tau(self) -> int:
        """RNN-time per token: T = (V^k + 2)(k + 1)(max(τ_R, τ_D) + 2)."""
        return self.segments * self.slots * self.tau_c

    @property
    def blocks(self) -> list[int]:
        return list(range(self.offset, self.length - self.k + 1, self.k))

    @property
    def cap(self) -> int:
        """c_pos stops here: the first position after the last block (0 when there is no block)."""
        return self.blocks[-1] + self.k if self.blocks else 0

    def time(self, t: int, g: int, i: int, delta: int) -> int:
        return t * self.tau + (g * self.slots + i) * self.tau_c + delta

    def anchor(self, t: int) -> int | None:
        """The block start s of position t, or None when t is outside every block (plain)."""
        for s in self.blocks:
            if s <= t < s + self.k:
                return s
        return None


def check_layout(vocab: int, k: int, offset: int, length: int, tau_r: int, tau_d: int) -> Layout:
    if not 1 <= k <= length:
        raise InputError(f"need 1 ≤ k ≤ length, got k={k}, length={length}")
    if not 0 <= offset < k:
        raise InputError(f"offset must be in 0..{k - 1}, got {offset}")
    check_enumeration(vocab**k, f"synchronised enumeration of {vocab}^{k} continuations per token")
    return Layout(vocab, k, offset, length, tau_r, tau_d)


def gated(node: Node, run: Lin | None = None, run_gate=0, load=None, load_gate=0) -> Lin:
    """Lemma 10: LOAD `load` when load_gate = 1, RUN `run` (the original transition) when run_gate = 1,
    HOLD the node's own value otherwise; gates are indicators, never both 1."""
    out = (1 - lin(run_gate) - lin(load_gate)) * lin(node)
    if run is not None:
        out = out + lin(run_gate) * run
    if load is not None:
        out = out + lin(load_gate) * lin(load)
    return out


class Frame:
    """Claims 1–3: the counters, the input storage and the enumerator of one Layout, and the gates
    (indicator Lins of the counters) that schedule everything else."""

    def __init__(self, g: Graph, lay: Layout):
        self.g, self.lay = g, lay
        k, nv = lay.k, lay.vocab**lay.k
        self.c_delta = g.add("c_delta", "hidden")
        self.c_slot = g.add("c_slot", "hidden")
        self.c_seg = g.add("c_seg", "hidden")
        self.c_pos = g.add("c_pos", "hidden")
        self.c_depth = g.add("c_depth", "hidden")
        self.z = [g.add(f"z{i}", "hidden") for i in range(k)]
        self.u = [g.add(f"u{i}", "hidden") for i in range(k)]
        cd, ci, cg = self.c_delta, self.c_slot, self.c_seg
        # gates
        self.end_slot = G.eq(cd, lay.tau_c - 1)
        self.seg_enum = G.NOT(G.ge(cg, nv))
        self.seg_plain = G.eq(cg, nv)
        self.seg_absorb = G.eq(cg, nv + 1)
        self.digit = G.NOT(G.ge(ci, k))
        self.book = G.eq(ci, k)
        self.first = G.AND(G.eq(cg, 0), G.eq(ci, 0), G.eq(cd, 0))
        loop_end = G.AND(self.end_slot, self.book, self.seg_absorb)
        self.inblock = G.in_range(self.c_pos, lay.offset, lay.cap - 1) if lay.blocks else lin(0.0)
        self.plain = 1 - self.inblock
        self.blockend = G.AND(self.inblock, G.eq(self.c_depth, k - 1))
        self.active = G.OR(self.blockend, G.AND(self.plain, G.eq(ci, 0)))
        self.enum_digit = G.mux(ci, self.u)
        self.stored = G.mux(ci, self.z)
        # Claim 1: counters
        g.set(cd, G.counter_next(cd, lay.tau_c))
        g.set(ci, G.counter_next(ci, lay.slots, self.end_slot))
        g.set(cg, G.counter_next(cg, lay.segments, G.AND(self.end_slot, self.book)))
        g.set(self.c_pos, G.capped_next(self.c_pos, lay.cap, loop_end))
        g.set(self.c_depth, G.counter_next(self.c_depth, k, G.AND(loop_end, G.ge(self.c_pos, lay.offset))))
        # Claim 2: input storage, z_j ← x_t at the first step of the loop of token t (j = depth; 0 if plain)
        for i, z in enumerate(self.z):
            sel = G.AND(self.inblock, G.eq(self.c_depth, i))
            if i == 0:
                sel = G.OR(sel, self.plain)
            g.set(z, z + G.AND(self.first, sel) * (g.input - z))
        # Claim 3: enumerator, the next string at the last step of each enumeration segment
        inc = G.AND(self.seg_enum, self.book, self.end_slot)
        for u, nxt in zip(self.u, G.increment(self.u, lay.vocab, inc)):
            g.set(u, nxt)

    def run_window(self, tau: int) -> Lin:
        """1[1 ≤ c_δ ≤ τ]: the RUN steps of a slot."""
        return G.AND(G.ge(self.c_delta, 1), G.le(self.c_delta, tau))

    def load_gate(self, plain: bool) -> Lin:
        """Step 0 of slot 0 of every enumeration segment (and of the plain segment when `plain`)."""
        seg = G.OR(self.seg_enum, self.seg_plain) if plain else self.seg_enum
        return G.AND(seg, G.eq(self.c_slot, 0), G.eq(self.c_delta, 0))

    def enum_run_gate(self, tau: int, plain: bool) -> Lin:
        gate = G.AND(self.seg_enum, self.digit, self.run_window(tau))
        if plain:
            gate = G.OR(gate, G.AND(self.seg_plain, G.eq(self.c_slot, 0), self.run_window(tau)))
        return gate


@dataclass
class Copies:
    """The copies of one RNN inside the constructed one: `anchor` (hidden; its state set after the
    anchor prefix) and `enum` (every non-input node, for the enumeration), keyed by the original uid;
    `out` is the enumeration copy of its output node; `state` the original nodes copied as anchor."""

    anchor: dict[int, Node]
    enum: dict[int, Node]
    out: Node
    state: list[Node]


def state_set(R: Graph, mode: str) -> list[Node]:
    """The nodes that carry R's state between tokens: its declared hidden set ("hidden", §2.2's
    efficient construction) or all its non-input nodes ("all", §2.1's two-copy construction)."""
    if mode not in ("hidden", "all"):
        raise InputError(f"mode must be 'hidden' or 'all', got {mode!r}")
    return R.hidden if mode == "hidden" else [nd for nd in R.nodes if nd.kind != "input"]


def add_copies(g: Graph, frame: Frame, R: Graph, tag: str, mode: str, tau: int, plain: bool) -> Copies:
    """Claims 4–6 with Lemma 10's gates: R's state set copied twice, its other nodes once.

    Anchor copy (Claim 4): RUNs R's transitions on the stored tokens during the absorb segment of a
    token whose loop must absorb (Frame.active), HOLDs otherwise. Enumeration copy (Claims 5–6): the
    state-set part LOADs the anchor at each segment start; every node RUNs R's transition with the
    enumerated digit (or x_t in the plain segment when `plain`) as input in the first τ steps of each
    digit slot, and HOLDs otherwise. R's output's copy then holds R's output on the anchor prefix
    followed by w_g[0..i] from step τ + 1 of slot i to its end (Lemma 11)."""
    R.check()
    state = state_set(R, mode)
    anchor = {nd.uid: g.add(f"{tag}A.{nd.name}", "hidden", nd.init, nd.fmt) for nd in state}
    enum = {nd.uid: g.add(f"{tag}E.{nd.name}", "work", nd.init, nd.fmt) for nd in R.nodes if nd.kind != "input"}
    amap = {uid: lin(nd) for uid, nd in anchor.items()}
    amap[R.input.uid] = frame.stored
    a_run = G.AND(frame.seg_absorb, frame.digit, frame.run_window(tau), frame.active)
    memo: dict = {}
    for nd in state:
        g.set(anchor[nd.uid], gated(anchor[nd.uid], substitute(nd.expr, amap, memo), a_run))
    emap = {uid: lin(nd) for uid, nd in enum.items()}
    emap[R.input.uid] = G.if_else(frame.seg_plain, g.input, frame.enum_digit) if plain else frame.enum_digit
    e_run, e_load = frame.enum_run_gate(tau, plain), frame.load_gate(plain)
    in_state = {nd.uid for nd in state}
    memo = {}
    for nd in R.nodes:
        if nd.kind == "input":
            continue
        load, lg = (anchor[nd.uid], e_load) if nd.uid in in_state else (None, 0)
        g.set(enum[nd.uid], gated(enum[nd.uid], substitute(nd.expr, emap, memo), e_run, load, lg))
    return Copies(anchor, enum, enum[R.output.uid], state)


def synchronized_enumeration(R: Graph, k: int, offset: int, length: int, mode: str = "hidden") -> tuple[Graph, Layout]:
    """Lemma 11: an RNN that reads x_0 … x_{n−1}, one token per T steps, and whose output node holds, at
    Layout.time(t, g, i, τ_c − 1), R's output on x_{<s} w_g[0..i] when t is in the block starting at s,
    and at Layout.time(t, V^k, 0, τ_c − 1) R's output on x_{≤t} (positions outside every block).
    Size s_R + h_R + 2k + 5, hidden set h_R + 2k + 5 (mode "hidden"; §9.4)."""
    lay = check_layout(R.vocab_size, k, offset, length, R.tau, R.tau)
    g = Graph(f"enum({R.name})", R.vocab_size, lay.tau)
    frame = Frame(g, lay)
    copies = add_copies(g, frame, R, "R", mode, R.tau, plain=True)
    g.output = copies.out
    g.meta = {"layout": lay, "role": "lemma11"}
    g.check()
    return g, lay


def gated_copy(R: Graph, pattern: str) -> Graph:
    """Lemma 10 on its own: R's nodes (the source of the external vector) and a gated copy of them whose
    control cycles through `pattern` (one letter per internal step: L = LOAD R's current values,
    R = RUN R's transitions on the copy with the same input, H = HOLD), driven by a phase counter
    (the control RNN). The output node is the copy of R's output."""
    if not pattern or set(pattern) - set("LRH"):
        raise InputError(f"pattern must be a non-empty string over L, R, H, got {pattern!r}")
    g = Graph(f"gated({R.name})", R.vocab_size, R.tau)
    phase = g.add("phase", "hidden")
    g.set(phase, G.counter_next(phase, len(pattern)))
    gate = {c: sum((G.eq(phase, j) for j, p in enumerate(pattern) if p == c), lin(0.0)) for c in "LR"}
    orig = {nd.uid: g.add(f"orig.{nd.name}", nd.kind, nd.init, nd.fmt) for nd in R.nodes if nd.kind != "input"}
    copy = {nd.uid: g.add(f"copy.{nd.name}", "work", nd.init, nd.fmt) for nd in R.nodes if nd.kind != "input"}
    omap = {uid: lin(nd) for uid, nd in orig.items()} | {R.input.uid: lin(g.input)}
    cmap = {uid: lin(nd) for uid, nd in copy.items()} | {R.input.uid: lin(g.input)}
    for nd in R.nodes:
        if nd.kind != "input":
            g.set(orig[nd.uid], substitute(nd.expr, omap))
            g.set(copy[nd.uid], gated(copy[nd.uid], substitute(nd.expr, cmap), gate["R"], orig[nd.uid], gate["L"]))
    g.output = copy[R.output.uid]
    g.check()
    return g
