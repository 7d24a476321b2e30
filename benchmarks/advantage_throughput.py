"""Advantage estimation: windows judged per second, cached-state branching (nextk.advantage, paired)
vs naive per-prefix resampling (re-run the model over every prefix, then sample the window) (issue 3).

Run: .venv/bin/python benchmarks/advantage_throughput.py
"""

import time

import torch

from nextk.advantage import advantage, sample_windows
from nextk.lm import make_generator
from nextk.models import GRU
from nextk.sources import Dyck
from nextk.stats import mean_estimate

K, DOCS = 4, 64


def naive(d, p, q, k, num_docs, seed):
    """Per start i: run q from scratch over x_{<i} for every document, then sample and judge."""
    g = make_generator(seed)
    x = p.sample(num_docs, generator=g)
    m = p.length - k + 1
    per = torch.zeros(num_docs, m, dtype=torch.float64)
    for i in range(m):
        state = q.start(num_docs)
        for t in range(i):
            state, _ = q.step(state, x[:, t])
        w = sample_windows(q, state, k, g)
        per[:, i] = d(x[:, : i + k], i, k).double() - d(torch.cat([x[:, :i], w], 1), i, k).double()
    return mean_estimate(per.mean(1), "naive")


def main():
    p = Dyck(n_types=2, max_depth=8, length=64)
    q = GRU(p.vocab_size, 64)
    d = p.checks["valid"]
    windows = DOCS * (p.length - K + 1)
    t_fast, t_naive = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        a = advantage(d, p, q, K, num_docs=DOCS, estimator="paired", seed=0)
        t_fast.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        b = naive(d, p, q, K, DOCS, seed=0)
        t_naive.append(time.perf_counter() - t0)
    r = min(t_naive) / min(t_fast)
    print(
        f"| advantage, paired (Dyck n=64, k={K}, GRU-64, {windows} windows) | cached states "
        f"{windows / min(t_fast):,.0f} windows/s | per-prefix rerun {windows / min(t_naive):,.0f} windows/s "
        f"| speed-up {r:.1f}× | estimates {a.value:+.3f} vs {b.value:+.3f} |"
    )
    return r


if __name__ == "__main__":
    main()
