"""Language models compiled into graph RNNs (docs/theory.md §9.5): the inputs of the construction.

- `hmm_rnn`: an HMM's forward recursion. Hidden set = the S filtering probabilities
  α_t(z) = P(z_t = z | x_{<t}); τ = 1. With e_z(x) = Σ_v emit[z, v]·1[x = v] (indicators, Lemma 18),

      α_{t+1}(z) = (Σ_{z'} trans[z', z]·α_t(z')·e_{z'}(x_t)) · 1/(Σ_{z'} α_t(z')·e_{z'}(x_t)),
      output q(x_t | x_{<t}) = Σ_z α_t(z)·e_z(x_t)

  (affine maps, S + 1 products and one reciprocal per hidden node). Emissions must be positive so the
  reciprocal's denominator never vanishes (and Lemma 12's lower bound ρ exists).
- `rational_rnn`: a small hand-built graph LM with τ = 2 and real work nodes (the shape of the
  paper's RNNs: a hidden state updated through a hidden scratch layer, scores on work nodes, and a
  probability computed at the output node by a reciprocal instead of a softmax).

PaperRNN is not compiled: its softmax read-out needs exp over unbounded logits, which is not one of
the paper's elementary functions (ReLU, product, reciprocal); see §9.5.
"""

from __future__ import annotations

import numpy as np

from nextk.construct import gadgets as G
from nextk.construct.expr import lin, recip, relu
from nextk.construct.graph import Graph
from nextk.errors import InputError

SCORE_FLOOR = 0.1  # rational_rnn's scores are ReLU(·) + SCORE_FLOOR > 0, so every probability is positive


def hmm_rnn(hmm, fmt: tuple[int, int] | None = None) -> Graph:
    """The forward recursion of `hmm` (a nextk.sources.HMM) as a graph LM-RNN (τ = 1, h = S, s = S + 2).
    `fmt`: the fixed-point format of every node (the LM's own bit size, Definition 4)."""
    start, trans, emit = (np.asarray(m, dtype=np.float64) for m in (hmm.start_p, hmm.trans, hmm.emit))
    if (emit <= 0).any():
        raise InputError("hmm_rnn needs positive emission probabilities (a nonzero reciprocal, Lemma 12's ρ > 0)")
    s, v = emit.shape
    g = Graph(f"hmm{s}x{v}", v, tau=1)
    alpha = [g.add(f"a{z}", "hidden", start[z], fmt) for z in range(s)]
    out = g.add("q", "work", 0.0, fmt)
    ind = [G.eq(g.input, t) for t in range(v)]
    e = [sum((float(emit[z, t]) * ind[t] for t in range(v)), lin(0.0)) for z in range(s)]
    joint = [lin(alpha[z]) * e[z] for z in range(s)]
    total = sum(joint, lin(0.0))
    inv = recip(total)
    for z in range(s):
        g.set(alpha[z], sum((float(trans[y, z]) * joint[y] for y in range(s)), lin(0.0)) * inv)
    g.set(out, total)
    g.output = out
    g.meta = {"role": "lm", "source": "hmm"}
    g.check()
    return g


def rational_params(vocab_size: int, hidden: int, seed: int) -> dict[str, np.ndarray]:
    """Random weights of `rational_rnn` (a seeded NumPy generator; no global state)."""
    rng = np.random.default_rng(seed)
    return {
        "A": rng.uniform(-1, 1, (hidden, hidden)),
        "B": rng.uniform(-1, 1, (hidden, vocab_size)),
        "b": rng.uniform(0, 0.5, hidden),
        "C": rng.uniform(-1, 1, (vocab_size, hidden)),
        "c": rng.uniform(0, 1, vocab_size),
        "h0": np.full(hidden, 0.5),
    }


def rational_rnn(vocab_size: int = 2, hidden: int = 2, seed: int = 0, fmt: tuple[int, int] | None = None) -> Graph:
    """A hand-built graph LM with τ = 2. Hidden set: a phase counter, the state h (H nodes) and a
    scratch layer m (H nodes); work nodes: V scores and the output. Per token x_t, from h = h_t:

        step 1 (phase 0):  m ← ReLU(A h + B[:, x_t] + b),   s_v ← ReLU(C h + c)_v + 0.1
        step 2 (phase 1):  h ← m / (1 + Σ m),                q ← s_{x_t} / Σ_v s_v

    so q(v | x_{<t}) = s_v(h_t) / Σ_u s_u(h_t) and the output at (t + 1)·2 depends on h_t and x_t only.
    Weights in g.meta["params"] (for an independent reference)."""
    if vocab_size < 2 or hidden < 1:
        raise InputError(f"need vocab_size ≥ 2 and hidden ≥ 1, got {vocab_size}, {hidden}")
    p = rational_params(vocab_size, hidden, seed)
    g = Graph(f"rational{hidden}x{vocab_size}", vocab_size, tau=2)
    phase = g.add("phase", "hidden", 0.0, fmt)
    h = [g.add(f"h{i}", "hidden", p["h0"][i], fmt) for i in range(hidden)]
    m = [g.add(f"m{i}", "hidden", 0.0, fmt) for i in range(hidden)]
    score = [g.add(f"s{v}", "work", 1.0, fmt) for v in range(vocab_size)]
    out = g.add("q", "work", 0.0, fmt)
    ph0, ph1 = G.eq(phase, 0), G.eq(phase, 1)
    ind = [G.eq(g.input, v) for v in range(vocab_size)]
    g.set(phase, G.counter_next(phase, 2))
    msum = sum((lin(n) for n in m), lin(0.0))
    for i in range(hidden):
        pre = sum((p["A"][i, j] * lin(h[j]) for j in range(hidden)), lin(p["b"][i]))
        pre = pre + sum((p["B"][i, v] * ind[v] for v in range(vocab_size)), lin(0.0))
        g.set(m[i], G.if_else(ph0, relu(pre), m[i]))
        g.set(h[i], G.if_else(ph1, lin(m[i]) * recip(1 + msum), h[i]))
    for v in range(vocab_size):
        sc = relu(sum((p["C"][v, j] * lin(h[j]) for j in range(hidden)), lin(p["c"][v]))) + SCORE_FLOOR
        g.set(score[v], G.if_else(ph0, sc, score[v]))
    picked = sum((ind[v] * lin(score[v]) for v in range(vocab_size)), lin(0.0))
    total = sum((lin(sv) for sv in score), lin(0.0))
    g.set(out, G.if_else(ph1, picked * recip(total), out))
    g.output = out
    g.meta = {"role": "lm", "source": "rational", "params": p}
    g.check()
    return g
