"""Advantage estimation (paired Monte Carlo, every start of every document): windows judged per second
by `nextk.advantage(..., estimator="paired")` against the cached-state loop a user would write, with
the model steps per second as a fraction of the model's raw batched forward throughput.

Baseline: step each document once (start/step along it, keeping the state after every prefix), then
for each start i in a Python loop sample that start's window for all documents from the cached state
(k steps of a copy) and judge the true and the sampled windows with one call each.
nextk: the same cached pass, then all (document, start) windows branched at once in k batched steps
and judged in one call with per-row starts.

Run: .venv/bin/python benchmarks/advantage_throughput.py      (BENCH_SMALL=1 or --small: a quick check)
"""

import torch
from common import Counting, best_of, fmt, raw_forward, setup, size

from nextk.advantage import advantage
from nextk.lm import make_generator
from nextk.models import GRU
from nextk.sources import Dyck
from nextk.stats import mean_estimate

HEADER = (
    "| advantage, paired | nextk | cached-state loop | ratio | model steps/s ÷ raw forward tok/s | estimates |\n"
    "|---|---|---|---|---|---|"
)


@torch.no_grad()
def cached_loop(d, p, q, k: int, num_docs: int, seed: int):
    """The baseline: one pass along the documents keeping every prefix state, then per start a window
    sampled from the cached state for all documents at once, judged against the true window."""
    g = make_generator(seed)
    x = p.sample(num_docs, generator=g)
    m = p.length - k + 1
    state = q.start(num_docs)
    states = [state]
    for t in range(m - 1):
        state, _ = q.step(state, x[:, t])
        states.append(state)
    per = torch.zeros(num_docs, m, dtype=torch.float64)
    for i in range(m):
        s, toks = states[i], []
        for j in range(k):
            tok = torch.multinomial(s.log_probs.exp(), 1, generator=g).squeeze(1)
            toks.append(tok)
            if j + 1 < k:
                s, _ = q.step(s, tok)
        fake = torch.cat([x[:, :i], torch.stack(toks, 1)], 1)
        per[:, i] = d(x[:, : i + k], i, k).double() - d(fake, i, k).double()
    return mean_estimate(per.mean(1), "cached-state loop")


def main(k=4, docs=None, length=None, hidden=64, repeats=None):
    setup()
    docs, length, repeats = docs or size(64, 8), length or size(64, 16), repeats or size(3, 1)
    p = Dyck(n_types=2, max_depth=8, length=length)
    q = GRU(p.vocab_size, hidden)
    d = p.checks["valid"]
    m = length - k + 1
    windows = docs * m
    fast = lambda: advantage(d, p, q, k, num_docs=docs, estimator="paired", seed=0)
    t = best_of({"nextk": fast, "loop": lambda: cached_loop(d, p, q, k, docs, 0)}, repeats)
    counted = Counting(q)  # model steps per window, counted in an untimed run
    advantage(d, p, counted, k, num_docs=docs, estimator="paired", seed=0)
    steps = counted.steps
    raw = max(raw_forward(q, windows, k, repeats), raw_forward(q, docs, length, repeats))
    w_fast, w_loop = windows / t["nextk"][0], windows / t["loop"][0]
    step_rate = steps / t["nextk"][0]
    frac = step_rate / raw
    r = t["loop"][0] / t["nextk"][0]
    print(
        f"| Dyck n={length}, k={k}, GRU-{hidden}, {docs} docs, {windows:,} windows | {fmt(w_fast)} windows/s "
        f"| {fmt(w_loop)} windows/s | **{r:.1f}×** | {fmt(step_rate)} ÷ {fmt(raw)} = **{frac:.2f}** "
        f"| {t['nextk'][1].value:+.3f} vs {t['loop'][1].value:+.3f} |"
    )
    per = steps / windows
    print(
        f"  {per:.2f} model steps per window (k − 1 = {k - 1} branched + {per - (k - 1):.2f} for the pass along "
        f"the documents); window-tokens/s {fmt(w_fast * per)}; raw forward = best of `model.logits` on "
        f"({windows}, {k}) and ({docs}, {length}); at the raw forward rate the limit is {fmt(raw / per)} windows/s"
    )
    return {"ratio": r, "fraction": frac, "windows_per_s": w_fast, "raw_tokens_per_s": raw}


if __name__ == "__main__":
    print(HEADER)
    main()
