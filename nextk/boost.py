"""Boosting a language model with a distinguisher (THEORY.md §4; Lemmas 1–2, eq. 1.3–1.5).

Given q, d, a window k, an offset r and a step η, the blocks are the windows starting at
S_r = {s ≡ r (mod k), s ≤ m−1}, and

    q̄'(x) = q̄(x) · Π_{s∈S_r} exp(η d(x_{<s}, x_{s:s+k})) / Z_s(x_{<s}).

`Boosted` wraps q (no copy, no retraining) and is itself a LanguageModel: exact conditionals by one
trie of depth k per block, exact log-probabilities, exact rejection sampling. `boost` chooses (r, η)
on samples of p when they are not given, and reports the gain Δ against Lemma 1's guarantee.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from nextk import bounds
from nextk.advantage import check_window, judge_all_windows, sample_windows, window_log_probs
from nextk.errors import MAX_ENUMERATION, InputError, check_enumeration
from nextk.lm import State, check_tokens, gather_log_prob, make_generator, sample_by_steps, states_along
from nextk.stats import mean_estimate

ETA_MAX = 20.0  # |η| searched within [−ETA_MAX, ETA_MAX]; Δ saturates long before for checkers of p
LOW_ACCEPTANCE = 0.02  # below this guaranteed acceptance exp(−|η|), "auto" samples from the trie


def log_z(eta: float | Tensor, beta: Tensor) -> Tensor:
    """log Z = log(1 + (e^η − 1) β) = logaddexp(log(1−β), η + log β), stable for large |η|."""
    eta = torch.as_tensor(eta, dtype=torch.float64)
    return torch.logaddexp(torch.log1p(-beta.clamp(0, 1)), eta + beta.clamp(0, 1).log())


class Boosted:
    """q' = q boosted by d on the blocks of offset r with step η (eq. 1.3). A LanguageModel over
    documents of `length` tokens; `search_` holds how (r, η) were chosen when `boost` chose them.

    Exact conditionals (eq. 1.4–1.5): inside the block starting at s, with u = x_{s:t} written,
    q'(v | x_{<t}) = exp(Φ(uv) − Φ(u)), Φ(u) = log Σ_y q(uy | x_{<s}) e^{η d(x_{<s}, uy)}: the node
    log-sums of one trie of depth k, built once per block from Σ_{j≤k} V^j batched model steps.
    """

    exact = True

    def __init__(self, q, d, k: int, offset: int, eta: float, length: int):
        m = check_window(k, length)
        if not 0 <= offset < k:
            raise InputError(f"offset must be in 0..{k - 1}, got {offset}")
        self.q, self.d, self.k, self.offset, self.eta, self.length = q, d, k, offset, float(eta), length
        self.vocab_size = q.vocab_size
        self.block_starts = list(range(offset, m, k))
        self.search_: dict | None = None
        self.acceptance_: float | None = None

    def __repr__(self) -> str:
        return f"Boosted(k={self.k}, offset={self.offset}, eta={self.eta:.4g}, blocks={self.block_starts})"

    # ---- the trie ----------------------------------------------------------------------------------
    def trie(self, q_state: State, prefix: Tensor) -> list[Tensor]:
        """Φ at every depth for the blocks starting after `prefix` (B, s): [(B, 1), (B, V), …, (B, V^k)]."""
        v, k = self.vocab_size, self.k
        check_enumeration(prefix.shape[0] * v**k, f"boosted trie ({prefix.shape[0]} blocks × {v}^{k} windows)")
        leaf = window_log_probs(self.q, q_state, k) + self.eta * judge_all_windows(
            self.d, prefix, prefix.shape[1], k, v
        )  # (B, V^k): log q(w|x_{<s}) + η d
        phis = [leaf]
        for _ in range(k):
            phis.insert(0, torch.logsumexp(phis[0].reshape(prefix.shape[0], -1, v), dim=-1))
        return phis

    @staticmethod
    def conditional(phis: list[Tensor], node: Tensor, depth: int, v: int) -> Tensor:
        """q'(· | block prefix u = node at `depth`): (B, V); undefined (Φ(u) = −inf) rows uniform."""
        rows = torch.arange(len(node))
        children = phis[depth + 1].reshape(len(node), -1, v)[rows, node]  # (B, V)
        parent = phis[depth][rows, node].unsqueeze(1)
        out = children - parent
        dead = torch.isneginf(parent).squeeze(1)
        out[dead] = -math.log(v)
        return out

    def block_of(self, t: int) -> tuple[int, int] | None:
        """(block start s, depth t − s) if position t lies in a block, else None."""
        if t < self.offset:
            return None
        s = t - (t - self.offset) % self.k
        return (s, t - s) if s in self.block_starts else None

    # ---- LanguageModel ------------------------------------------------------------------------------
    def log_probs(self, x: Tensor) -> Tensor:
        x = check_tokens(x, self.vocab_size, self.length)
        v = self.vocab_size
        with torch.no_grad():
            out = self.q.log_probs(x).double().clone()  # (B, T, V): q outside the blocks
            starts = [s for s in self.block_starts if s < x.shape[1]]
            states = states_along(self.q, x[:, : starts[-1]]) if starts else []
        for s in starts:
            phis = self.trie(states[s], x[:, :s])
            node = torch.zeros(x.shape[0], dtype=torch.long)
            for j in range(min(self.k, x.shape[1] - s)):
                out[:, s + j] = self.conditional(phis, node, j, v)
                node = node * v + x[:, s + j]
        return out

    def log_prob(self, x: Tensor) -> Tensor:
        """log q̄'(x) = log q̄(x) + Σ_s [η d(x_{<s}, x_{s:s+k}) − log Z_s(x_{<s})] for full documents."""
        x = check_tokens(x, self.vocab_size, self.length)
        if x.shape[1] != self.length:
            return gather_log_prob(self.log_probs(x), x)
        with torch.no_grad():
            out = self.q.log_prob(x).double().clone()
            states = states_along(self.q, x[:, : self.block_starts[-1]])
        for s in self.block_starts:
            lz = self.trie(states[s], x[:, :s])[0][:, 0]
            out += self.eta * self.d(x[:, : s + self.k], s, self.k).double() - lz
        return out

    def start(self, batch: int) -> State:
        q_state = self.q.start(batch)
        hist = torch.zeros(batch, self.length, dtype=torch.long)
        return self._enter(q_state, hist, 0, torch.zeros(batch, dtype=torch.long), None)

    def step(self, state: State, tokens: Tensor) -> tuple[State, Tensor]:
        t = state.tensors
        pos = int(t["pos"][0])
        if pos >= self.length:
            raise InputError(f"Boosted documents have {self.length} tokens; cannot read token {pos + 1}")
        tokens = tokens.long()
        q_state, _ = self.q.step(_unprefix(state, "q."), tokens)
        hist = t["hist"].clone()
        hist[:, pos] = tokens
        node = t["node"] * self.vocab_size + tokens if self.block_of(pos) else t["node"]
        new = self._enter(q_state, hist, pos + 1, node, t.get("phi"))
        return new, new.log_probs

    def _enter(self, q_state: State, hist: Tensor, pos: int, node: Tensor, phi: Tensor | None) -> State:
        """State at position `pos`: builds the trie when a block starts here."""
        b = hist.shape[0]
        if pos in self.block_starts:
            phi = torch.cat(self.trie(q_state, hist[:, :pos]), dim=1)  # flattened levels (B, Σ V^j)
            node = torch.zeros(b, dtype=torch.long)
        if phi is None:
            phi = torch.zeros(b, 0, dtype=torch.float64)
        blk = self.block_of(pos) if pos < self.length else None
        if blk is None:
            lp = q_state.log_probs.double()
        else:
            v, depth = self.vocab_size, blk[1]
            sizes = [v**j for j in range(self.k + 1)]
            phis = list(phi.split(sizes, dim=1))
            lp = self.conditional(phis, node, depth, v)
        tensors = {
            "log_probs": lp,
            "pos": torch.full((b,), pos, dtype=torch.long),
            "hist": hist,
            "node": node,
            "phi": phi,
        }
        tensors.update({"q." + key: val for key, val in q_state.tensors.items()})
        return State(tensors)

    # ---- sampling -----------------------------------------------------------------------------------
    def sample(
        self, num: int, length: int | None = None, *, generator=None, prefix=None, method: str = "auto"
    ) -> Tensor:
        """Exact samples. method="rejection": each block drawn from q and accepted with probability
        exp(η d − max(η, 0)) (acceptance ≥ exp(−|η|), reported in `acceptance_`); "trie": ancestral
        sampling through the exact conditionals; "auto": rejection unless exp(−|η|) < LOW_ACCEPTANCE."""
        length = self.length if length is None else length
        if not 0 <= length <= self.length:
            raise InputError(f"length={length} but Boosted documents have {self.length} tokens")
        if method not in ("auto", "rejection", "trie"):
            raise InputError(f"unknown method={method!r}; choose 'auto', 'rejection' or 'trie'")
        g = make_generator(generator)
        if method == "auto":
            method = "trie" if math.exp(-abs(self.eta)) < LOW_ACCEPTANCE or prefix is not None else "rejection"
        if method == "trie":
            return sample_by_steps(self, num, length, g, prefix)
        if prefix is not None:
            raise InputError("rejection sampling does not take a prefix; use method='trie'")
        return self._rejection(num, g)[:, :length]

    @torch.no_grad()
    def _rejection(self, num: int, g: torch.Generator) -> Tensor:
        out = torch.zeros(num, self.length, dtype=torch.long)
        state = self.q.start(num)
        proposals = accepted = 0
        t = 0
        while t < self.length:
            if t in self.block_starts:
                window = torch.zeros(num, self.k, dtype=torch.long)
                pending = torch.arange(num)
                while len(pending):
                    w = sample_windows(self.q, state[pending], self.k, g)
                    dd = self.d(torch.cat([out[pending, :t], w], dim=1), t, self.k).double()
                    ok = torch.rand(len(pending), generator=g, dtype=torch.float64) < torch.exp(
                        self.eta * dd - max(self.eta, 0.0)
                    )
                    window[pending[ok]] = w[ok]
                    proposals, accepted = proposals + len(pending), accepted + int(ok.sum())
                    pending = pending[~ok]
                for j in range(self.k):
                    out[:, t + j] = window[:, j]
                    if t + j + 1 < self.length:
                        state, _ = self.q.step(state, window[:, j])
                t += self.k
            else:
                tok = torch.multinomial(state.log_probs.double().exp(), 1, generator=g).squeeze(1)
                out[:, t] = tok
                if t + 1 < self.length:
                    state, _ = self.q.step(state, tok)
                t += 1
        self.acceptance_ = accepted / proposals if proposals else 1.0
        return out

    # ---- Monte-Carlo path (V^k too large to enumerate) --------------------------------------------
    @torch.no_grad()
    def log_prob_mc(self, x: Tensor, num_windows: int = 1024, seed: int | torch.Generator = 0) -> tuple[Tensor, Tensor]:
        """log q̄'(x) with each Z_s = 1 + (e^η − 1) E_q d estimated from `num_windows` sampled windows:
        (estimate (B,), standard error (B,) by the delta method). No enumeration of Σ^k."""
        x = check_tokens(x, self.vocab_size, self.length)
        g = make_generator(seed)
        out = self.q.log_prob(x).double().clone()
        var = torch.zeros(x.shape[0], dtype=torch.float64)
        states = states_along(self.q, x[:, : self.block_starts[-1]])
        for s in self.block_starts:
            w = sample_windows(self.q, states[s].repeat(num_windows), self.k, g)
            dd = self.d(torch.cat([x[:, :s].repeat_interleave(num_windows, 0), w], 1), s, self.k).double()
            beta = dd.reshape(-1, num_windows).mean(1)
            se_beta = dd.reshape(-1, num_windows).std(1) / math.sqrt(num_windows)
            lz = log_z(self.eta, beta)
            out += self.eta * self.d(x[:, : s + self.k], s, self.k).double() - lz
            var += (math.expm1(self.eta) * se_beta / lz.exp()) ** 2
        return out, var.sqrt()


def _unprefix(state: State, prefix: str) -> State:
    return State({k[len(prefix) :]: v for k, v in state.tensors.items() if k.startswith(prefix)})


@dataclass(frozen=True)
class OffsetReport:
    """How one offset r does: its advantage α_r, the chosen η, the achieved gain Δ (held-out
    documents) and Lemma 1's guarantee |S_r|·α_r²/4 with the gain actually achieved at η = α_r/2."""

    offset: int
    blocks: int
    alpha: dict
    eta: float
    gain: dict
    lemma1_guarantee: float
    gain_at_half_alpha: dict

    def to_dict(self) -> dict:
        return asdict(self)


def window_statistics(
    p, q, d, k: int, x: Tensor, num_windows: int = 256, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, str]:
    """For documents x (N, n) from p and every start s < m: D[:, s] = d on the true window and
    β[:, s] = E_{w∼q(·|x_{<s})} d(x_{<s}, w) — exact by window enumeration when N·V^k fits the budget,
    otherwise a mean over `num_windows` sampled windows. Returns (D, β, how β was computed)."""
    m = check_window(k, p.length)
    v = q.vocab_size
    with torch.no_grad():
        states = states_along(q, x[:, : m - 1])
    D = torch.stack([d(x[:, : s + k], s, k).double() for s in range(m)], dim=1)
    if x.shape[0] * v**k <= MAX_ENUMERATION:
        beta = [
            (window_log_probs(q, states[s], k).exp() * judge_all_windows(d, x[:, :s], s, k, v)).sum(1) for s in range(m)
        ]
        how = "exact E_q d (window enumeration)"
    else:
        g = make_generator(generator)
        beta = []
        for s in range(m):
            w = sample_windows(q, states[s].repeat(num_windows), k, g)
            dd = d(torch.cat([x[:, :s].repeat_interleave(num_windows, 0), w], 1), s, k).double()
            beta.append(dd.reshape(-1, num_windows).mean(1))
        how = f"E_q d from {num_windows} sampled windows per prefix (V^k too large to enumerate)"
    return D, torch.stack(beta, dim=1).clamp(0, 1), how


def gain_per_doc(eta: float, D: Tensor, beta: Tensor, blocks: list[int]) -> Tensor:
    """Δ per document: Σ_{s∈S_r} [η d(x_{<s}, x_{s:s+k}) − log Z_s(x_{<s})] (THEORY.md §4)."""
    return (eta * D[:, blocks] - log_z(eta, beta[:, blocks])).sum(1)


def best_eta(D: Tensor, beta: Tensor, blocks: list[int]) -> float:
    """argmax_η of the mean gain: a 1-D concave maximisation (log Z is convex in η)."""
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(
        lambda e: -gain_per_doc(e, D, beta, blocks).mean().item(),
        bounds=(-ETA_MAX, ETA_MAX),
        method="bounded",
        options={"xatol": 1e-7},
    )
    return float(res.x)


def boost(
    q,
    d,
    k: int,
    *,
    offset: int | None = None,
    eta: float | None = None,
    p=None,
    length: int | None = None,
    num_docs: int = 512,
    seed: int | torch.Generator = 0,
) -> Boosted:
    """Boost q with distinguisher d at window k (Lemmas 1–2).

    With `offset` and `eta` both given nothing is searched (`p` is not needed; `length` or `p` gives
    the document length). Otherwise each offset r is tried: η maximises the gain Δ(r, η) on
    `num_docs` documents of p, Δ is reported with its interval on `num_docs` other documents, and the
    best r is kept. `result.search_` lists every offset's α_r, η, Δ and Lemma 1's guarantee.
    """
    n = p.length if p is not None else length
    if n is None:
        raise InputError("give p (samples of the truth) or length= (the document length)")
    m = check_window(k, n)
    if offset is not None and eta is not None:
        return Boosted(q, d, k, offset, eta, n)
    if p is None:
        raise InputError("choosing offset/eta needs samples of the truth: pass p=, or give both offset= and eta=")
    g = make_generator(seed)
    fit_x, test_x = p.sample(num_docs, generator=g), p.sample(num_docs, generator=g)
    *fit, how = window_statistics(p, q, d, k, fit_x, generator=g)
    *test, _ = window_statistics(p, q, d, k, test_x, generator=g)
    reports = []
    for r in [offset] if offset is not None else range(min(k, m)):
        blocks = list(range(r, m, k))
        e = best_eta(*fit, blocks) if eta is None else float(eta)
        alpha = mean_estimate((test[0][:, blocks] - test[1][:, blocks]).mean(1), f"held-out p documents, {how}")
        half = alpha.value / 2
        reports.append(
            OffsetReport(
                offset=r,
                blocks=len(blocks),
                alpha=alpha.to_dict(),
                eta=e,
                gain=mean_estimate(gain_per_doc(e, *test, blocks), "held-out p documents").to_dict(),
                lemma1_guarantee=len(blocks) * alpha.value**2 / 4,
                gain_at_half_alpha=mean_estimate(gain_per_doc(half, *test, blocks), "held-out p documents").to_dict(),
            )
        )
    chosen = max(reports, key=lambda rep: gain_per_doc(rep.eta, *fit, list(range(rep.offset, m, k))).mean().item())
    out = Boosted(q, d, k, chosen.offset, chosen.eta, n)
    out.search_ = {
        "offset": chosen.offset,
        "eta": chosen.eta,
        "gain": chosen.gain,
        "lemma1_guarantee_overall": bounds.lemma1_guarantee(
            mean_estimate((test[0] - test[1]).mean(1), "held-out").value, k, n
        ),
        "lemma1_guarantee_tight": bounds.lemma1_guarantee_tight(
            mean_estimate((test[0] - test[1]).mean(1), "held-out").value, k, n
        ),
        "offsets": [rep.to_dict() for rep in reports],
        "num_docs": num_docs,
        "beta_method": how,
    }
    return out


def distill(boosted: Boosted, model, *, num_docs: int | None = None, **train_kwargs):
    """Train a fresh network on samples of the boosted model: puts the boosted distribution back into
    a fixed-size network. Fresh samples each step (num_docs=None) or a fixed set. Returns the TrainResult."""
    from nextk.train import train

    return train(model, boosted, data=num_docs, **train_kwargs)
