"""Training throughput of a GRU through nextk.train vs a minimal hand-written PyTorch loop, with the
network's bare forward + backward throughput (no optimiser, no data handling) as the limit.

Same architecture (embedding → nn.GRU → linear), optimiser (AdamW), clipping, fixed dataset and
batch size; no evaluation. Alternating repeats in one run; best of each reported.
Run: .venv/bin/python benchmarks/train_throughput.py      (BENCH_SMALL=1 or --small: a quick check)
"""

import time

import torch
import torch.nn.functional as F
from common import fmt, setup, size
from torch import nn

from nextk.models import GRU
from nextk.sources import Dyck
from nextk.train import train

HIDDEN, BATCH = 128, 64
STEPS = size(60, 3)
HEADER = (
    "| GRU training | nextk.train | hand-written loop | ratio | nextk ÷ bare forward + backward tok/s |\n"
    "|---|---|---|---|---|"
)


def network(vocab: int):
    torch.manual_seed(0)
    return nn.Embedding(vocab + 1, HIDDEN), nn.GRU(HIDDEN, HIDDEN, batch_first=True), nn.Linear(HIDDEN, vocab)


def hand_loop(data: torch.Tensor, vocab: int) -> float:
    emb, rnn, head = network(vocab)
    params = [*emb.parameters(), *rnn.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=3e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for _ in range(STEPS):
        x = data[torch.randint(0, len(data), (BATCH,), generator=g)]
        inp = torch.cat([torch.full_like(x[:, :1], vocab), x[:, :-1]], dim=1)
        out, _ = rnn(emb(inp))
        logits = head(out)
        loss = F.cross_entropy(logits.reshape(-1, vocab), x.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    return time.perf_counter() - t0


def forward_backward(data: torch.Tensor, vocab: int) -> float:
    """The limit: forward, loss and backward of the same network on one fixed batch, STEPS times."""
    emb, rnn, head = network(vocab)
    x = data[:BATCH]
    inp = torch.cat([torch.full_like(x[:, :1], vocab), x[:, :-1]], dim=1)
    t0 = time.perf_counter()
    for _ in range(STEPS):
        out, _ = rnn(emb(inp))
        F.cross_entropy(head(out).reshape(-1, vocab), x.reshape(-1)).backward()
    return time.perf_counter() - t0


def nextk_loop(data: torch.Tensor, src) -> float:
    model = GRU(src.vocab_size, HIDDEN)
    t0 = time.perf_counter()
    train(model, src, steps=STEPS, batch_size=BATCH, lr=3e-3, data=data, eval_docs=1, progress=False)
    return time.perf_counter() - t0


def main(rounds=None):
    setup()
    src = Dyck(n_types=2, max_depth=8, length=size(128, 16))
    data = src.sample(size(2048, 128), generator=0)
    ours, ref, lim = [], [], []
    for _ in range(rounds or size(3, 1)):
        ref.append(hand_loop(data, src.vocab_size))
        ours.append(nextk_loop(data, src))
        lim.append(forward_backward(data, src.vocab_size))
    tokens = STEPS * BATCH * src.length
    r, frac = min(ref) / min(ours), min(lim) / min(ours)
    print(
        f"| hidden {HIDDEN}, batch {BATCH} × {src.length}, {STEPS} steps | {fmt(tokens / min(ours))} tok/s "
        f"| {fmt(tokens / min(ref))} tok/s | **{r:.2f}** | {fmt(tokens / min(ours))} ÷ {fmt(tokens / min(lim))} "
        f"= **{frac:.2f}** |"
    )
    return {"ratio": r, "fraction": frac}


if __name__ == "__main__":
    print(HEADER)
    main()
