"""Distillation (docs/theory.md §4): put a boosted model back into a fixed-size network."""

from __future__ import annotations

import torch
from torch import Tensor

from nextk.errors import InputError
from nextk.lm import make_generator
from nextk.measure import batched_log_prob
from nextk.stats import mean_estimate


def distill(
    boosted,
    model,
    *,
    num_docs: int | None = 4096,
    steps: int = 300,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    eval_every: int = 50,
    eval_docs: int = 512,
    targets: str = "auto",
    progress: bool = False,
    log=None,
):
    """Put the boosted model back into a fixed-size network: train `model` (in place; pass a copy of q to
    start from q, as `nextk boost --distill-steps` does) to minimise KL(q̄' ‖ model) on documents sampled
    from the boosted model q'.

    targets="soft" (the default "auto" when q' has exact conditionals): the loss is the per-token KL
    Σ_v q'(v | x_{<t}) log(q'(v | x_{<t}) / r(v | x_{<t})) with q' from its tries — every token's whole
    conditional, not one sampled token; "hard": cross-entropy on the sampled tokens (the same minimiser,
    more variance). `num_docs` samples of q' are drawn once (None: as many as the steps read,
    batch_size·steps), `eval_docs` more are held out; every `eval_every` steps the held-out KL(q̄'‖r̄)/n
    (per token) is measured and the weights with the lowest are kept. Returns a TrainResult (steps,
    tokens, seconds, history with the held-out KL, best_step) with `samples` set to the documents read.
    """
    import time

    import torch.nn.functional as F

    from nextk.console import progress_bar, quiet
    from nextk.models.common import snapshot
    from nextk.train import TrainResult

    log = log or quiet
    if targets not in ("auto", "soft", "hard"):
        raise InputError(f"unknown targets={targets!r}; choose 'auto', 'soft' or 'hard'")
    if steps < 1 or batch_size < 1:
        raise InputError(f"steps and batch_size must be ≥ 1, got steps={steps}, batch_size={batch_size}")
    if model.vocab_size != boosted.vocab_size:
        raise InputError(f"model vocabulary {model.vocab_size} ≠ boosted vocabulary {boosted.vocab_size}")
    soft = targets == "soft" or (targets == "auto" and boosted.exact)
    n = boosted.length
    g = make_generator(seed)
    t0 = time.perf_counter()
    num_docs = num_docs or batch_size * steps
    with torch.no_grad():
        data = boosted.sample(num_docs, generator=g)
        held = boosted.sample(eval_docs, generator=g)
        target = _conditionals(boosted, data) if soft else None
        held_lp = batched_log_prob(boosted, held)

    def held_out_kl() -> dict:
        model.eval()
        lr_ = batched_log_prob(model, held)
        model.train()
        return mean_estimate((held_lp - lr_) / n, "held-out samples of the boosted model: (log q̄' − log r̄)/n").to_dict()

    params = [w for w in model.parameters() if w.requires_grad]
    if not params:
        raise InputError(f"{type(model).__name__} has no trainable parameters")
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    result = TrainResult(steps=0, tokens=0, seconds=0.0, stopped="budget")
    first = held_out_kl()
    result.history.append({"step": 0, "tokens": 0, "kl_to_boosted": first})
    best, best_weights, result.best_step = first["value"], snapshot(model), 0
    model.train()
    with progress_bar(f"distill {getattr(model, 'name', '')}", steps, enabled=progress, loss="…") as bar:
        for step in range(1, steps + 1):
            idx = torch.randint(0, num_docs, (batch_size,), generator=g)
            x = data[idx]
            logits = model.logits(x)
            if soft:
                tgt = target[idx]
                loss = (tgt.exp() * (tgt - torch.log_softmax(logits.double(), -1))).nan_to_num(0.0).sum(-1).mean()
            else:
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            result.steps, result.tokens = step, result.tokens + x.numel()
            bar.update(advance=1, loss=f"{loss.item():.4f}")
            if step % eval_every == 0 or step == steps:
                row = held_out_kl()
                result.history.append(
                    {"step": step, "tokens": result.tokens, "train_loss": loss.item(), "kl_to_boosted": row}
                )
                log(f"  distill step {step}: KL(q̄'‖r̄)/n {row['value']:.5f} [{row['low']:.5f}, {row['high']:.5f}]")
                if row["value"] < best:
                    best, best_weights, result.best_step = row["value"], snapshot(model), step
    model.load_state_dict(best_weights)
    model.eval()
    result.seconds = time.perf_counter() - t0
    result.samples = num_docs  # type: ignore[attr-defined]
    result.targets = "soft (exact conditionals of q')" if soft else "hard (sampled tokens)"  # type: ignore[attr-defined]
    return result


def _conditionals(lm, x: Tensor, batch: int = 1024) -> Tensor:
    """log q'(· | x_{<t}) for every document and position, float64 (N, n, V), in batches."""
    return torch.cat([lm.log_probs(x[i : i + batch]).double() for i in range(0, len(x), batch)])
