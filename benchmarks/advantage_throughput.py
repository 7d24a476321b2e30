"""Advantage estimation (paired Monte Carlo, every start of every document): windows judged per second
by `nextk.advantage(..., estimator="paired")` against the strongest loop a user would write, with the
model steps per second as a fraction of the model's raw batched forward throughput, and where the time goes.

Baseline (the strongest plain loop): sample the documents, step each document once keeping the state after
every prefix (cached states), then for each start i in a Python loop sample that start's window for all
documents from the cached state (k steps of a copy); finally judge all true windows in one call of d and all
sampled windows in one call (per-row starts), as nextk does.
nextk: the same cached pass, then all (document, start) windows branched at once in k batched steps and
judged in one call per side.

Breakdown: the stages of nextk's paired path timed alone (sampling p's documents, the cached pass along them,
the k batched window steps, d on both sides); "model" is the part spent in the network (cached pass + window
steps), the rest is the budget the estimator itself controls.

Run: .venv/bin/python benchmarks/advantage_throughput.py      (BENCH_SMALL=1 or --small: a quick check)
"""

import torch
from common import Counting, best_of, fmt, raw_forward, setup, size

from nextk.advantage import advantage, sample_windows
from nextk.lm import State, make_generator, states_along
from nextk.models import GRU
from nextk.sources import Dyck
from nextk.stats import mean_estimate

HEADER = (
    "| advantage, paired | nextk | strongest loop | ratio | model steps/s ÷ raw forward tok/s | estimates |\n"
    "|---|---|---|---|---|---|"
)


@torch.no_grad()
def cached_loop(d, p, q, k: int, num_docs: int, seed: int):
    """The baseline: cached prefix states, per start a window sampled for all documents at once, then one call
    of d per side over every (document, start) window."""
    g = make_generator(seed)
    x = p.sample(num_docs, generator=g)
    m = p.length - k + 1
    states = states_along(q, x[:, : m - 1])
    fakes, trues, starts = [], [], []
    for i in range(m):
        s, toks = states[i], []
        for j in range(k):
            tok = torch.multinomial(s.log_probs.double().exp(), 1, generator=g).squeeze(1)
            toks.append(tok)
            if j + 1 < k:
                s, _ = q.step(s, tok)
        fake = x.clone()
        fake[:, i : i + k] = torch.stack(toks, 1)
        fakes.append(fake)
        trues.append(x)
        starts.append(torch.full((num_docs,), i))
    st = torch.cat(starts)
    diff = d(torch.cat(trues), st, k).double() - d(torch.cat(fakes), st, k).double()
    return mean_estimate(diff.reshape(m, num_docs).mean(0), "strongest loop")


@torch.no_grad()
def stages(d, p, q, k: int, num_docs: int, repeats: int) -> dict:
    """Seconds of each stage of nextk's paired path, timed alone (best of `repeats`)."""
    m = p.length - k + 1
    x = p.sample(num_docs, generator=make_generator(0))
    cached = states_along(q, x[:, : m - 1])
    batch = State.cat([cached[i] for i in range(m)])
    true = x.repeat_interleave(m, 0)
    st = torch.arange(m).repeat(num_docs)
    fns = {
        "sample p": lambda: p.sample(num_docs, generator=make_generator(0)),
        "cached pass": lambda: states_along(q, x[:, : m - 1]),
        "branch states": lambda: State.cat([cached[i] for i in range(m)]),
        "window steps": lambda: sample_windows(q, batch, k, make_generator(0)),
        "d, both sides": lambda: (d(true, st, k), d(true, st, k)),
    }
    return {name: t for name, (t, _) in best_of(fns, repeats, rounds=1).items()}


def main(k=4, docs=None, length=None, hidden=64, repeats=None):
    setup()
    docs, length, repeats = docs or size(64, 8), length or size(64, 16), repeats or size(5, 1)
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
        f"the documents); raw forward = best of `model.logits` on ({windows}, {k}) and ({docs}, {length}); at the "
        f"raw forward rate the limit is {fmt(raw / per)} windows/s"
    )
    parts = stages(d, p, q, k, docs, repeats)
    total = t["nextk"][0]
    model = parts["cached pass"] + parts["window steps"]
    shown = ", ".join(f"{name} {1000 * s:.1f} ms" for name, s in parts.items())
    print(
        f"  nextk {1000 * total:.1f} ms: {shown}; the network {1000 * model:.1f} ms ({model / total:.0%}), "
        f"at the raw forward rate it would take {1000 * steps / raw:.1f} ms"
    )
    floor = parts["sample p"] + parts["d, both sides"] + steps / raw  # what any estimator of this kind must spend
    print(
        f"  ceilings with this source and checker: even with the network at its raw forward rate and nothing else "
        f"spent, nextk would take {1000 * floor:.1f} ms: at most {t['loop'][0] / floor:.1f}× the strongest loop "
        f"(which spends the same sampling and d) and {steps / raw / floor:.2f} of the raw forward"
    )
    return {"ratio": r, "fraction": frac, "windows_per_s": w_fast, "raw_tokens_per_s": raw, "stages_s": parts}


if __name__ == "__main__":
    print(HEADER)
    main()
