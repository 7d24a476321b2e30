"""Boosting at any vocabulary size (docs/theory.md §4), where the exact trie (Σ_{j≤k} V^j model steps per
block) cannot be built: sampling the boosted model block by block, and its gain Δ on documents of p.

The boosted model (eq. 1.3) is normalised block by block:

    q̄'(x) = q̄(x) · Π_{s∈S_r} e^{η d(x_{<s}, x_{s:s+k})} / Z_s(x_{<s}),
    Z_s(x_{<s}) = E_{w∼q(·|x_{<s})} e^{η d(x_{<s}, w)},

so each block is drawn from q's window law at the document's own prefix, tilted by e^{η d}.

`smc_sample(method="rejection")` (the default) draws it exactly: windows w ∼ q(· | x_{<s}) are proposed
`particles` at a time (one pass along the prefix, then N branches) and the first one accepted with
probability e^{η d(w) − max(η, 0)} is kept. Acceptance is at least e^{−|η|} and the kept window follows
the tilted law exactly at any N (the first success of an iid sequence); N only sets the batch width.

`method="sir"` is sampling-importance-resampling with a fixed population of N windows: the survivor is
drawn ∝ e^{η d}. It is biased at finite N, and because d is a {0, 1} test the bias is known exactly: given
β = P_q(d = 1 | x_{<s}), the number K of d = 1 particles is Binomial(N, β), the survivor has d = 1 with
probability E_K[K e^η / (K e^η + N − K)] instead of β e^η / Z, and given its d it is an exact draw of q
conditioned on d. `sir_block_tv` computes that total-variation distance; the result's `tv_bound` is its
supremum over β times the number of blocks (a bound on the documents' TV by the hybrid argument), so SIR
is never used silently. (An earlier version redrew a block whose ESS fell below a threshold; a
population with no d = 1 window has ESS = N and was always kept, so the draws holding a rare d = 1
window were the ones thrown away. That redraw is gone.)

The gain Δ = Σ_{s∈S_r} E_{x∼p̄}[η d(x_{<s}, x_{s:s+k}) − log Z_s(x_{<s})] (the KL it removes) is estimated
on documents of p with each Z_s importance-sampled from q (`smc_gain`). Ẑ = 1 + (e^η − 1) K/N is unbiased,
so log Ẑ is biased low (Jensen) and Δ̂ high, by at most `log_z_bias_bound(η, N)` per block: the exact
binomial expectation, maximised over β. The reported interval's low end is lowered by that bound.

Every tensor is created on q's device (`q.device` when it has one): windows come from
`q.branch_windows` when q has it (nextk.models.HuggingFace: one pass per prefix, N·k batched tokens),
otherwise from q's state repeated N times (any LanguageModel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from nextk.advantage import sample_windows
from nextk.errors import InputError
from nextk.lm import make_generator, states_along
from nextk.stats import Estimate, mean_estimate


@dataclass
class SMCResult:
    """Samples of a boosted model, with per-document, per-block diagnostics.

    samples (num, n); log_z, log_z_stderr, ess: (num, blocks) for the blocks at `block_starts` of each
    sample's own prefix: the importance-sampling estimate of log Z_s(x_{<s}) from the first N proposals,
    its standard error and their effective sample size; particles: proposals used (rejection) or the
    population (sir). `tv_bound`: how far the sampler's law of documents can be from q̄' in TV."""

    samples: Tensor
    log_z: Tensor
    log_z_stderr: Tensor
    ess: Tensor
    particles: Tensor  # rejection: proposals until acceptance; sir: the population size
    block_starts: list
    method: str = "rejection"  # "rejection" (exact) or "sir" (biased by at most tv_bound)
    tv_bound: float = 0.0  # bound on TV(sampled law, q̄') of whole documents: 0 for rejection

    def log_z_total(self) -> tuple[Tensor, Tensor]:
        """Σ_s log Z_s(x_{<s}) per sample and its standard error (blocks estimated independently)."""
        return self.log_z.sum(1), self.log_z_stderr.pow(2).sum(1).sqrt()

    def summary(self) -> dict:
        """JSON-safe diagnostics: ESS and particles per block (mean over samples), low-ESS share."""
        return {
            "method": self.method,
            "tv_bound": self.tv_bound,
            "acceptance": (self.particles.shape[0] / self.particles.double().sum(0)).tolist()
            if self.method == "rejection"
            else None,
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
    """η d(x_{<s}, w) for every proposed window (0 / −∞ at η = ±∞, `Boosted.weight`): prefix (B, s), windows
    (B, N, k) → float64 (B, N)."""
    b, num, k = windows.shape
    s = prefix.shape[1]
    x = torch.cat([prefix.repeat_interleave(num, 0), windows.reshape(b * num, k)], 1)
    return boosted.weight(boosted.judge(x, s, k)).reshape(b, num)


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


def _binomial_pmf(particles: int, beta: np.ndarray) -> np.ndarray:
    """P(K = j), K ∼ Binomial(N, β), for every β (G,) and j ≤ N: (G, N + 1)."""
    from scipy.stats import binom

    return binom.pmf(np.arange(particles + 1)[None, :], particles, np.asarray(beta, dtype=float)[:, None])


def _beta_grid() -> np.ndarray:
    """β values for a supremum over [0, 1]: log-spaced near 0 and 1 (where the extremes sit), linear between."""
    tail = np.logspace(-9, -0.3, 400)
    return np.unique(np.concatenate([[0.0, 1.0], tail, 1 - tail, np.linspace(0, 1, 401)]))


def sir_block_tv(beta, eta: float, particles: int) -> np.ndarray:
    """TV between the SIR survivor's block law (N particles) and the tilted block law, given β = P_q(d = 1):
    |E_K[K e^η / (K e^η + N − K)] − β e^η / (1 − β + β e^η)|, K ∼ Binomial(N, β) (module docstring)."""
    beta = np.atleast_1d(np.asarray(beta, dtype=float))
    j = np.arange(particles + 1)
    w = np.exp(-abs(eta))  # weights rescaled by e^{−|η|}: no overflow
    hi, lo = (1.0, w) if eta >= 0 else (w, 1.0)  # weight of d = 1 and of d = 0
    survivor = np.where(j > 0, j * hi / np.maximum(j * hi + (particles - j) * lo, 1e-300), 0.0)
    sir = (_binomial_pmf(particles, beta) * survivor[None, :]).sum(1)
    exact = beta * hi / (beta * hi + (1 - beta) * lo)
    return np.abs(sir - exact)


def log_z_bias(beta, eta: float, particles: int) -> np.ndarray:
    """log Z − E log Ẑ ≥ 0 for Ẑ = 1 + (e^η − 1) K/N, K ∼ Binomial(N, β), Z = 1 + (e^η − 1) β (exact sum)."""
    beta = np.atleast_1d(np.asarray(beta, dtype=float))
    j = np.arange(particles + 1) / particles

    def lz(b):  # log(1 + (e^η − 1) b) = logaddexp(log(1 − b), η + log b), stable at large |η|
        with np.errstate(divide="ignore"):
            return np.logaddexp(np.log1p(-b), eta + np.log(b))

    return lz(beta) - (_binomial_pmf(particles, beta) * lz(j)[None, :]).sum(1)


SUP_MARGIN = 0.01  # relative safety margin on a supremum found by grid + local refinement (bounds stay bounds)


def _supremum(f, eta: float, particles: int) -> float:
    """sup over β ∈ [0, 1] of f(β, η, N): the grid's maximum, refined by a bounded 1-D search between the
    argmax's grid neighbours (the grid alone fell short by up to ~2·10⁻⁴ relative), times 1 + SUP_MARGIN
    to cover what a local search can miss."""
    from scipy.optimize import minimize_scalar

    grid = _beta_grid()
    values = f(grid, eta, particles)
    j = int(values.argmax())
    best = float(values[j])
    lo, hi = grid[max(j - 1, 0)], grid[min(j + 1, len(grid) - 1)]
    if hi > lo:
        for a, b in ((lo, grid[j]), (grid[j], hi)):  # each side of the argmax: the maximum may sit on either
            if b > a:
                r = minimize_scalar(
                    lambda x: -float(f(x, eta, particles)[0]),
                    bounds=(a, b),
                    method="bounded",
                    options={"xatol": 1e-14 + 1e-10 * b},
                )
                best = max(best, -float(r.fun))
    return best * (1 + SUP_MARGIN)


def log_z_bias_bound(eta: float, particles: int) -> float:
    """sup over β ∈ [0, 1] of `log_z_bias` (`_supremum`: grid, refinement, stated margin): the most log Ẑ
    from N particles can fall short of log Z per block."""
    return _supremum(log_z_bias, eta, particles)


def sir_tv_bound(eta: float, particles: int) -> float:
    """sup over β of `sir_block_tv` (`_supremum`): the largest TV of one SIR block draw from the tilted law."""
    return _supremum(sir_block_tv, eta, particles)


@torch.no_grad()
def smc_sample(
    boosted,
    num: int,
    *,
    particles: int = 256,
    method: str = "rejection",
    max_proposals: int = 1_000_000,
    ess_threshold: float | None = None,
    max_particles: int | None = None,
    seed: int | torch.Generator = 0,
    progress=None,
) -> SMCResult:
    """num documents of the boosted model (module docstring); tokens outside every block come from q.

    method="rejection" (exact at any N; `particles` windows are proposed per round; a row that needs more
    than `max_proposals` proposals for one block is refused, naming the acceptance) or "sir" (a population
    of `particles`, biased by at most the result's `tv_bound`). `progress`: a callable told the number of
    finished blocks. `ess_threshold` and `max_particles` are refused: the ESS-conditioned redraw they drove
    sampled the wrong law."""
    if max_particles is not None:
        raise InputError(
            "max_particles: it capped the ESS-conditioned redraw, which drew from the wrong distribution and was "
            "removed; use method='rejection' (exact at any particles) or 'sir' with its stated tv_bound"
        )
    if ess_threshold is not None:
        raise InputError(
            "ess_threshold: the ESS-conditioned redraw drew from the wrong distribution (it discarded the "
            "populations holding rare d = 1 windows) and was removed; use method='rejection' (exact) or 'sir'"
        )
    if method not in ("rejection", "sir"):
        raise InputError(f"unknown method={method!r}; choose 'rejection' or 'sir'")
    if particles < 2:
        raise InputError(f"particles must be ≥ 2, got {particles}")
    eta = boosted.eta
    if method == "sir" and not math.isfinite(eta):
        raise InputError(f"SIR needs a finite η (got {eta}); the limit η = ±∞ is sampled by method='rejection'")
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
    top = max(eta, 0.0) if math.isfinite(eta) else 0.0  # log of the largest weight e^{η d}
    for j, s in enumerate(blocks):
        all_rows = torch.arange(num, device=dev)
        w = propose(q, x[:, :s], k, particles, g)  # (B, N, k)
        lw = log_weights(boosted, x[:, :s], w)
        log_z[:, j], se[:, j], ess[:, j] = log_mean_exp(lw)
        if method == "sir":
            pick = _draw(lw, g)
            x[:, s : s + k] = w.gather(1, pick[:, None, None].expand(-1, 1, k))[:, 0]
            used[:, j] = particles
        todo = all_rows
        while method == "rejection" and len(todo):
            u = torch.rand(lw.shape, generator=g, dtype=torch.float64, device=_rand_device(g)).to(lw.device)
            ok = u < (lw - top).exp()  # accept with probability e^{η d − max(η, 0)}
            has = ok.any(1)
            first = ok.double().argmax(1)
            rows = todo[has]
            x[rows, s : s + k] = w[has].gather(1, first[has][:, None, None].expand(-1, 1, k))[:, 0]
            used[todo, j] += torch.where(has, first + 1, particles)
            todo = todo[~has]
            if len(todo) and int(used[todo, j].max()) >= max_proposals:
                raise InputError(
                    f"rejection sampling of block {s}: {len(todo)} documents had no window accepted in "
                    f"{max_proposals:,} proposals (acceptance ≥ e^(−|η|) = {math.exp(-abs(eta)):.2e}, lower where "
                    "q gives d's side no mass); lower η or raise max_proposals"
                )
            if len(todo):
                w = propose(q, x[todo, :s], k, particles, g)
                lw = log_weights(boosted, x[todo, :s], w)
        if progress is not None:
            progress(1)
    tail = blocks[-1] + k if blocks else n
    if tail < n and num:
        x[:, tail:] = propose(q, x[:, :tail], n - tail, 1, g)[:, 0]
    bound = 0.0 if method == "rejection" else min(1.0, len(blocks) * sir_tv_bound(eta, particles))
    return SMCResult(x, log_z, se, ess, used, blocks, method, bound)


def _rand_device(g) -> torch.device:
    dev = getattr(g, "device", None)
    return dev if isinstance(dev, torch.device) else torch.device("cpu")


@torch.no_grad()
def smc_gain(
    boosted,
    documents: Tensor,
    *,
    particles: int = 256,
    max_bias: float | None = None,
    seed: int | torch.Generator = 0,
) -> Estimate:
    """The gain Δ (nats per document; KL(p̄‖q̄') = KL(p̄‖q̄) − Δ) on documents of p (N, n): per document
    Σ_s [η d(x_{<s}, x_{s:s+k}) − log Ẑ_s(x_{<s})] with Z_s importance-sampled from `particles` q windows;
    mean and 95% interval over documents (the inner sampling noise is part of each document's value).

    log Ẑ is biased low, so the mean is biased high by B ∈ [0, blocks · log_z_bias_bound(η, N)]; the
    interval's low end is lowered by that bound and the method states it. `max_bias` (nats per document):
    double the particles until the bound is at most this."""
    x = torch.as_tensor(documents).long()
    if x.dim() != 2 or x.shape[1] != boosted.length:
        raise InputError(f"documents must be (N, {boosted.length}), got {tuple(x.shape)}")
    eta = boosted.eta
    if not math.isfinite(eta):
        raise InputError(
            f"smc_gain needs a finite η (got {eta}): at η = ±∞ log Ẑ is −∞ whenever no particle has d's side"
        )
    nb = len(boosted.block_starts)
    bias = nb * log_z_bias_bound(eta, particles)
    while max_bias is not None and bias > max_bias:
        if particles >= 2**20:
            raise InputError(f"the bias of log Ẑ stays above max_bias={max_bias} up to 2^20 particles at η = {eta}")
        particles *= 2
        bias = nb * log_z_bias_bound(eta, particles)
    lz, _, _ = block_log_z(boosted, x, particles=particles, seed=seed)
    xd = x.to(lz.device)
    d = [boosted.d(xd[:, : s + boosted.k], s, boosted.k).double() for s in boosted.block_starts]
    per = (eta * torch.stack(d, 1) - lz).sum(1) if d else torch.zeros(len(x), dtype=torch.float64)
    est = mean_estimate(per.cpu(), "")
    method = (
        f"importance-sampled log Z ({particles} q windows per block), over p documents; log Ẑ is biased low, so "
        f"the value is biased high by at most {bias:.3g} nats/document (exact binomial bound at {particles} "
        "particles, sup over β = P_q(d = 1)): the interval's low end is lowered by it"
    )
    return Estimate(est.value, est.stderr, est.low - bias, est.high, est.n, method)
