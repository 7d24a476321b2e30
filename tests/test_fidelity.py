"""Fidelity to THEORY.md §4–7: the paper's RNN keeps hidden nodes off the work nodes (Definition 3 (i));
Lemma 1 and δ never report zero for k > (n+1)/2; factorization documents sorted or in drawn order."""

import pytest
import torch

from nextk.lm import log_probs_by_steps
from nextk.models import PaperRNN

V = 4
X = torch.randint(0, V, (3, 6), generator=torch.Generator().manual_seed(1))


def hidden_run(m: PaperRNN, x: torch.Tensor, node=None) -> torch.Tensor:
    """H after BOS and each token of x, (B, T+1, hidden), through the node-level path quantize uses."""
    carry, hs = m.node_init(x.shape[0]), []
    for tok in [torch.full_like(x[:, 0], V), *x.T]:
        carry, _ = m.node_step(carry, tok, node or (lambda v: v))
        hs.append(carry["h"])
    return torch.stack(hs, dim=1)


@pytest.mark.parametrize("steps", [1, 3])
def test_paper_rnn_hidden_nodes_never_read_work_nodes(monkeypatch, steps):
    m = PaperRNN(V, size=14, hidden=4, steps_per_token=steps, seed=2)
    h0, lp0 = hidden_run(m, X), m.log_probs(X)
    # noise on every work node value at every internal step: H is unchanged, the output is not
    work = m._work
    gen = torch.Generator().manual_seed(0)
    monkeypatch.setattr(m, "_work", lambda h, w, inp: work(h, w, inp) + torch.randn(w.shape, generator=gen))
    assert torch.equal(hidden_run(m, X), h0)
    assert (m.log_probs(X) - lp0).abs().max() > 1e-3
    monkeypatch.undo()
    # other work-node weights: same H, different output
    with torch.no_grad():
        m.work_in.weight.add_(torch.randn(m.work_in.weight.shape, generator=gen))
    assert torch.equal(hidden_run(m, X), h0)
    assert (m.log_probs(X) - lp0).abs().max() > 1e-3
    # no gradient path from H to the work nodes or the read-out
    hidden_run(m, X).sum().backward()
    assert m.work_in.weight.grad is None and m.readout.weight.grad is None
    assert m.gate_in.weight.grad.abs().sum() > 0
    # the hidden transition's in-neighbours are H and the input; work nodes read everything
    assert m.gate_in.in_features == 4 + V + 1 and m.work_in.in_features == 14 + V + 1


def test_paper_rnn_state_is_hidden_set_and_stepping_equals_teacher_forcing():
    m = PaperRNN(V, size=16, hidden=5, steps_per_token=2, seed=3)
    assert torch.allclose(log_probs_by_steps(m, X), m.log_probs(X), atol=1e-6)
    s = m.start(3)
    assert set(s.tensors) == {"log_probs", "h"} and s.tensors["h"].shape == (3, 5)
    # H after the steps equals H from the node path; Θ(size²) parameters
    state = s
    for t in range(X.shape[1]):
        state, _ = m.step(state, X[:, t])
    assert torch.allclose(state.tensors["h"], hidden_run(m, X)[:, -1], atol=1e-6)
    assert m.num_parameters > 16**2
