"""Shared by the benchmark scripts: thread settings, the small-size switch, interleaved timing, a
step-counting model wrapper and the model's raw batched forward throughput (the limit column).

Small sizes (a quick check that a script runs, not a measurement): `BENCH_SMALL=1` or `--small`.
"""

from __future__ import annotations

import os
import sys
import time

import torch

THREADS = int(os.environ.get("BENCH_THREADS", "2"))  # BENCH_THREADS=1: one core, when the other is busy
SMALL = os.environ.get("BENCH_SMALL", "") not in ("", "0") or "--small" in sys.argv


def setup() -> None:
    """THREADS (2 by default: the project's machines have 2 cores) for PyTorch and NumPy's BLAS, through nextk's
    one thread mechanism (nextk/threads.py: also NumPy's BLAS when threadpoolctl is installed)."""
    import numpy  # noqa: F401  (loaded first, so its BLAS pool is limited too)

    from nextk.threads import set_threads

    set_threads(THREADS)


def size(real, small):
    """The real size, or the small one under BENCH_SMALL=1 / --small."""
    return small if SMALL else real


def best_of(fns: dict, repeats: int, rounds: int = 2, warmup: bool = True) -> dict:
    """Time each callable: in each of `rounds` rounds, every callable in turn gets a warm-up call (unless
    `warmup` is False) and then `repeats` timed calls in a row. Blocks, not call-by-call alternation: a
    NumPy/OpenBLAS call leaves spinning threads that slow the next PyTorch/OpenMP call on 2 cores, and
    the reverse; the pause and the warm-up let them settle. Returns {name: (best seconds, output of the
    last call)}."""
    best = {name: float("inf") for name in fns}
    out = {}
    for _ in range(rounds):
        for name, f in fns.items():
            time.sleep(0.2)
            if warmup:
                out[name] = f()
            for _ in range(repeats):
                t0 = time.perf_counter()
                out[name] = f()
                best[name] = min(best[name], time.perf_counter() - t0)
    return {name: (best[name], out[name]) for name in fns}


class Counting:
    """Wraps a model and counts the token positions it runs: rows passed to `start`/`step` (one row =
    one model step) and batch × positions for teacher-forced calls (`log_probs`, `log_prob`, `logits`).
    Every other attribute is the wrapped model's."""

    def __init__(self, model):
        self.model, self.steps = model, 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def log_probs(self, x):
        self.steps += x.numel()
        return self.model.log_probs(x)

    def log_prob(self, x):
        self.steps += x.numel()
        return self.model.log_prob(x)

    def logits(self, x):
        self.steps += x.numel()
        return self.model.logits(x)

    def start(self, batch):
        self.steps += batch
        return self.model.start(batch)

    def step(self, state, tokens):
        self.steps += len(tokens)
        return self.model.step(state, tokens)


@torch.no_grad()
def raw_forward(model, batch: int, length: int, repeats: int = 3) -> float:
    """Tokens/s of the model's teacher-forced forward `model.logits` on a random (batch, length) batch
    (one fused call: what a token costs when nothing but the network runs)."""
    x = torch.randint(0, model.vocab_size, (batch, length), generator=torch.Generator().manual_seed(0))
    t, _ = best_of({"f": lambda: model.logits(x)}, repeats, rounds=1)["f"]
    return batch * length / t


def fmt(x: float) -> str:
    return f"{x:,.0f}"
