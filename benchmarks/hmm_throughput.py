"""Exact HMM log-probability throughput: nextk's batched forward vs hmmlearn's `score` (issue 2).

Same HMM (16 states, 16 symbols), 1,000 strings of length 256, measured in one run.
Run: .venv/bin/python benchmarks/hmm_throughput.py
"""

import time

import numpy as np
import torch

from nextk.sources import HMM


def best_of(f, repeats=3):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(n_states=16, vocab=16, num=1000, length=256):
    src = HMM.random(n_states, vocab, length, seed=0)
    x = src.sample(num, generator=0)
    t_ours, ours = best_of(lambda: src.log_prob(x))
    from hmmlearn.hmm import CategoricalHMM

    ref = CategoricalHMM(n_components=n_states, init_params="", params="")
    ref.startprob_, ref.transmat_, ref.emissionprob_ = src.start_p.numpy(), src.trans.numpy(), src.emit.numpy()
    ref.n_features = vocab
    xs = x.numpy()
    t_ref, theirs = best_of(lambda: np.array([ref.score(row.reshape(-1, 1)) for row in xs]))
    err = np.abs(ours.numpy() - theirs).max()
    tokens = num * length
    print(
        f"| HMM log-prob ({n_states} states, {vocab} symbols, {num}×{length}) | nextk {tokens / t_ours:,.0f} tok/s "
        f"| hmmlearn {tokens / t_ref:,.0f} tok/s | speed-up {t_ref / t_ours:.1f}× | max |Δ log p| {err:.1e} |"
    )
    return t_ref / t_ours


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
