"""A size-bounded learned distinguisher: a GRU classifier over (prefix, window) pairs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nextk.advantage import sample_windows
from nextk.bounds import check_window
from nextk.distinguishers.checks import clip, window_mask
from nextk.lm import make_generator, states_along
from nextk.models.common import seeded


class LearnedDistinguisher(nn.Module):
    """d(x_{<i}, w) = 1[f(x_{<i}, w) > 0] with f a GRU of `hidden` units reading the prefix and the
    window (each token tagged 'prefix' or 'window'); its output at the window's last token is the logit.
    The GRU is causal, so nothing after the window can influence it.

    `fit(p, q, k)` trains it on true windows (label 1) against model windows (label 0) drawn from
    the same prefixes of fresh p documents. Measure it with `nextk.advantage` on other documents
    (another seed): never on its training pairs.
    """

    def __init__(
        self,
        vocab_size: int,
        hidden: int = 32,
        steps: int = 300,
        batch_size: int = 256,
        lr: float = 3e-3,
        seed: int = 0,
    ):
        super().__init__()
        self.vocab_size, self.hidden, self.steps, self.batch_size, self.lr, self.seed = (
            vocab_size,
            hidden,
            steps,
            batch_size,
            lr,
            seed,
        )
        with seeded(seed):
            self.embed = nn.Embedding(2 * vocab_size, hidden)  # token id + V·(inside window)
            self.rnn = nn.GRU(hidden, hidden, batch_first=True)
            self.out = nn.Linear(hidden, 1)

    def score(self, x: Tensor, starts: Tensor, k: int) -> Tensor:
        """Logits (B,) for windows x[b, starts[b]:starts[b]+k] given their prefixes."""
        inside = window_mask(starts, k, x.shape[1])
        h, _ = self.rnn(self.embed(x + self.vocab_size * inside.long()))  # (B, T, H)
        last = (starts + k - 1).clamp(max=x.shape[1] - 1)
        return self.out(h[torch.arange(len(x)), last]).squeeze(-1)

    def pairs(self, p, q, k: int, num: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """num true and num model windows on fresh p prefixes: (strings, starts, labels)."""
        m = check_window(k, p.length)
        x = p.sample(num, generator=generator)
        starts = torch.randint(0, m, (num,), generator=generator)
        states = states_along(q, x[:, : m - 1])
        fake = x.clone()
        for i in starts.unique().tolist():
            rows = (starts == i).nonzero().squeeze(1)
            fake[rows, i : i + k] = sample_windows(q, states[i][rows], k, generator)
        return torch.cat([x, fake]), torch.cat([starts, starts]), torch.cat([torch.ones(num), torch.zeros(num)])

    def fit(self, p, q, k: int, num_docs: int = 2048, seed: int | None = None) -> LearnedDistinguisher:
        """Train on 2·num_docs labelled windows; returns self. Sets `train_accuracy_`."""
        g = make_generator(self.seed if seed is None else seed)
        x, starts, y = self.pairs(p, q, k, num_docs, g)
        opt = torch.optim.Adam(self.parameters(), lr=self.lr)
        self.train()
        for _ in range(self.steps):
            idx = torch.randint(0, len(x), (self.batch_size,), generator=g)
            loss = F.binary_cross_entropy_with_logits(self.score(x[idx], starts[idx], k), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        self.eval()
        with torch.no_grad():
            self.train_accuracy_ = ((self.score(x, starts, k) > 0).float() == y).float().mean().item()
        self.k_ = k
        return self

    @torch.no_grad()
    def __call__(self, x: Tensor, start, k: int) -> Tensor:
        x, starts = clip(x, start, k)
        return self.score(x, starts, k) > 0
