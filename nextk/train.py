"""Training by next-token loss minimisation (docs/theory.md §1, §5), with exact excess loss on the way."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from nextk.checkpoint import BEST, load_model, load_state, save_model, save_state
from nextk.console import progress_bar, quiet
from nextk.errors import InputError, TrainingError
from nextk.lm import make_generator
from nextk.measure import batched_log_prob
from nextk.models.common import snapshot
from nextk.stats import mean_estimate


@dataclass
class TrainResult:
    """What a training run did: per-evaluation history, final metrics, and where it stopped."""

    steps: int
    tokens: int
    seconds: float
    stopped: str  # "budget" | "plateau"
    history: list[dict] = field(default_factory=list)  # one row per evaluation: step, losses (Estimate dicts)
    best_step: int | None = None  # the evaluation with the lowest held-out loss (the weights kept)

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate(model, source, held_out: torch.Tensor) -> dict:
    """Held-out per-token loss and, for exact sources, excess loss KL(p̄‖q̄)/n (Lemmas 5–6)."""
    n = held_out.shape[1]
    model.eval()
    lq = batched_log_prob(model, held_out)
    out = {"eval_loss": mean_estimate(-lq / n, "held-out p samples").to_dict()}
    if source.exact:
        lp = batched_log_prob(source, held_out)
        out["excess_loss"] = mean_estimate((lp - lq) / n, "held-out p samples, exact log p").to_dict()
    model.train()
    return out


class Interrupted(Exception):
    """Training stopped by Ctrl-C (SIGINT) between two steps; the checkpoint (if any) holds `saved_step`."""

    def __init__(self, step: int, saved_step: int | None, checkpoint: Path | None):
        self.step, self.saved_step, self.checkpoint = step, saved_step, checkpoint
        where = f"checkpoint at step {saved_step} in {checkpoint}" if checkpoint else "no checkpoint folder was given"
        super().__init__(f"interrupted at step {step}; {where}")


@contextlib.contextmanager
def sigint_flag():
    """While training, Ctrl-C sets a flag that the loop reads between steps (so no step is left half
    done); outside the main thread signals cannot be caught and the flag never rises."""
    flag = {"raised": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        flag["raised"] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def check_budget(**counts: int | None) -> None:
    """Every given count (steps, tokens, eval_every, patience, batch_size, data) must be ≥ 1."""
    for name, value in counts.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InputError(f"{name} must be ≥ 1, got {value}")


def train(
    model,
    source,
    *,
    steps: int | None = None,
    tokens: int | None = None,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    data: int | torch.Tensor | None = None,
    eval_every: int | None = None,
    eval_docs: int = 512,
    patience: int | None = None,
    min_delta: float = 1e-4,
    checkpoint: str | Path | None = None,
    resume: bool = True,
    restore_best: bool = True,
    progress: bool = False,
    log=quiet,
    grad_clip: float = 1.0,
) -> TrainResult:
    """Minimise next-token loss of `model` on `source`.

    Budget: `steps` optimiser steps or `tokens` training tokens. Data: fresh samples every step
    (data=None, infinite data), a fixed set of `data` documents, or a given LongTensor of documents.
    Every `eval_every` steps: held-out loss and exact excess loss with intervals; with `patience`,
    stop after that many evaluations without a drop of `min_delta` in held-out loss. With
    `restore_best` the model ends with the weights of its best held-out evaluation (`best_step`).
    With `checkpoint` (a directory), weights and optimiser state are saved atomically at each
    evaluation and on Ctrl-C (which raises `Interrupted` after saving); a run resumes from there, and
    a finished run re-run trains nothing. Same seed, same result, interrupted or not.
    """
    check_budget(steps=steps, tokens=tokens, eval_every=eval_every, patience=patience, batch_size=batch_size)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise InputError(
            f"{type(model).__name__} has no trainable parameters (an n-gram is fitted by counts: "
            f"model.fit(source.sample(...)))"
        )
    if model.vocab_size != source.vocab_size:
        raise InputError(f"model vocabulary {model.vocab_size} ≠ source vocabulary {source.vocab_size}")
    n = source.length
    if steps is None:
        if tokens is None:
            raise InputError("give a budget: steps= or tokens=")
        steps = math.ceil(tokens / (batch_size * n))
    gen = make_generator(seed)
    held_out = source.sample(eval_docs, generator=make_generator(seed + 1_000_003))
    if isinstance(data, int):
        data = source.sample(data, generator=make_generator(seed + 2_000_003))
    if data is not None and (data.dim() != 2 or data.shape[1] != n):
        raise InputError(f"data must be (documents, {n}), got {tuple(data.shape)}")
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    result = TrainResult(steps=0, tokens=0, seconds=0.0, stopped="budget")
    best, stale, best_weights = math.inf, 0, None
    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt and resume and (ckpt / "train_state.pt").is_file():
        state = load_state(ckpt / "train_state.pt")
        model.load_state_dict(load_model(ckpt / "model.safetensors", model.vocab_size).state_dict())
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        result = TrainResult(**{k: state["result"][k] for k in TrainResult.__dataclass_fields__})
        best, stale = state["best"], state["stale"]
        if (ckpt / BEST).is_file():
            best_weights = load_model(ckpt / BEST, model.vocab_size).state_dict()
        if result.steps >= steps or result.stopped == "plateau":
            log(f"{model.name}: already complete ({result.steps} steps, stopped by {result.stopped}) in {ckpt}")
        else:
            log(f"{model.name}: resuming from step {result.steps} of {steps} ({ckpt})")
    model.train()
    t0 = time.perf_counter() - result.seconds

    def save_checkpoint() -> None:
        result.seconds = time.perf_counter() - t0
        save_model(model, ckpt / "model.safetensors")
        save_state(
            {
                "optimizer": opt.state_dict(),
                "generator": gen.get_state(),
                "best": best,
                "stale": stale,
                "result": result.to_dict(),
            },
            ckpt / "train_state.pt",
        )

    with (
        progress_bar(model.name, steps, enabled=progress, completed=result.steps, loss="…") as bar,
        sigint_flag() as sig,
    ):
        while result.steps < steps and result.stopped != "plateau":
            if data is None:
                x = source.sample(batch_size, generator=gen)
            else:
                x = data[torch.randint(0, len(data), (batch_size,), generator=gen)]
            logits = model.logits(x)  # (B, T, V)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x.reshape(-1))
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"loss became {loss.item()} at step {result.steps + 1} with lr={lr}; lower the learning rate"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            opt.step()
            result.steps += 1
            result.tokens += x.numel()
            bar.update(advance=1, loss=f"{loss.item():.4f}")
            if eval_every and (result.steps % eval_every == 0 or result.steps == steps):
                row = {
                    "step": result.steps,
                    "tokens": result.tokens,
                    "train_loss": loss.item(),
                    "seconds": time.perf_counter() - t0,
                    **evaluate(model, source, held_out),
                }
                result.history.append(row)
                cur = row["eval_loss"]["value"]
                if cur < best:
                    best_weights = snapshot(model)
                    result.best_step = result.steps
                    if ckpt:
                        save_model(model, ckpt / BEST)
                stale = 0 if cur < best - min_delta else stale + 1
                best = min(best, cur)
                if patience is not None and stale >= patience:
                    result.stopped = "plateau"
                if ckpt:
                    save_checkpoint()
            if sig["raised"]:
                if ckpt:
                    save_checkpoint()
                raise Interrupted(result.steps, result.steps if ckpt else None, ckpt)
    result.seconds = time.perf_counter() - t0
    if restore_best and best_weights is not None:
        model.load_state_dict(best_weights)
    model.eval()
    return result
