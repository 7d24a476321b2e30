"""Where a second intra-op thread starts to pay (nextk/threads.py: DEFAULT_THREADS, HEAVY_WORK): the time of one
GRU step (`model.step` on a batch, what the estimators run) and of one teacher-forced training step (forward,
backward and AdamW on a (batch, 24) batch) for hidden sizes × batch sizes, on 1 thread and on every core, with
the multiply-adds of the call. Run it on an idle machine: beside other work every extra thread only loses.

Crossover: the smallest work (multiply-adds per call) from which every larger measured call is at least 1.2×
faster on all cores; nextk/threads.py's HEAVY_WORK should sit there.

Run: .venv/bin/python benchmarks/thread_crossover.py      (BENCH_SMALL=1 or --small: a quick check)
"""

import os

import torch
from common import best_of, size

from nextk.models import GRU

HEADER = (
    "| GRU hidden × batch | multiply-adds per step | step: 1 thread | step: all cores | speed-up "
    "| train step: 1 thread | all cores | speed-up |\n|---|---|---|---|---|---|---|---|"
)
LENGTH = 24  # positions per training document


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def timed(threads: int, fns: dict, repeats: int) -> dict:
    torch.set_num_threads(threads)
    return {name: t for name, (t, _) in best_of(fns, repeats, rounds=1).items()}


def calls(h: int, b: int) -> dict:
    """The two timed calls for a GRU of width h on b rows: one decoding step and one training step."""
    q = GRU(6, h)
    opt = torch.optim.AdamW(q.parameters(), lr=1e-3)
    x = torch.randint(0, 6, (b, LENGTH), generator=torch.Generator().manual_seed(0))
    state = q.start(b)

    def train_step():
        loss = torch.nn.functional.cross_entropy(q.logits(x).reshape(-1, 6), x.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()

    return {"step": lambda: q.step(state, x[:, 0]), "train": train_step}


def main(hiddens=None, batches=None, repeats=None):
    hiddens = hiddens or size([16, 32, 64, 128, 256, 512], [16, 64])
    batches = batches or size([64, 256, 1024], [64])
    repeats = repeats or size(5, 1)
    n = cores()
    rows = []
    for h in hiddens:
        for b in batches:
            fns = calls(h, b)
            one, all_ = timed(1, fns, repeats), timed(n, fns, repeats)
            work = 6 * h * h * b  # three gates, input and hidden matmuls of width h
            rows.append((work, h, b, one, all_))
            print(
                f"| {h} × {b} | {work:.1e} | {1e3 * one['step']:.2f} ms | {1e3 * all_['step']:.2f} ms "
                f"| {one['step'] / all_['step']:.2f}× | {1e3 * one['train']:.1f} ms | {1e3 * all_['train']:.1f} ms "
                f"| {one['train'] / all_['train']:.2f}× |",
                flush=True,
            )
    torch.set_num_threads(1)
    rows.sort()
    pays = [r[3]["step"] / r[4]["step"] >= 1.2 for r in rows]
    crossover = next((rows[i][0] for i in range(len(rows)) if all(pays[i:])), None)
    where = f"{crossover:.1e} multiply-adds per step" if crossover is not None else "not reached in this grid"
    print(f"  {n} cores; crossover (every larger step ≥ 1.2× faster on all cores): {where}")
    return {"crossover_multiply_adds": crossover, "cores": n}


if __name__ == "__main__":
    print(HEADER)
    main()
