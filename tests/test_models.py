"""Every model satisfies the LanguageModel interface; step equals log_probs; contracts hold; GRU, LSTM and
n-gram conditionals equal references written here (NumPy cell equations, a plain-Python count table)."""

import math
from collections import defaultdict

import numpy as np
import pytest
import torch

from nextk import LanguageModel
from nextk.checkpoint import load_model, save_model
from nextk.errors import CheckpointError
from nextk.lm import log_probs_by_steps
from nextk.models import GRU, LSTM, NGram, PaperRNN, Transformer

V, T = 5, 9
X = torch.randint(0, V, (4, T), generator=torch.Generator().manual_seed(0))
MODELS = {
    "gru": lambda: GRU(V, 8, layers=2),
    "lstm": lambda: LSTM(V, 8),
    "paper_rnn": lambda: PaperRNN(V, size=14, hidden=5, steps_per_token=2),
    "transformer": lambda: Transformer(V, d_model=16, layers=2, heads=2, max_len=T),
    "ngram": lambda: NGram(3, V).fit(X),
}


@pytest.fixture(params=sorted(MODELS))
def model(request):
    return MODELS[request.param]()


def test_interface_and_normalisation(model):
    assert isinstance(model, LanguageModel)
    lp = model.log_probs(X)
    assert lp.shape == (4, T, V) and lp.dtype == torch.float64
    assert torch.allclose(lp.exp().sum(-1), torch.ones(4, T, dtype=torch.float64), atol=1e-12)
    # identity check (log_prob is defined as this chain-rule sum): not a reference
    assert torch.allclose(model.log_prob(X), lp.gather(-1, X[..., None]).squeeze(-1).sum(1))


def test_step_equals_log_probs(model):
    assert torch.allclose(model.log_probs(X), log_probs_by_steps(model, X), atol=1e-5)


def test_state_index_and_repeat(model):
    s = model.start(4)
    s, _ = model.step(s, X[:, 0])
    r = s[torch.tensor([2])].repeat(3)
    r, lp = model.step(r, X[2, 1].repeat(3))
    full, lp_full = model.step(s, X[:, 1])
    assert torch.allclose(lp, lp_full[2:3].expand(3, -1), atol=1e-6)


def test_sampling_is_seeded(model):
    a = model.sample(6, T, generator=torch.Generator().manual_seed(1))
    b = model.sample(6, T, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (6, T)
    c = model.sample(3, T, prefix=torch.tensor([1, 2, 3]), generator=0)
    assert (c[:, :3] == torch.tensor([1, 2, 3])).all()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_construction_is_seeded_and_leaves_global_rng_alone(name):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = MODELS[name]()
    assert torch.equal(torch.rand(1), before)  # the global generator did not move
    torch.manual_seed(7)  # a different global state: the same parameters
    second = MODELS[name]()
    a, b = first.state_dict(), second.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---- references written from the equations -----------------------------------------------------------


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def numpy_recurrent_log_probs(model, cell: str, x: np.ndarray) -> np.ndarray:
    """log q(v | x_<t) (B, T, V) in float64 NumPy from the weights: the embedding of [BOS, x_0, …, x_{T−2}]
    (BOS = token V), then per layer and step (PyTorch gate order r, z, n for the GRU; i, f, g, o for the LSTM)
      GRU:  r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(W_iz x + b_iz + W_hz h + b_hz),
            n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),  h ← (1 − z) ⊙ n + z ⊙ h
      LSTM: i, f, g, o = σ, σ, tanh, σ of (W_i· x + b_i· + W_h· h + b_h·),  c ← f ⊙ c + i ⊙ g,  h ← o ⊙ tanh(c)
    then the linear head and a log-softmax."""
    w = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    v, hidden = w["head.weight"].shape
    layers = sum(1 for k in w if k.startswith("rnn.weight_ih_l"))
    assert w["rnn.weight_ih_l0"].shape == ({"gru": 3, "lstm": 4}[cell] * hidden, hidden)
    b, t = x.shape
    inputs = np.concatenate([np.full((b, 1), v), x[:, :-1]], axis=1)
    seq = w["embed.weight"][inputs]  # (B, T, H)
    for layer in range(layers):
        w_ih, w_hh = w[f"rnn.weight_ih_l{layer}"], w[f"rnn.weight_hh_l{layer}"]
        b_ih, b_hh = w[f"rnn.bias_ih_l{layer}"], w[f"rnn.bias_hh_l{layer}"]
        h, c = np.zeros((b, hidden)), np.zeros((b, hidden))
        out = np.zeros((b, t, hidden))
        for s in range(t):
            gi, gh = seq[:, s] @ w_ih.T + b_ih, h @ w_hh.T + b_hh
            if cell == "gru":
                r = sigmoid(gi[:, :hidden] + gh[:, :hidden])
                z = sigmoid(gi[:, hidden : 2 * hidden] + gh[:, hidden : 2 * hidden])
                n = np.tanh(gi[:, 2 * hidden :] + r * gh[:, 2 * hidden :])
                h = (1 - z) * n + z * h
            else:
                g4 = gi + gh
                i, f = sigmoid(g4[:, :hidden]), sigmoid(g4[:, hidden : 2 * hidden])
                g, o = np.tanh(g4[:, 2 * hidden : 3 * hidden]), sigmoid(g4[:, 3 * hidden :])
                c = f * c + i * g
                h = o * np.tanh(c)
            out[:, s] = h
        seq = out
    return log_softmax(seq @ w["head.weight"].T + w["head.bias"])


@pytest.mark.parametrize(
    "cell,make",
    [
        ("gru", lambda: GRU(V, 8, layers=2)),
        ("gru", lambda: GRU(V, 5, seed=4)),
        ("lstm", lambda: LSTM(V, 8)),
        ("lstm", lambda: LSTM(V, 6, layers=2, seed=2)),
    ],
)
def test_recurrent_models_equal_numpy_equations(cell, make):
    model = make()
    x = torch.randint(0, V, (6, T), generator=torch.Generator().manual_seed(1))
    want = numpy_recurrent_log_probs(model, cell, x.numpy())
    assert np.abs(model.log_probs(x).detach().numpy() - want).max() < 1e-5
    assert (
        np.abs(
            model.log_prob(x).detach().numpy() - np.take_along_axis(want, x.numpy()[..., None], -1).sum((1, 2))
        ).max()
        < 1e-4
    )


@pytest.mark.parametrize("order,smoothing", [(3, 0.5), (1, 0.5), (2, 2.0)])
def test_ngram_equals_plain_count_table(order, smoothing):
    """q(v | ctx) = (count(ctx, v) + λ) / (count(ctx) + λV), ctx the previous order − 1 tokens, positions
    before the document read as a marker; counts kept in a dict. Scored on training and unseen strings."""
    model = NGram(order, V, smoothing=smoothing).fit(X)
    counts = defaultdict(lambda: [0] * V)
    for row in X.tolist():
        padded = [None] * (order - 1) + row
        for t, tok in enumerate(row):
            counts[tuple(padded[t : t + order - 1])][tok] += 1
    y = torch.cat([X, torch.randint(0, V, (6, T), generator=torch.Generator().manual_seed(2))])
    got = model.log_probs(y)
    for b, row in enumerate(y.tolist()):
        padded = [None] * (order - 1) + row
        for t in range(T):
            c = counts[tuple(padded[t : t + order - 1])]
            want = [math.log((c[v] + smoothing) / (sum(c) + smoothing * V)) for v in range(V)]
            assert max(abs(g - w) for g, w in zip(got[b, t].tolist(), want)) < 1e-12, (row, t)


def test_paper_rnn_hidden_node_contract():
    m = PaperRNN(V, size=20, hidden=6, steps_per_token=3)
    s = m.start(2)
    assert set(s.tensors) == {"log_probs", "h"} and s.tensors["h"].shape == (2, 6)
    # the state between tokens is only H: same H, same future, whatever produced it
    s1, _ = m.step(s, torch.tensor([1, 2]))
    s2 = type(s1)({"h": s1.tensors["h"].clone(), "log_probs": torch.zeros_like(s1.log_probs)})
    assert torch.allclose(m.step(s1, torch.tensor([0, 0]))[1], m.step(s2, torch.tensor([0, 0]))[1])
    # universal graph: Θ(size²) parameters; every node reads H, W and the input
    assert m.work_in.in_features == 20 + V + 1 and m.num_parameters > 20**2


def test_checkpoint_roundtrip_and_errors(tmp_path, model):
    path = save_model(model, tmp_path / "m.safetensors")
    again = load_model(path, vocab_size=V)
    assert torch.allclose(again.log_probs(X), model.log_probs(X))
    with pytest.raises(CheckpointError, match="vocabulary size"):
        load_model(path, vocab_size=V + 1)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "missing.safetensors")


def test_public_names():
    import nextk

    for name in (
        "train",
        "advantage",
        "tv_advantage",
        "boost",
        "distill",
        "search",
        "fixed_point",
        "quantize",
        "bits_sweep",
    ):
        assert callable(getattr(nextk, name)), name
    assert nextk.bounds.theorem3(0.0, 1, 4) == 0.0
    from nextk.search import run_schedule  # the module stays importable beside the function

    assert callable(run_schedule)


# ---- quantised evaluation in float64 (Definition 4) -----------------------------------------------------


def q_fixed(x, i: int, f: int):
    """Signed fixed point written with NumPy in x's own dtype: round toward zero to a multiple of 2^−f, saturate
    at ±(2^i − 2^−f)."""
    top = x.dtype.type(2.0**i - 2.0**-f)
    return np.sign(x) * np.minimum(np.floor(np.abs(x) * x.dtype.type(2.0**f)) / x.dtype.type(2.0**f), top)


def numpy_quantized_log_probs(model, kind: str, x: np.ndarray, i: int, f: int, dtype) -> np.ndarray:
    """log q(v | x_<t) (B, T, V) of the quantised model, every node value in `dtype` NumPy, from the weights:
    the cell equations of `numpy_recurrent_log_probs` (GRU, LSTM) or the PaperRNN's (u = [H, onehot],
    z = [H, W, onehot]; g = clip(A_g u + ½, 0, 1) = ReLU(·) − ReLU(· − 1), c = clip(A_c u + (A_a u)(A_b u), −1, 1)
    = ReLU(· + 1) − ReLU(· − 1) − 1; H ← gH + (1 − g)c; W ← [ReLU(A_r z), (A_p z)(A_q z)], W reset at each token,
    τ synchronous steps), each gate and state (H and W) replaced by its fixed point value after it is computed;
    read-out, softmax, probabilities floored at 1e-6 and renormalised."""
    w = {k: v.detach().double().numpy().astype(dtype) for k, v in model.state_dict().items()}
    b, t = x.shape
    inputs = np.concatenate([np.full((b, 1), model.vocab_size), x[:, :-1]], axis=1)
    q = lambda a: q_fixed(a, i, f)  # noqa: E731
    relu = lambda a: np.maximum(a, dtype(0))  # noqa: E731
    sig = lambda a: dtype(1) / (dtype(1) + np.exp(-a))  # noqa: E731
    if kind == "paper_rnn":
        hidden, steps, vocab = model.hidden, model.steps, model.vocab_size
        n_relu, n_prod = model.n_relu, model.n_prod
        h, outs = np.zeros((b, hidden), dtype), []
        for s in range(t):
            inp = np.eye(vocab + 1, dtype=dtype)[inputs[:, s]]
            wk = np.zeros((b, n_relu + n_prod), dtype)
            for _ in range(steps):
                gate = np.concatenate([h, inp], 1) @ w["gate_in.weight"].T + w["gate_in.bias"]
                g, c, a, bb = np.split(gate, 4, axis=1)
                g = relu(g + dtype(0.5)) - relu(g + dtype(0.5) - dtype(1))
                cc = c + a * bb
                cc = relu(cc + dtype(1)) - relu(cc - dtype(1)) - dtype(1)
                work = np.concatenate([h, wk, inp], 1) @ w["work_in.weight"].T + w["work_in.bias"]
                r, p, qq = work[:, :n_relu], work[:, n_relu : n_relu + n_prod], work[:, n_relu + n_prod :]
                h, wk = q(g * h + (dtype(1) - g) * cc), q(np.concatenate([relu(r), p * qq], 1))
            outs.append(np.concatenate([h, wk], 1) @ w["readout.weight"].T + w["readout.bias"])
        logits = np.stack(outs, 1)
    else:
        hidden = model.hidden
        seq = w["embed.weight"][inputs]  # (B, T, H)
        for layer in range(model.layers):
            w_ih, w_hh = w[f"rnn.weight_ih_l{layer}"], w[f"rnn.weight_hh_l{layer}"]
            b_ih, b_hh = w[f"rnn.bias_ih_l{layer}"], w[f"rnn.bias_hh_l{layer}"]
            h, c = np.zeros((b, hidden), dtype), np.zeros((b, hidden), dtype)
            out = np.zeros((b, t, hidden), dtype)
            for s in range(t):
                gi, gh = seq[:, s] @ w_ih.T + b_ih, h @ w_hh.T + b_hh
                if kind == "gru":
                    r = q(sig(gi[:, :hidden] + gh[:, :hidden]))
                    z = q(sig(gi[:, hidden : 2 * hidden] + gh[:, hidden : 2 * hidden]))
                    n = q(np.tanh(gi[:, 2 * hidden :] + r * gh[:, 2 * hidden :]))
                    h = q((dtype(1) - z) * n + z * h)
                else:
                    g4 = gi + gh
                    ig, fg = q(sig(g4[:, :hidden])), q(sig(g4[:, hidden : 2 * hidden]))
                    gg, og = q(np.tanh(g4[:, 2 * hidden : 3 * hidden])), q(sig(g4[:, 3 * hidden :]))
                    c = q(fg * c + ig * gg)
                    h = q(og * np.tanh(c))
                out[:, s] = h
            seq = out
        logits = seq @ w["head.weight"].T + w["head.bias"]
    z = logits.astype(np.float64) - logits.max(-1, keepdims=True)
    p = np.maximum(np.exp(z) / np.exp(z).sum(-1, keepdims=True), 1e-6)
    return np.log(p / p.sum(-1, keepdims=True))


@pytest.mark.parametrize(
    "kind,make",
    [
        ("gru", lambda: GRU(V, 8, layers=2, seed=3)),
        ("lstm", lambda: LSTM(V, 6, seed=2)),
        ("paper_rnn", lambda: PaperRNN(V, size=14, hidden=5, steps_per_token=2, seed=1)),
    ],
)
@pytest.mark.parametrize("bits", [(3, 27), (20, 30), (2, 6)])
def test_quantized_models_compute_in_float64_fixed_point(kind, make, bits):
    """A quantised model equals fixed-point arithmetic in float64 written here in NumPy (to 1e-12, teacher forced
    and stepped). At I + F ≥ 30 the same arithmetic in float32 differs from it by far more (float32 holds 24
    significant bits), so a float32 run could not pass."""
    from nextk.quantize import quantize

    model = make()
    qm = quantize(model, *bits)
    x = torch.randint(0, V, (6, T), generator=torch.Generator().manual_seed(5))
    want = numpy_quantized_log_probs(model, kind, x.numpy(), *bits, np.float64)
    got = qm.log_probs(x).detach().numpy()
    assert np.abs(got - want).max() < 1e-12
    assert np.abs(log_probs_by_steps(qm, x).numpy() - want).max() < 1e-12
    if sum(bits) >= 30:
        f32 = numpy_quantized_log_probs(model, kind, x.numpy(), *bits, np.float32)
        assert np.abs(f32 - want).max() > 1e-9  # the test can tell float32 from float64
