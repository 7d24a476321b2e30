"""Exact boosted conditionals for a batch of documents: one trie per block vs per-position
enumeration of the block's V^k windows (THEORY.md §4), model steps counted and wall time (issue 4).

Run: .venv/bin/python benchmarks/boost_trie.py
"""

import time

import torch

from nextk.boost import boost, naive_log_probs
from nextk.lm import states_along
from nextk.models import GRU


class Counting:
    """Wraps a model and counts the rows it steps (one row = one model step)."""

    def __init__(self, model):
        self.model, self.vocab_size, self.steps = model, model.vocab_size, 0

    def log_probs(self, x):
        return self.model.log_probs(x)

    def start(self, batch):
        self.steps += batch
        return self.model.start(batch)

    def step(self, state, tokens):
        self.steps += len(tokens)
        return self.model.step(state, tokens)


class Window:
    """A cheap fixed distinguisher: the window's token sum is even."""

    def __call__(self, x, start, k):
        return x[:, start : start + k].sum(1) % 2 == 0


def run(v, k, docs=8, hidden=32):
    q = Counting(GRU(v, hidden, seed=0))
    length = 2 * k
    b = boost(q, Window(), k, offset=0, eta=1.0, length=length)
    x = torch.randint(0, v, (docs, length), generator=torch.Generator().manual_seed(0))
    out = {}
    for name, f in (("trie", b.log_probs), ("naive", lambda z: naive_log_probs(b, z))):
        best = float("inf")
        for _ in range(2):
            q.steps = 0
            t0 = time.perf_counter()
            res = f(x)
            best = min(best, time.perf_counter() - t0)
        out[name] = (q.steps, best, res)
    (ts, tt, a), (ns, nt, c) = out["trie"], out["naive"]
    q.steps = 0
    states_along(q, x[:, : length - 1])  # the pass along the documents that both paths make
    shared = q.steps
    err = (a - c).abs().max().item()
    print(
        f"| V={v}, k={k} ({docs} docs × {length} tokens, GRU-{hidden}) | trie {ts:,} steps, {tt * 1e3:.1f} ms "
        f"| naive {ns:,} steps, {nt * 1e3:.1f} ms | {ns / ts:.1f}× fewer steps "
        f"({(ns - shared) / (ts - shared):.1f}× in block enumeration) | {nt / tt:.1f}× faster | max Δ {err:.1e} |"
    )
    return ns / ts, nt / tt


def main():
    torch.set_num_threads(2)
    return [run(2, 8), run(4, 6), run(16, 3)]


if __name__ == "__main__":
    main()
