"""Boosting at any vocabulary size: sequential Monte Carlo over the blocks of a `Boosted` model
(docs/theory.md §4), where the exact trie (Σ_{j≤k} V^j model steps per block) cannot be built.

The boosted model (eq. 1.3) is normalised block by block:

    q̄'(x) = q̄(x) · Π_{s∈S_r} e^{η d(x_{<s}, x_{s:s+k})} / Z_s(x_{<s}),
    Z_s(x_{<s}) = E_{w∼q(·|x_{<s})} e^{η d(x_{<s}, w)}.

So each block is drawn from q's window distribution at the document's own prefix, tilted by e^{η d}.
SMC does that with particles: at block s, N windows are drawn from q(· | x_{<s}) (one pass along the
prefix, then N branches), weighted by e^{η d}, and the document continues with one of them drawn in
proportion to its weight (multinomial resampling of the population to its one survivor). The mean
weight is an unbiased estimate of Z_s(x_{<s}) (its interval by the delta method on log Z); the
effective sample size ESS = (Σw)² / Σw² says how many particles carried the estimate. When a block's
ESS falls below `ess_threshold` · N, that block is drawn again from scratch with twice the particles
(fresh draws, so the kept estimate stays unbiased given its size), up to `max_particles`.

Why the population lives inside one prefix: resampling particles that hold *different* prefixes by
e^{η d} alone would favour prefixes with a large Z_s and target the globally tilted q̄(x) e^{η Σ d} / Z
instead of q̄' (the two agree only with a single block at the start). The survivor's law tends to the
exact tilted window law as N grows (the bias of sampling-importance-resampling is O(1/N)); with
`Boosted.sample(method="rejection")` nextk also has an exact sampler whose acceptance is ≥ e^{−|η|}.

The gain Δ = Σ_{s∈S_r} E_{x∼p̄}[η d(x_{<s}, x_{s:s+k}) − log Z_s(x_{<s})] (the KL it removes) is estimated
on documents of p with each Z_s importance-sampled from q (`smc_gain`): log Ẑ corrected to first order
for the log's bias, the interval over documents.

Every tensor is created on q's device (`q.device` when it has one): windows come from
`q.branch_windows` when q has it (nextk.models.HuggingFace: one pass per prefix, N·k batched tokens),
otherwise from q's state repeated N times (any LanguageModel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from nextk.advantage import sample_windows
from nextk.errors import InputError
from nextk.lm import make_generator, states_along
from nextk.stats import Estimate, mean_estimate


@dataclass
class SMCResult:
    """Samples of a boosted model by SMC, with per-document, per-block diagnostics.

    samples (num, n); log_z, log_z_stderr, ess, particles: (num, blocks) for the blocks at `block_starts`
    of each sample's own prefix: the estimate of log Z_s(x_{<s}), its standard error, the effective sample
    size and the particle count of the draw that was kept."""

    samples: Tensor
    log_z: Tensor
    log_z_stderr: Tensor
    ess: Tensor
    particles: Tensor
    block_starts: list

    def log_z_total(self) -> tuple[Tensor, Tensor]:
        """Σ_s log Z_s(x_{<s}) per sample and its standard error (blocks estimated independently)."""
        return self.log_z.sum(1), self.log_z_stderr.pow(2).sum(1).sqrt()

    def summary(self) -> dict:
        """JSON-safe diagnostics: ESS and particles per block (mean over samples), low-ESS share."""
        return {
            "num": int(self.samples.shape[0]),
            "block_starts": list(self.block_starts),
            "mean_ess": self.ess.double().mean(0).tolist(),
            "mean_particles": self.particles.double().mean(0).tolist(),
            "mean_log_z": self.log_z.mean(0).tolist(),
        }


def _device(q) -> torch.device:
    dev = getattr(q, "device", None)
    return dev if isinstance(dev, torch.device) else torch.device("cpu")


def _generator(q, seed) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    if hasattr(q, "branch_windows"):
        from nextk.models.hf import device_generator

        return device_generator(seed, _device(q))
    return make_generator(seed)


def _draw(log_w: Tensor, g: torch.Generator) -> Tensor:
    """One index per row ∝ exp(log_w) (rows, N)."""
    if hasattr(g, "device") and g.device != log_w.device:
        from nextk.models.hf import categorical

        return categorical(log_w, g)[:, 0]
    return torch.multinomial((log_w - log_w.amax(1, keepdim=True)).exp(), 1, generator=g)[:, 0]


@torch.no_grad()
def propose(q, prefix: Tensor, k: int, num: int, generator: torch.Generator) -> Tensor:
    """num windows of k tokens from q(· | prefix) for every row of prefix (B, s): (B, num, k)."""
    b, s = prefix.shape
    if hasattr(q, "branch_windows"):
        return q.branch_windows(prefix, [s], k, num, generator=generator)[:, 0]
    state = states_along(q, prefix)[-1].repeat(num)
    return sample_windows(q, state, k, generator).reshape(b, num, k)


def log_weights(boosted, prefix: Tensor, windows: Tensor) -> Tensor:
    """η d(x_{<s}, w) for every proposed window: prefix (B, s), windows (B, N, k) → float64 (B, N)."""
    b, num, k = windows.shape
    s = prefix.shape[1]
    x = torch.cat([prefix.repeat_interleave(num, 0), windows.reshape(b * num, k)], 1)
    return boosted.eta * boosted.d(x, s, k).double().reshape(b, num)


def log_mean_exp(log_w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(log of the mean weight, its delta-method standard error, ESS) per row of log-weights (B, N)."""
    num = log_w.shape[1]
    w = (log_w - log_w.amax(1, keepdim=True)).exp()  # weights / max: ratios unchanged
    mean = w.mean(1)
    log_z = mean.log() + log_w.amax(1) if num else torch.full_like(mean, math.nan)
    se = w.std(1) / (math.sqrt(num) * mean) if num > 1 else torch.full_like(mean, math.inf)
    ess = w.sum(1) ** 2 / w.pow(2).sum(1)
    return log_z, se, ess


@torch.no_grad()
def block_log_z(boosted, x: Tensor, *, particles: int = 1024, seed: int | torch.Generator = 0):
    """log Z_s(x_{<s}) for every block s of the boosted model inside documents x (B, ≥ s): importance
    sampling with `particles` windows from q(· | x_{<s}) per document and block. Returns
    (log Ẑ (B, S), standard error (B, S), ESS (B, S)); the mean weight Ẑ is unbiased for Z_s."""
    if particles < 2:
        raise InputError(f"particles must be ≥ 2 (an interval needs two), got {particles}")
    q, k = boosted.q, boosted.k
    g = _generator(q, seed)
    x = torch.as_tensor(x).long().to(_device(q))
    blocks = [s for s in boosted.block_starts if s <= x.shape[1]]
    outs = [log_mean_exp(log_weights(boosted, x[:, :s], propose(q, x[:, :s], k, particles, g))) for s in blocks]
    if not outs:
        empty = torch.zeros(x.shape[0], 0, dtype=torch.float64, device=x.device)
        return empty, empty.clone(), empty.clone()
    return tuple(torch.stack([o[i] for o in outs], 1) for i in range(3))


@torch.no_grad()
def smc_sample(
    boosted,
    num: int,
    *,
    particles: int = 256,
    ess_threshold: float = 0.5,
    max_particles: int = 4096,
    seed: int | torch.Generator = 0,
    progress=None,
) -> SMCResult:
    """num documents of the boosted model by SMC over its blocks (module docstring); tokens outside
    every block come from q. `progress`: a callable told the number of finished blocks."""
    if particles < 2 or max_particles < particles:
        raise InputError(f"need 2 ≤ particles ≤ max_particles, got {particles} and {max_particles}")
    if not 0 <= ess_threshold <= 1:
        raise InputError(f"ess_threshold is a share of the particles, in [0, 1]; got {ess_threshold}")
    q, k, n = boosted.q, boosted.k, boosted.length
    dev = _device(q)
    g = _generator(q, seed)
    x = torch.zeros(num, n, dtype=torch.long, device=dev)
    blocks = list(boosted.block_starts)
    shape = (num, len(blocks))
    log_z = torch.zeros(shape, dtype=torch.float64, device=dev)
    se, ess = torch.zeros_like(log_z), torch.zeros_like(log_z)
    used = torch.zeros(shape, dtype=torch.long, device=dev)
    head = blocks[0] if blocks else n
    if head and num:
        x[:, :head] = propose(q, x[:, :0], head, 1, g)[:, 0]
    for j, s in enumerate(blocks):
        todo, size = torch.arange(num, device=dev), particles
        while len(todo):
            w = propose(q, x[todo, :s], k, size, g)  # (B', N, k)
            lw = log_weights(boosted, x[todo, :s], w)
            lz, err, e = log_mean_exp(lw)
            retry = (e < ess_threshold * size) & (size * 2 <= max_particles)
            keep = ~retry
            rows = todo[keep]
            pick = _draw(lw[keep], g)
            x[rows, s : s + k] = w[keep].gather(1, pick[:, None, None].expand(-1, 1, k))[:, 0]
            log_z[rows, j], se[rows, j], ess[rows, j], used[rows, j] = lz[keep], err[keep], e[keep], size
            todo, size = todo[retry], size * 2
        if progress is not None:
            progress(1)
    tail = blocks[-1] + k if blocks else n
    if tail < n and num:
        x[:, tail:] = propose(q, x[:, :tail], n - tail, 1, g)[:, 0]
    return SMCResult(x, log_z, se, ess, used, blocks)


@torch.no_grad()
def smc_gain(boosted, documents: Tensor, *, particles: int = 256, seed: int | torch.Generator = 0) -> Estimate:
    """The gain Δ (nats per document; KL(p̄‖q̄') = KL(p̄‖q̄) − Δ) on documents of p (N, n): per document
    Σ_s [η d(x_{<s}, x_{s:s+k}) − log Ẑ_s(x_{<s})] with Z_s importance-sampled from `particles` q windows
    and log Ẑ corrected for its first-order bias (+ se²/2); mean and 95% interval over documents (the
    inner sampling noise is part of each document's value, so the interval includes it)."""
    x = torch.as_tensor(documents).long()
    if x.dim() != 2 or x.shape[1] != boosted.length:
        raise InputError(f"documents must be (N, {boosted.length}), got {tuple(x.shape)}")
    lz, err, _ = block_log_z(boosted, x, particles=particles, seed=seed)
    xd = x.to(lz.device)
    d = [boosted.d(xd[:, : s + boosted.k], s, boosted.k).double() for s in boosted.block_starts]
    per = (boosted.eta * torch.stack(d, 1) - (lz + err.pow(2) / 2)).sum(1) if d else torch.zeros(len(x))
    return mean_estimate(per.cpu(), f"importance-sampled log Z ({particles} q windows per block), over p documents")
