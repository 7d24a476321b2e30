"""Lemmas 7–9 and Lemma 3: the boosted LM-RNN, built node by node (docs/theory.md §9.6).

From an LM-RNN R (output q(x_t | x_{<t}) at (t + 1)τ_R) and a distinguisher RNN D (§9.5 convention),
`boost_rnn` builds an RNN B whose output at (t + 1)T is the boosted conditional of eq. 1.4–1.5 —
the same numbers as `nextk.boost.Boosted(q, d, k, r, η, n).log_probs(x).exp()` gathered at x_t:

    q'(x_t | x_{<t}) = N_t / Z_t,   N_t = Σ_{w ∈ Σ^k} q(w | x_{<s}) e^{η d(x_{<s}, w)} 1[w_{0..j} = x_{s..t}],
                                    Z_t = the same sum with 1[w_{0..j−1} = x_{s..t−1}],

for t in the block [s, s + k) of S_r with j = t − s, and q'(x_t | x_{<t}) = q(x_t | x_{<t}) outside every
block. On top of Lemma 11's frame and the copies of R and D (nextk.construct.enumerate):

- Lemma 7, node `pacc`: reset to 1 when a segment starts; at the end of digit slot i it multiplies
  itself by R's copy's output, so after slot k − 1 it holds q(w_g | x_{<s}) (after slot 0 of the plain
  segment, q(x_t | x_{<t}));
- Lemma 8, node `E`: at step 0 of the bookkeeping slot, e^{η d(x_{<s}, w_g)} = 1 + (e^η − 1)·d from D's
  copy's output (Lemma 18.5);
- Lemma 9, nodes `I_num`, `I_den`: at the same step, AND_i (1[u_i = z_i] OR i > j) and
  AND_i (1[u_i = z_i] OR i ≥ j), comparing the enumerated digits with the stored tokens;
- Lemma 3, nodes `N`, `Z`, `o`: N += pacc·E·I_num and Z += pacc·E·I_den at step 1 of the
  bookkeeping slot (both reset at the loop's first step); in the plain segment's bookkeeping slot
  o ← (1 − inblock)·pacc + inblock·N/Z (the reciprocal's argument is gated so it is never 0).

`construction="two_copy"` is §2.1's simple construction: the whole of R and D is copied twice (state
set = every node) instead of their hidden sets; everything else is the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nextk.construct import gadgets as G
from nextk.construct.enumerate import Frame, Layout, add_copies, check_layout, gated
from nextk.construct.expr import lin, recip
from nextk.construct.graph import Graph
from nextk.errors import InputError

CONSTRUCTIONS = {"efficient": "hidden", "two_copy": "all"}
FRAME_NODES = 5  # counters c_δ, c_slot, c_seg, c_pos, c_depth (Claim 1)
BOOST_NODES = 7  # pacc, E, I_num, I_den, N, Z, o (Lemmas 7–9 and 3)


@dataclass
class BoostedRNN:
    """A constructed boosted LM-RNN: the graph, its schedule and the parameters it was built with."""

    graph: Graph
    layout: Layout
    construction: str
    eta: float
    inputs: dict  # sizes of R and D: s_R, h_R, tau_R, s_D, h_D, tau_D

    @property
    def formula(self) -> dict:
        return lemma3_formula(construction=self.construction, vocab=self.layout.vocab, k=self.layout.k, **self.inputs)


def lemma3_formula(
    *, construction: str, vocab: int, k: int, s_R: int, h_R: int, tau_R: int, s_D: int, h_D: int, tau_D: int
) -> dict:
    """Size, hidden set and RNN-time of the construction, counted from its definition (§9.6):

    efficient: s' = s_R + h_R + s_D + h_D + 2k + 11,   h' = h_R + h_D + 2k + 5
    two-copy:  s' = 2 s_R + 2 s_D + 2k + 9,             h' = s_R + s_D + 2k + 3
    both:      T' = (V^k + 2)(k + 1)(max(τ_R, τ_D) + 2)

    (1 input node, 5 counters, k storage and k enumerator nodes, the anchor copies of the state sets,
    the enumeration copies of every non-input node of R and D, and 7 nodes of Lemmas 7–9 and 3.)"""
    if construction not in CONSTRUCTIONS:
        raise InputError(f"construction must be one of {sorted(CONSTRUCTIONS)}, got {construction!r}")
    frame = 1 + FRAME_NODES + 2 * k
    state_r, state_d = (h_R, h_D) if construction == "efficient" else (s_R - 1, s_D - 1)
    return {
        "size": frame + state_r + (s_R - 1) + state_d + (s_D - 1) + BOOST_NODES,
        "hidden": FRAME_NODES + 2 * k + state_r + state_d,
        "tau": (vocab**k + 2) * (k + 1) * (max(tau_R, tau_D) + 2),
    }


def boost_rnn(
    R: Graph,
    D: Graph,
    k: int,
    offset: int,
    eta: float,
    length: int,
    construction: str = "efficient",
    fmt: tuple[int, int] | None = None,
) -> BoostedRNN:
    """Lemma 3: the boosted LM-RNN of R by D at window k, offset r, step η for documents of `length`.
    `fmt`: fixed-point format of the new nodes (copies keep R's and D's node formats)."""
    if construction not in CONSTRUCTIONS:
        raise InputError(f"construction must be one of {sorted(CONSTRUCTIONS)}, got {construction!r}")
    if R.vocab_size != D.vocab_size:
        raise InputError(f"R reads {R.vocab_size} tokens but D reads {D.vocab_size}")
    if not math.isfinite(eta):
        raise InputError(f"eta must be finite (Lemma 18.5's e^η is a weight), got {eta}")
    if D.meta.get("k", k) != k:
        raise InputError(f"D judges windows of k={D.meta['k']} tokens, but k={k} was asked")
    if R.meta.get("role") == "distinguisher" or D.meta.get("role") == "lm":
        raise InputError("boost_rnn(R, D, …) takes the LM-RNN first and the distinguisher RNN second")
    lay = check_layout(R.vocab_size, k, offset, length, R.tau, D.tau)
    mode = CONSTRUCTIONS[construction]
    g = Graph(f"boost[{construction}]({R.name}, {D.name})", R.vocab_size, lay.tau)
    fr = Frame(g, lay)
    rc = add_copies(g, fr, R, "R", mode, R.tau, plain=True)
    dc = add_copies(g, fr, D, "D", mode, D.tau, plain=False)
    pacc = g.add("pacc", "work", 1.0, fmt)
    e_node = g.add("E", "work", 1.0, fmt)
    i_num = g.add("I_num", "work", 0.0, fmt)
    i_den = g.add("I_den", "work", 0.0, fmt)
    num = g.add("N", "work", 0.0, fmt)
    den = g.add("Z", "work", 0.0, fmt)
    out = g.add("o", "work", 0.0, fmt)
    cd, ci = fr.c_delta, fr.c_slot
    end = G.eq(cd, lay.tau_c - 1)
    # Lemma 7: the product of R's outputs over the digits of w_g
    multiply = G.AND(end, G.OR(G.AND(fr.seg_enum, fr.digit), G.AND(fr.seg_plain, G.eq(ci, 0))))
    g.set(pacc, gated(pacc, lin(pacc) * lin(rc.out), multiply, 1.0, fr.load_gate(plain=True)))
    # Lemmas 8 and 9 at step 0 of the bookkeeping slot, Lemma 3's sums at step 1
    book0 = G.AND(fr.seg_enum, fr.book, G.eq(cd, 0))
    book1 = G.AND(fr.seg_enum, fr.book, G.eq(cd, 1))
    g.set(e_node, gated(e_node, G.exp_bit(dc.out, eta), book0))
    match = [G.equal(u, z) for u, z in zip(fr.u, fr.z)]
    after = [G.NOT(G.ge(fr.c_depth, i)) for i in range(k)]  # 1[i > j]
    from_ = [G.NOT(G.ge(fr.c_depth, i + 1)) for i in range(k)]  # 1[i ≥ j]
    g.set(i_num, gated(i_num, G.AND(*[G.OR(m, a) for m, a in zip(match, after)]), book0))
    g.set(i_den, gated(i_den, G.AND(*[G.OR(m, a) for m, a in zip(match, from_)]), book0))
    term = lin(pacc) * lin(e_node)
    g.set(num, gated(num, num + term * lin(i_num), book1, 0.0, fr.first))
    g.set(den, gated(den, den + term * lin(i_den), book1, 0.0, fr.first))
    out_gate = G.AND(fr.seg_plain, fr.book, G.eq(cd, 0))
    ratio = lin(num) * recip(out_gate * lin(den) + (1 - out_gate))
    g.set(out, gated(out, fr.plain * lin(pacc) + fr.inblock * ratio, out_gate))
    g.output = out
    inputs = dict(s_R=R.size, h_R=len(R.hidden), tau_R=R.tau, s_D=D.size, h_D=len(D.hidden), tau_D=D.tau)
    g.meta = {"role": "lm", "layout": lay, "construction": construction, "k": k, "offset": offset, "eta": eta}
    g.check()
    return BoostedRNN(g, lay, construction, float(eta), inputs)


def boost_rounds(R: Graph, rounds: list[dict], length: int, construction: str = "efficient") -> list[BoostedRNN]:
    """Repeated boosting (Lemma 3 applied t times): rounds[i] = {"D": Graph, "k", "offset", "eta"};
    round i boosts the output of round i − 1."""
    out, cur = [], R
    for spec in rounds:
        b = boost_rnn(cur, spec["D"], spec["k"], spec["offset"], spec["eta"], length, construction)
        out.append(b)
        cur = b.graph
    return out
