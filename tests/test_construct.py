"""nextk.construct (docs/theory.md §9): graph RNNs, Appendix C gadgets, Lemmas 10–11, the boosted LM-RNN
of Lemma 3 (and §2.1's two-copy construction) against nextk.boost.Boosted, hidden-set checks, sizes and
Lemma 12's bit budget. References are independent: gadgets against plain Python on grids, compiled
LMs against the nextk sources or a NumPy recurrence written here, distinguishers against nextk's
checkers, the boosted RNN against Boosted (itself tested against brute force in test_boost.py)."""

import itertools
import math

import numpy as np
import pytest
import torch

from nextk.boost import boost
from nextk.construct import (
    Graph,
    GraphLM,
    GraphRuntimeError,
    HiddenSetError,
    Program,
    boost_rnn,
    boost_rounds,
    check_sufficiency,
    checker_rnn,
    claim9_int_bits,
    claim10_bound,
    claim10_lambda,
    gated_copy,
    hmm_rnn,
    lemma3_formula,
    lemma12_bits,
    rational_rnn,
    run,
    synchronized_enumeration,
    table_rnn,
    verify_hidden_set,
    window_indicator,
)
from nextk.construct import gadgets as G
from nextk.construct.bits import measured_int_bits
from nextk.construct.expr import Node, evaluate, lin, recip, relu
from nextk.errors import InputError, TooLargeError
from nextk.measure import all_strings
from nextk.quantize import fixed_point
from nextk.sources import HMM, Dyck, Parity

# ---- helpers ---------------------------------------------------------------------------------------


def through_graph(expr_of, values: dict[str, np.ndarray], fixed=None) -> np.ndarray:
    """Evaluate a gadget as the transition of a work node after one internal step of a compiled graph
    whose hidden nodes hold `values` (one batch column per grid point)."""
    g = Graph("probe", 2, 1)
    nodes = {name: g.add(name, "hidden") for name in values}
    for nd in nodes.values():
        g.set(nd, nd)
    out = g.add("out", "work")
    g.set(out, expr_of(**nodes))
    g.output = out
    batch = len(next(iter(values.values())))
    start = np.zeros((g.size, batch))
    for i, nd in enumerate(g.nodes):
        if nd.name in values:
            start[i] = values[nd.name]
    return run(g, np.zeros((batch, 1), dtype=int), start=start, fixed=fixed).outputs[:, 0]


def both_paths(expr_of, values, fixed=None):
    """The gadget by the direct recursive evaluator and by the compiled executor (must agree)."""
    free = {name: Node(name, "hidden") for name in values}
    direct = evaluate(lin(expr_of(**free)), {free[k].uid: np.asarray(v, float) for k, v in values.items()})
    compiled = through_graph(expr_of, values, fixed)
    np.testing.assert_allclose(np.broadcast_to(direct, compiled.shape), compiled, atol=1e-12)
    return compiled


def gathered(lp: torch.Tensor, x: torch.Tensor) -> np.ndarray:
    return lp.exp().gather(-1, x[..., None]).squeeze(-1).numpy()


def rational_reference(params: dict, x: np.ndarray) -> np.ndarray:
    """q(x_t | x_<t) of rational_rnn, written out as a plain NumPy recurrence."""
    out = np.zeros(x.shape)
    for b, row in enumerate(x):
        h = params["h0"].copy()
        for t, tok in enumerate(row):
            s = np.maximum(params["C"] @ h + params["c"], 0) + 0.1
            out[b, t] = s[tok] / s.sum()
            m = np.maximum(params["A"] @ h + params["B"][:, tok] + params["b"], 0)
            h = m / (1 + m.sum())
    return out


HMM2 = HMM.random(3, 2, 8, seed=7, stay=0.5)
HMM3 = HMM.random(2, 3, 8, seed=3, stay=0.6)

# ---- Appendix C (Lemma 18) gadgets, exhaustively on grids --------------------------------------------


@pytest.mark.parametrize("eps", [1.0, 0.125])
@pytest.mark.parametrize("c", [-2.0, 0.0, 3.0])
def test_indicators_on_the_grid(eps, c):
    grid = c + eps * np.arange(-6, 7)
    fixed = (3, 3) if eps == 0.125 and abs(c) < 3 else None  # grid points exact in fixed point too
    assert np.array_equal(both_paths(lambda a: G.ge(a, c, eps), {"a": grid}, fixed), (grid >= c).astype(float))
    assert np.array_equal(both_paths(lambda a: G.le(a, c, eps), {"a": grid}), (grid <= c).astype(float))
    assert np.array_equal(both_paths(lambda a: G.eq(a, c, eps), {"a": grid}, fixed), (grid == c).astype(float))


def test_equality_if_else_and_boolean_logic():
    xs, ys = np.meshgrid(np.arange(-3, 4.0), np.arange(-3, 4.0))
    xs, ys = xs.ravel(), ys.ravel()
    assert np.array_equal(both_paths(lambda a, b: G.equal(a, b), {"a": xs, "b": ys}), (xs == ys).astype(float))
    cond, a, b = (np.array(v, float).ravel() for v in np.meshgrid([0, 1], [-1.5, 0.25, 7], [-2, 0.5, 3]))
    assert np.allclose(
        both_paths(lambda c, a, b: G.if_else(c, a, b), {"c": cond, "a": a, "b": b}), np.where(cond == 1, a, b), atol=0
    )
    for m in range(1, 5):
        bits = np.array(list(itertools.product([0.0, 1.0], repeat=m))).T
        vals = {f"b{i}": bits[i] for i in range(m)}
        assert np.array_equal(both_paths(lambda **kw: G.AND(*kw.values()), vals), bits.min(0))
        assert np.array_equal(both_paths(lambda **kw: G.OR(*kw.values()), vals), bits.max(0))
    assert np.array_equal(both_paths(lambda a: G.NOT(a), {"a": np.array([0.0, 1.0])}), [1.0, 0.0])


@pytest.mark.parametrize("base,k", [(2, 3), (3, 2), (3, 3), (4, 2)])
def test_base_b_increment_every_digit_vector(base, k):
    digits = np.array(list(itertools.product(range(base), repeat=k)), float).T  # digits[0] most significant
    for when in (0.0, 1.0):
        vals = {f"d{i}": digits[i] for i in range(k)} | {"w": np.full(digits.shape[1], when)}
        got = np.array(
            [both_paths(lambda w, j=j, **d: G.increment(list(d.values()), base, w)[j], vals) for j in range(k)]
        )
        number = sum(digits[i] * base ** (k - 1 - i) for i in range(k))
        nxt = (number + when) % base**k
        want = np.array([(nxt // base ** (k - 1 - i)) % base for i in range(k)])
        assert np.array_equal(got, want)


def test_exp_of_a_bit_counters_mux_and_ranges():
    for eta in (-2.0, -0.5, 0.0, 0.7, 3.0):
        got = both_paths(lambda d, eta=eta: G.exp_bit(d, eta), {"d": np.array([0.0, 1.0])})
        assert np.allclose(got, [1.0, math.exp(eta)], rtol=1e-15)
    for m in (1, 2, 5):
        c, inc = (v.ravel() for v in np.meshgrid(np.arange(m, dtype=float), [0.0, 1.0]))
        got = both_paths(lambda c, i, m=m: G.counter_next(c, m, i), {"c": c, "i": inc})
        assert np.array_equal(got, (c + inc) % m)
        got = both_paths(lambda c, i, m=m: G.capped_next(c, m - 1, i), {"c": c, "i": inc})
        assert np.array_equal(got, np.minimum(c + inc, m - 1))
    sel = np.arange(4.0)
    vals = {"s": sel} | {f"v{i}": np.full(4, 10.0 * i + 0.5) for i in range(4)}
    assert np.array_equal(both_paths(lambda s, **v: G.mux(s, list(v.values())), vals), 10 * sel + 0.5)
    x = np.arange(-2.0, 8.0)
    assert np.array_equal(both_paths(lambda a: G.in_range(a, 1, 4), {"a": x}), ((x >= 1) & (x <= 4)).astype(float))


def test_executor_matches_direct_evaluation_on_random_graphs():
    """The compiled, levelled executor against step-by-step direct evaluation, float and fixed point."""
    rng = np.random.default_rng(0)
    for trial in range(5):
        g = Graph(f"random{trial}", 3, 2)
        nodes = [g.add(f"h{i}", "hidden", rng.uniform(0, 1)) for i in range(3)]
        nodes += [g.add(f"w{i}", "work", rng.uniform(0, 1)) for i in range(3)]
        for i, nd in enumerate(nodes):
            pool = nodes[:3] if nd.kind == "hidden" else nodes
            a, b = (lin(pool[j]) * rng.uniform(-1, 1) for j in rng.integers(0, len(pool), 2))
            tok = G.eq(g.input, i % 3)
            g.set(nd, relu(a + tok) * 0.5 + (a * b) * 0.3 + recip(1 + relu(b)) * 0.2)
        g.output = nodes[-1]
        x = rng.integers(0, 3, (4, 3))
        for fixed in (None, (2, 9)):
            res = run(g, x, fixed=fixed, record=[nd.name for nd in nodes])
            vals = {nd.uid: np.full(4, nd.init) for nd in nodes}
            if fixed:
                vals = {u: fixed_point(torch.from_numpy(v), *fixed).numpy() for u, v in vals.items()}
            for t in range(3 * g.tau):
                env = vals | {g.input.uid: x[:, t // g.tau].astype(float)}
                vals = {nd.uid: evaluate(nd.expr, env) * np.ones(4) for nd in nodes}
                if fixed:
                    vals = {u: fixed_point(torch.from_numpy(v), *fixed).numpy() for u, v in vals.items()}
                for nd in nodes:
                    assert np.allclose(res.trace[nd.name][t + 1], vals[nd.uid], atol=1e-12)


# ---- the inputs: compiled LMs and distinguishers ---------------------------------------------------


def test_compiled_lms_against_independent_references():
    x2 = all_strings(2, 8)
    assert np.abs(run(hmm_rnn(HMM2), x2).outputs - gathered(HMM2.log_probs(x2), x2)).max() < 1e-12
    x3 = all_strings(3, 5)
    assert np.abs(run(hmm_rnn(HMM3), x3).outputs - gathered(HMM3.log_probs(x3), x3)).max() < 1e-12
    rat = rational_rnn(3, hidden=2, seed=1)
    want = rational_reference(rat.meta["params"], x3.numpy())
    assert np.abs(run(rat, x3).outputs - want).max() < 1e-12
    lm = GraphLM(rat, length=5)
    lp = lm.log_probs(x3[:40])
    assert np.allclose(gathered(lp, x3[:40]), want[:40], atol=1e-12)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(40, 5, dtype=torch.float64), atol=1e-12)
    for g in (hmm_rnn(HMM2), hmm_rnn(HMM3), rat):  # both hidden-set properties of the inputs
        verify_hidden_set(g, all_strings(g.vocab_size, 4))
    with pytest.raises(InputError, match="positive emission"):
        hmm_rnn(HMM([1.0, 0.0], [[0.5, 0.5], [0.5, 0.5]], [[1.0, 0.0], [0.5, 0.5]], 4))


@pytest.mark.parametrize("source,k", [(Parity(3, 7), 2), (Parity(2, 7), 3), (Dyck(1, 2, 6), 2), (Dyck(2, 2, 6), 3)])
def test_checker_rnns_equal_the_nextk_checkers(source, k):
    d_rnn = checker_rnn(source, k)
    x = all_strings(source.vocab_size, source.length)
    out = run(d_rnn, x).outputs
    for i in range(k - 1, source.length):  # output after token i judges the window ending at i
        assert np.array_equal(out[:, i], d_rnn.meta["python"](x, i - k + 1, k).numpy().astype(float))
    verify_hidden_set(d_rnn, x[::9])


def test_table_rnn_and_window_indicator():
    table = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1], dtype=torch.bool)
    d_rnn = table_rnn(table, 2, 3)
    x = all_strings(2, 6)
    out = run(d_rnn, x).outputs
    verify_hidden_set(d_rnn, x)
    for i in range(2, 6):
        idx = (4 * x[:, i - 2] + 2 * x[:, i - 1] + x[:, i]).numpy()
        assert np.array_equal(out[:, i], table.numpy()[idx].astype(float))
    ind = window_indicator((2, 0), 3)
    y = all_strings(3, 4)
    assert torch.equal(ind(y, 1, 2), (y[:, 1] == 2) & (y[:, 2] == 0))


# ---- hidden node sets: the checks, and their failures ------------------------------------------------


def test_hidden_set_check_fails_when_a_hidden_node_reads_a_work_node():
    g = Graph("bad-read", 2, 1)
    h, w = g.add("h", "hidden"), g.add("w", "work")
    g.set(w, g.input)
    g.set(h, h + w)
    g.output = w
    with pytest.raises(HiddenSetError, match="hidden node 'h' reads work node"):
        g.check()
    with pytest.raises(HiddenSetError):
        Program(g)


def test_sufficiency_check_fails_when_the_output_needs_old_work_values():
    g = Graph("stale", 2, 1)
    h, w, o = g.add("h", "hidden"), g.add("w", "work"), g.add("o", "work")
    g.set(h, h + g.input)
    g.set(w, w + g.input)  # state carried by a work node: not a valid hidden set
    g.set(o, G.if_else(G.eq(h, 0), 1.0, w))
    g.output = o
    g.check()  # property (i) holds
    x = all_strings(2, 4)
    with pytest.raises(HiddenSetError, match="depends on work-node values"):
        check_sufficiency(g, x)
    g.set(o, G.if_else(G.eq(h, 0), 1.0, h + g.input))  # from the hidden set and the input: sufficient
    check_sufficiency(g, x)


def test_sufficiency_check_catches_a_broken_boosted_rnn():
    b = boost_rnn(hmm_rnn(HMM2), checker_rnn(Parity(3, 5), 2), 2, 1, 0.8, 5)
    x = all_strings(2, 5)[::5]
    check_sufficiency(b.graph, x)
    g, num = b.graph, b.graph.find("N")
    first = G.AND(G.eq(g.find("c_seg"), 0), G.eq(g.find("c_slot"), 0), G.eq(g.find("c_delta"), 0))
    g.set(num, num.expr + first * lin(num))  # N is no longer reset: the output remembers earlier tokens
    with pytest.raises(HiddenSetError, match="depends on work-node values"):
        check_sufficiency(g, x)


# ---- Lemma 10 and Lemma 11 ----------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["LRRH", "RRLHH", "LR", "HRRRL"])
def test_lemma10_gated_load_run_hold(pattern):
    rat = rational_rnn(2, hidden=2, seed=4)
    g = gated_copy(rat, pattern)
    x = all_strings(2, 4)[::3].numpy()
    copies = [nd for nd in rat.nodes if nd.kind != "input"]
    res = run(g, x, record=[f"copy.{nd.name}" for nd in copies] + [f"orig.{nd.name}" for nd in copies])
    b = x.shape[0]
    orig = {nd.uid: np.full(b, nd.init) for nd in copies}
    copy = dict(orig)
    for t in range(4 * rat.tau):
        env_o = orig | {rat.input.uid: x[:, t // rat.tau].astype(float)}
        env_c = copy | {rat.input.uid: x[:, t // rat.tau].astype(float)}
        step = pattern[t % len(pattern)]
        nxt_orig = {nd.uid: evaluate(nd.expr, env_o) * np.ones(b) for nd in copies}
        if step == "L":
            copy = dict(orig)
        elif step == "R":
            copy = {nd.uid: evaluate(nd.expr, env_c) * np.ones(b) for nd in copies}
        orig = nxt_orig
        for nd in copies:
            assert np.allclose(res.trace[f"copy.{nd.name}"][t + 1], copy[nd.uid], atol=1e-12)
            assert np.allclose(res.trace[f"orig.{nd.name}"][t + 1], orig[nd.uid], atol=1e-12)


def r_output_reference(kind, R, x_ext: np.ndarray) -> np.ndarray:
    """R's output after every token of x_ext (its own reference: the HMM source or the NumPy recurrence)."""
    if kind == "hmm":
        t = torch.as_tensor(x_ext)
        return gathered(HMM2.log_probs(t), t)
    return rational_reference(R.meta["params"], x_ext)


@pytest.mark.parametrize("kind,n,k,r", [("hmm", 5, 2, 1), ("hmm", 5, 3, 0), ("rational", 4, 2, 0)])
def test_lemma11_synchronised_enumeration(kind, n, k, r):
    R = hmm_rnn(HMM2) if kind == "hmm" else rational_rnn(2, hidden=2, seed=2)
    g, lay = synchronized_enumeration(R, k, r, n)
    assert g.stats().size == R.size + len(R.hidden) + 2 * k + 5 and len(g.hidden) == len(R.hidden) + 2 * k + 5
    x = all_strings(2, n).numpy()
    counters = ["c_delta", "c_slot", "c_seg", "c_pos", "c_depth"]
    res = run(g, x, record=["RE." + R.output.name] + counters + [f"u{i}" for i in range(k)])
    out = res.trace["RE." + R.output.name]
    words = list(itertools.product(range(2), repeat=k))
    for t in range(n):
        s = lay.anchor(t)
        if s is None:  # plain position: R's output on x_{≤t}
            want = r_output_reference(kind, R, x[:, : t + 1])[:, t]
            assert np.allclose(out[lay.time(t, 2**k, 0, lay.tau_c - 1)], want, atol=1e-12)
            continue
        for gi, w in enumerate(words):
            ext = np.concatenate([x[:, :s], np.tile(w, (len(x), 1))], axis=1)
            ref = r_output_reference(kind, R, ext)
            for i in range(k):
                assert np.allclose(out[lay.time(t, gi, i, lay.tau_c - 1)], ref[:, s + i], atol=1e-12)
    # Claim 1's counters and Claim 3's enumerator against divmod of the time
    for time in range(0, n * lay.tau, 7):
        t, theta = divmod(time, lay.tau)
        seg, rest = divmod(theta, lay.slots * lay.tau_c)
        slot, delta = divmod(rest, lay.tau_c)
        depth = (t - r) % k if t >= r else 0
        want = [delta, slot, seg, min(t, lay.cap), depth]
        assert [res.trace[c][time][0] for c in counters] == want
        if seg < 2**k:
            assert [res.trace[f"u{i}"][time][0] for i in range(k)] == list(words[seg])
    verify_hidden_set(g, x[::4])


# ---- Lemmas 7–9 and Lemma 3: the boosted RNN equals Boosted --------------------------------------------


def test_lemmas_7_8_9_node_values_at_their_times():
    n, k, r, eta = 5, 2, 1, 0.8
    src = Parity(2, n)
    b = boost_rnn(hmm_rnn(HMM2), checker_rnn(src, k), k, r, eta, n)
    lay, x = b.layout, all_strings(2, n)
    res = run(b.graph, x, record=["pacc", "E", "I_num", "I_den", "N", "Z"])
    check = src.checks["parity"]
    for t in range(n):
        s = lay.anchor(t)
        if s is None:
            continue
        j = t - s
        num = np.zeros(len(x))
        den = np.zeros(len(x))
        for gi, w in enumerate(itertools.product(range(2), repeat=k)):
            ext = torch.cat([x[:, :s], torch.tensor(w).expand(len(x), k)], 1)
            q_w = gathered(HMM2.log_probs(ext), ext)[:, s:].prod(1)  # Lemma 7: q(w | x_<s)
            e_w = np.exp(eta * check(ext, s, k).numpy())  # Lemma 8: e^{η d}
            i_num = np.all(x[:, s : t + 1].numpy() == np.array(w[: j + 1]), axis=1)  # Lemma 9
            i_den = np.all(x[:, s:t].numpy() == np.array(w[:j]), axis=1)
            assert np.allclose(res.trace["pacc"][lay.time(t, gi, k, 0)], q_w, atol=1e-14)
            assert np.allclose(res.trace["E"][lay.time(t, gi, k, 1)], e_w, atol=1e-14)
            assert np.array_equal(res.trace["I_num"][lay.time(t, gi, k, 1)], i_num)
            assert np.array_equal(res.trace["I_den"][lay.time(t, gi, k, 1)], i_den)
            num, den = num + q_w * e_w * i_num, den + q_w * e_w * i_den
        assert np.allclose(res.trace["N"][lay.time(t, 2**k, 0, 0)], num, atol=1e-14)
        assert np.allclose(res.trace["Z"][lay.time(t, 2**k, 0, 0)], den, atol=1e-14)


CASES = [  # (lm, source of the checker, n, k, offset, eta)
    ("hmm2", Parity(3, 8), 8, 2, 0, 0.7),
    ("hmm2", Parity(3, 8), 8, 2, 1, -1.3),
    ("hmm2", Dyck(1, 2, 8), 8, 3, 2, 2.0),
    ("hmm2", Parity(2, 7), 7, 3, 0, -0.4),
    ("hmm3", "table", 5, 2, 1, 1.1),
    ("hmm3", "table", 4, 3, 0, -0.9),
    ("rational", Dyck(1, 2, 6), 6, 2, 1, 1.5),
]


def make_case(lm, source, k):
    if lm == "rational":
        R = rational_rnn(2, hidden=2, seed=5)
        q = GraphLM(R)
    else:
        q = HMM2 if lm == "hmm2" else HMM3
        R = hmm_rnn(q)
    if source == "table":
        table = torch.tensor([(i * 7 + 3) % 5 < 2 for i in range(R.vocab_size**k)])
        D = table_rnn(table, R.vocab_size, k)
    else:
        D = checker_rnn(source, k)
    return R, q, D, D.meta["python"]


@pytest.mark.parametrize("construction", ["efficient", "two_copy"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_boosted_rnn_equals_boosted(case, construction):
    lm, source, n, k, r, eta = CASES[case]
    if construction == "two_copy" and case % 2:
        pytest.skip("two-copy on every other case (the same machinery; keeps the suite fast)")
    R, q, D, d = make_case(lm, source, k)
    b = boost_rnn(R, D, k, r, eta, n, construction)
    x = all_strings(R.vocab_size, n)
    want = gathered(boost(q, d, k, offset=r, eta=eta, length=n).log_probs(x), x)
    ran = run(b.graph, x, keep_states=True)
    assert np.abs(ran.outputs - want).max() < 1e-9
    st = b.graph.stats()
    assert (st.size, st.hidden, st.tau) == tuple(b.formula[key] for key in ("size", "hidden", "tau"))
    some = np.arange(0, len(x), max(1, len(x) // 64))  # hidden-set property (ii) on ≤ 64 strings
    check_sufficiency(b.graph, x[some], states=ran.states[:, :, some])


@pytest.mark.parametrize("n,k,r,eta", [(4, 3, 2, 0.7), (5, 1, 0, 1.2), (4, 4, 0, -0.8), (6, 3, 1, 2.0)])
def test_edge_layouts_no_block_k1_k_equals_n_and_a_tail(n, k, r, eta):
    """No block at all (q' = q), k = 1, one block covering the document, positions after the last block."""
    q = HMM.random(2, 2, 6, seed=1, stay=0.5)
    d = window_indicator((1, 0, 1, 1)[:k], 2)
    b = boost_rnn(hmm_rnn(q), table_rnn(d, 2, k), k, r, eta, n)
    x = all_strings(2, n)
    ran = run(b.graph, x, keep_states=True)
    assert np.abs(ran.outputs - gathered(boost(q, d, k, offset=r, eta=eta, length=n).log_probs(x), x)).max() < 1e-9
    check_sufficiency(b.graph, x, states=ran.states)


def test_boosted_graph_as_a_language_model_gives_boosted_rows():
    R, q, D, d = make_case("hmm2", Parity(3, 6), 2)
    b = boost_rnn(R, D, 2, 1, 0.9, 6)
    x = all_strings(2, 6)[[0, 13, 37, 63]]
    got = GraphLM(b.graph, length=6).log_probs(x)
    assert torch.allclose(got, boost(q, d, 2, offset=1, eta=0.9, length=6).log_probs(x), atol=1e-9)


@pytest.mark.parametrize("construction", ["efficient", "two_copy"])
def test_two_rounds_boost_of_boost(construction):
    n = 5
    src = Parity(3, n)
    d1, d2 = checker_rnn(src, 2), table_rnn(window_indicator((1, 0), 2).table, 2, 2)
    rounds = boost_rounds(
        hmm_rnn(HMM2), [dict(D=d1, k=2, offset=1, eta=0.9), dict(D=d2, k=2, offset=0, eta=-0.6)], n, construction
    )
    ref1 = boost(HMM2, d1.meta["python"], 2, offset=1, eta=0.9, length=n)
    ref2 = boost(ref1, d2.meta["python"], 2, offset=0, eta=-0.6, length=n)
    x = all_strings(2, n)
    ran = run(rounds[-1].graph, x, keep_states=True)
    assert np.abs(ran.outputs - gathered(ref2.log_probs(x), x)).max() < 1e-9
    check_sufficiency(rounds[-1].graph, x, states=ran.states)  # on every string, from the run's states


# ---- sizes: measured vs formulas, linear vs doubling -----------------------------------------------------


def test_sizes_per_round_linear_hidden_set_vs_two_copy_doubling():
    n = 8
    R, D = hmm_rnn(HMM2), checker_rnn(Parity(3, n), 2)
    spec = [dict(D=D, k=2, offset=1, eta=0.5)] * 4
    eff, two = boost_rounds(R, spec, n, "efficient"), boost_rounds(R, spec, n, "two_copy")
    for b in eff + two:
        st = b.graph.stats()
        assert st.size <= b.formula["size"] and st.hidden <= b.formula["hidden"] and st.tau <= b.formula["tau"]
        assert (st.size, st.hidden, st.tau) == (b.formula["size"], b.formula["hidden"], b.formula["tau"])
    hidden = [len(R.hidden)] + [len(b.graph.hidden) for b in eff]
    steps = np.diff(hidden)
    assert (steps == len(D.hidden) + 2 * 2 + 5).all()  # linear: + h_D + 2k + 5 per round
    size = [R.size] + [b.graph.size for b in eff]
    assert (np.diff(size, 2) == steps[1:]).all()  # quadratic: the increments grow by the hidden step
    two_size = [R.size] + [b.graph.size for b in two]
    assert all(two_size[i + 1] >= 2 * two_size[i] for i in range(1, 4))  # doubling
    assert two_size[-1] > 2 * size[-1]
    assert lemma3_formula(construction="efficient", vocab=2, k=2, s_R=5, h_R=3, tau_R=1, s_D=8, h_D=6, tau_D=1) == {
        "size": 5 + 3 + 8 + 6 + 4 + 11,
        "hidden": 3 + 6 + 4 + 5,
        "tau": 6 * 3 * 3,
    }


# ---- Lemma 12: fixed point with the re-derived bit budget ----------------------------------------------


def test_fixed_point_error_within_claim10_bound_and_lemma12_budget():
    n, k, r, eta = 6, 2, 1, 1.5
    R = hmm_rnn(HMM2, fmt=(1, 10))  # q is this RNN in its own 11-bit format
    D = checker_rnn(Parity(3, n), k)
    x = all_strings(2, n)
    q_fixed = GraphLM(R, fixed=True, length=n)
    rho = q_fixed.log_probs(x).exp().min().item()
    want = gathered(boost(q_fixed, D.meta["python"], k, offset=r, eta=eta, length=n).log_probs(x), x)
    b = boost_rnn(R, D, k, r, eta, n)
    ib = claim9_int_bits(2, k, b.layout.tau_c, n, eta)
    for fb in (12, 16, 24):
        res = run(b.graph, x, fixed=(ib, fb), track_max=True)
        err = np.abs(res.outputs - want)
        assert err.max() <= claim10_bound(fb, k, eta, rho)
        lam = claim10_lambda(fb, k, eta, rho)
        assert (err <= want * lam / (1 - lam) + 2.0**-fb).all()  # the relative form, position by position
        assert measured_int_bits(res.max_abs) <= ib
        assert b.graph.bit_size((ib, fb)) == 1 + ib + fb  # q's copies (1 + 1 + 10 bits) are narrower
    budget = lemma12_bits(2, k, eta, rho, 1e-3, tau_c=b.layout.tau_c, length=n, min_frac=10)
    res = run(b.graph, x, fixed=(budget["int_bits"], budget["frac_bits"]))
    assert np.abs(res.outputs / want - 1).max() <= 1e-3
    assert np.abs(res.outputs - want).max() <= budget["bound"]


# ---- bad input -----------------------------------------------------------------------------------------


def test_bad_input_is_refused_early():
    R, D = hmm_rnn(HMM2), checker_rnn(Parity(3, 8), 2)
    with pytest.raises(TooLargeError, match="2\\^25"):
        boost_rnn(R, checker_rnn(Parity(3, 30), 25), 25, 0, 1.0, 30)
    with pytest.raises(InputError, match="offset"):
        boost_rnn(R, D, 2, 2, 1.0, 8)
    with pytest.raises(InputError, match="k ≤ length"):
        boost_rnn(R, checker_rnn(Parity(3, 8), 9), 9, 0, 1.0, 8)
    with pytest.raises(InputError, match="reads"):
        boost_rnn(hmm_rnn(HMM3), D, 2, 0, 1.0, 8)
    with pytest.raises(InputError, match="judges windows of k=2"):
        boost_rnn(R, D, 3, 0, 1.0, 8)
    with pytest.raises(InputError, match="LM-RNN first"):
        boost_rnn(D, R, 2, 0, 1.0, 8)
    with pytest.raises(InputError, match="finite"):
        boost_rnn(R, D, 2, 0, math.inf, 8)
    with pytest.raises(InputError, match="construction"):
        boost_rnn(R, D, 2, 0, 1.0, 8, "three_copy")
    with pytest.raises(InputError, match="token ids"):
        run(R, [[0, 2]])
    with pytest.raises(TooLargeError):
        table_rnn(torch.zeros(2**22, dtype=torch.bool), 2, 22)
    g = Graph("no-output", 2, 1)
    with pytest.raises(InputError, match="no output"):
        g.check()
    g = Graph("div0", 2, 1)
    h = g.add("h", "hidden")
    g.set(h, recip(h))
    g.output = h
    with pytest.raises(GraphRuntimeError, match="'h' became inf"):
        run(g, [[0, 1]])


# ---- the run layer -------------------------------------------------------------------------------------


def test_construct_run_writes_results_and_plots(tmp_path):
    from nextk.runs.common import read_json
    from nextk.runs.construct import Config, draw, table
    from nextk.runs.construct import run as run_construct

    cfg = Config(source_params={"block": 2, "length": 5}, rounds=2, execute_rounds=1, frac_bits=[12, 20], num_docs=64)
    res = run_construct(cfg, tmp_path)
    assert read_json(tmp_path / "results.json") == res and (tmp_path / "config.json").is_file()
    first, second = res["rounds"]
    for c in ("efficient", "two_copy"):
        assert first[c]["measured"]["size"] == first[c]["formula"]["size"]
        assert first[c]["max_abs_error_vs_boosted"] < 1e-9
        assert first[c]["measured_int_bits"] <= first[c]["graph_int_bits"]  # Claim 9 holds on the run
        assert "max_abs_error_vs_boosted" not in second[c]  # counted, not run
        assert second[c]["graph_bit_size"] >= first[c]["graph_bit_size"]
    assert second["two_copy"]["measured"]["size"] > second["efficient"]["measured"]["size"]
    for row in res["fixed_point"]["sweep"]:
        assert row["max_abs_error"] <= row["bound"]
    assert table(res).row_count == 3
    assert [p.name for p in draw(res, tmp_path)] == ["sizes.png", "bits.png"]


@pytest.mark.slow
def test_three_rounds_executed():
    """Lemma 3 applied three times (T = 18180 steps per token) still equals Boosted³ on every string."""
    n = 4
    d1, d2 = checker_rnn(Parity(2, n), 2), window_indicator((1, 1), 2)
    d3 = window_indicator((0, 1), 2)
    spec = [
        dict(D=d1, k=2, offset=0, eta=0.9),
        dict(D=table_rnn(d2, 2, 2), k=2, offset=1, eta=-0.7),
        dict(D=table_rnn(d3, 2, 2), k=2, offset=0, eta=0.4),
    ]
    b3 = boost_rounds(hmm_rnn(HMM2), spec, n)[-1]
    ref = HMM2
    for s, d in zip(spec, (d1.meta["python"], d2, d3)):
        ref = boost(ref, d, 2, offset=s["offset"], eta=s["eta"], length=n)
    x = all_strings(2, n)
    assert np.abs(run(b3.graph, x).outputs - gathered(ref.log_probs(x), x)).max() < 1e-9
