"""Training lowers exact excess loss; seeds reproduce; checkpoints resume; NaN is named."""

import pytest
import torch

from nextk.errors import InputError, TrainingError
from nextk.measure import kl
from nextk.models import GRU, PaperRNN, Transformer
from nextk.sources import HMM, Dyck
from nextk.train import train


def test_training_lowers_exact_excess_loss():
    p = Dyck(1, 3, 8)
    q = GRU(2, 16)
    before = kl(p, q, estimator="exact").value
    res = train(q, p, steps=150, batch_size=64, lr=1e-2, eval_every=50, progress=False)
    after = kl(p, q, estimator="exact").value
    assert after < 0.5 * before
    h = res.history
    assert len(h) == 3 and h[-1]["excess_loss"]["value"] < h[0]["excess_loss"]["value"]
    assert {"value", "stderr", "low", "high", "n", "method"} <= set(h[-1]["excess_loss"])


@pytest.mark.parametrize("make", [lambda: PaperRNN(2, 12, 4, 2), lambda: Transformer(2, 16, 1, 2, max_len=8)])
def test_other_families_train(make):
    p = Dyck(1, 3, 8)
    q = make()
    before = kl(p, q, estimator="exact").value
    train(q, p, steps=80, lr=1e-2, progress=False)
    assert kl(p, q, estimator="exact").value < before


def test_same_seed_same_result_and_finite_data():
    p = HMM.random(3, 3, 10, seed=0)
    a, b = GRU(3, 8), GRU(3, 8)
    train(a, p, steps=20, seed=5, data=100, progress=False)
    train(b, p, steps=20, seed=5, data=100, progress=False)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


def test_resume_after_kill_matches_uninterrupted(tmp_path):
    p = Dyck(1, 3, 8)
    full = GRU(2, 8)
    train(full, p, steps=40, eval_every=10, seed=1, progress=False)
    part = GRU(2, 8)
    train(part, p, steps=20, eval_every=10, seed=1, checkpoint=tmp_path, progress=False)  # "killed" at 20
    resumed = GRU(2, 8)
    res = train(resumed, p, steps=40, eval_every=10, seed=1, checkpoint=tmp_path, progress=False)
    assert res.steps == 40 and len(res.history) == 4
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(full.parameters(), resumed.parameters()))
    assert not list(tmp_path.glob("*.tmp"))


def test_nan_loss_names_step_and_lr():
    p = Dyck(1, 3, 8)
    q = GRU(2, 8)
    with torch.no_grad():
        q.head.bias.fill_(float("nan"))
    with pytest.raises(TrainingError, match=r"step 1 with lr=0.003"):
        train(q, p, steps=5, progress=False)


def test_bad_training_input():
    with pytest.raises(InputError, match="vocabulary"):
        train(GRU(3, 4), Dyck(1, 3, 8), steps=1, progress=False)
    with pytest.raises(InputError, match="budget"):
        train(GRU(2, 4), Dyck(1, 3, 8), progress=False)


def test_the_model_ends_with_its_best_held_out_weights():
    """Overfitting 8 fixed documents, the held-out loss rises after step 10: the model returned carries the
    weights of a separate run stopped at that step (never restored), not those of the last step."""
    p = HMM.random(3, 4, 10, seed=1)
    budget = {"eval_every": 10, "lr": 0.03, "seed": 0, "data": 8}
    kept = GRU(p.vocab_size, 16, seed=0)
    res = train(kept, p, steps=120, **budget)
    assert res.best_step is not None and res.best_step < 120, [h["eval_loss"]["value"] for h in res.history]
    stopped, last = GRU(p.vocab_size, 16, seed=0), GRU(p.vocab_size, 16, seed=0)
    train(stopped, p, steps=res.best_step, restore_best=False, **budget)
    train(last, p, steps=120, restore_best=False, **budget)
    same = lambda a, b: all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert same(kept, stopped) and not same(kept, last)
