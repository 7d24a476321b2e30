"""Training throughput of GRU through nextk.train vs a minimal hand-written PyTorch loop (issue 3).

Same architecture (embedding → nn.GRU → linear), optimiser (AdamW), clipping, fixed dataset and
batch size; no evaluation. Alternating repeats in one run; best of each reported.
Run: .venv/bin/python benchmarks/train_throughput.py
"""

import time

import torch
import torch.nn.functional as F
from torch import nn

from nextk.models import GRU
from nextk.sources import Dyck
from nextk.train import train

HIDDEN, BATCH, STEPS = 128, 64, 60


def hand_loop(data: torch.Tensor, vocab: int) -> float:
    torch.manual_seed(0)
    emb, rnn, head = nn.Embedding(vocab + 1, HIDDEN), nn.GRU(HIDDEN, HIDDEN, batch_first=True), nn.Linear(HIDDEN, vocab)
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


def nextk_loop(data: torch.Tensor, src) -> float:
    model = GRU(src.vocab_size, HIDDEN)
    t0 = time.perf_counter()
    train(model, src, steps=STEPS, batch_size=BATCH, lr=3e-3, data=data, eval_docs=1, progress=False)
    return time.perf_counter() - t0


def main():
    src = Dyck(n_types=2, max_depth=8, length=128)
    data = src.sample(2048, generator=0)
    ours, ref = [], []
    for _ in range(3):
        ref.append(hand_loop(data, src.vocab_size))
        ours.append(nextk_loop(data, src))
    tokens = STEPS * BATCH * src.length
    r = min(ref) / min(ours)
    print(
        f"| GRU train (hidden {HIDDEN}, batch {BATCH}×{src.length}) | nextk.train {tokens / min(ours):,.0f} tok/s "
        f"| hand loop {tokens / min(ref):,.0f} tok/s | ratio {r:.2f} |"
    )
    return r


if __name__ == "__main__":
    main()
