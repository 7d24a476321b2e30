"""Boosting a language model with a distinguisher (docs/theory.md §4; Lemmas 1–2, eq. 1.3–1.5).

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
from nextk.advantage import judge_all_windows, sample_windows, window_log_probs
from nextk.bounds import check_window
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

    State contract (nextk.lm): every row keeps its own position, history, trie node and trie, so rows
    at different positions step together; `log_probs` builds the tries of all blocks of all documents
    in one batched pass.
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
        v = self.vocab_size
        self._level_offsets = torch.tensor([sum(v**i for i in range(j)) for j in range(k + 2)])  # flat trie

    def __repr__(self) -> str:
        return f"Boosted(k={self.k}, offset={self.offset}, eta={self.eta:.4g}, blocks={self.block_starts})"

    # ---- the trie ----------------------------------------------------------------------------------
    def trie(self, q_state: State, prefix: Tensor, starts: int | Tensor | None = None) -> Tensor:
        """Φ of every trie node for the blocks starting after each row's prefix, levels flattened:
        (B, Σ_{j≤k} V^j), level j (the V^j nodes at depth j) at columns offsets[j]:offsets[j+1].
        `starts`: the block start of each row (int or (B,)); default prefix.shape[1]."""
        v, k, b = self.vocab_size, self.k, prefix.shape[0]
        check_enumeration(b * v**k, f"boosted trie ({b} blocks × {v}^{k} windows)")
        starts = prefix.shape[1] if starts is None else starts
        leaf = window_log_probs(self.q, q_state, k) + self.eta * judge_all_windows(self.d, prefix, starts, k, v)
        levels = [leaf]  # (B, V^k): log q(w|x_{<s}) + η d
        for _ in range(k):
            levels.insert(0, torch.logsumexp(levels[0].reshape(b, -1, v), dim=-1))
        return torch.cat(levels, dim=1)

    def tries(self, q_state: State, prefix: Tensor, starts: Tensor) -> Tensor:
        """`trie` for many rows in chunks that each fit the enumeration budget (one batched pass when
        they all fit): rows may be at different positions (the State contract)."""
        per = max(1, MAX_ENUMERATION // self.vocab_size**self.k)
        if len(starts) <= per:
            return self.trie(q_state, prefix, starts)
        chunks = [slice(i, i + per) for i in range(0, len(starts), per)]
        return torch.cat([self.trie(q_state[c], prefix[c], starts[c]) for c in chunks])

    def conditional(self, phi: Tensor, node: Tensor, depth: Tensor) -> Tensor:
        """q'(· | block prefix u) for each row: u is trie node `node` at depth `depth` (per row), phi the
        flattened trie (B, Σ V^j). (B, V); rows with Φ(u) = −inf (unreachable prefix) are uniform."""
        v, off = self.vocab_size, self._level_offsets
        parent = phi.gather(1, (off[depth] + node).unsqueeze(1))  # (B, 1)
        children = phi.gather(1, (off[depth + 1] + node * v).unsqueeze(1) + torch.arange(v))  # (B, V)
        out = children - parent
        out[torch.isneginf(parent).squeeze(1)] = -math.log(v)
        return out

    def block_depth(self, pos: Tensor) -> Tensor:
        """Depth t − s of each position t inside its block starting at s ∈ S_r, or −1 outside every block."""
        s = pos - (pos - self.offset) % self.k
        last = self.block_starts[-1] if self.block_starts else -1  # offset ≥ m: no block, q' = q
        inside = (pos >= self.offset) & (s <= last) & (pos < self.length)
        return torch.where(inside, pos - s, -1)

    # ---- LanguageModel ------------------------------------------------------------------------------
    def _block_tries(self, x: Tensor) -> tuple[list[int], Tensor]:
        """The tries of every block of every document of x (B, T) in one batched pass: q's states at
        all block starts concatenated (rows at different positions). Returns (starts, phi (nb·B, ΣV^j)),
        rows ordered block-major."""
        starts = [s for s in self.block_starts if s < x.shape[1]]
        if not starts:
            return starts, torch.zeros(0, 0, dtype=torch.float64)
        with torch.no_grad():
            states = states_along(self.q, x[:, : starts[-1]])
        batch = State.cat([states[s] for s in starts])
        block_start = torch.tensor(starts).repeat_interleave(x.shape[0])
        return starts, self.tries(batch, x.repeat(len(starts), 1), block_start)

    def log_probs(self, x: Tensor) -> Tensor:
        x = check_tokens(x, self.vocab_size, self.length)
        b, v = x.shape[0], self.vocab_size
        with torch.no_grad():
            out = self.q.log_probs(x).double().clone()  # (B, T, V): q outside the blocks
        starts, phi = self._block_tries(x)
        if not starts:
            return out
        st = torch.tensor(starts)
        node = torch.zeros(len(starts) * b, dtype=torch.long)
        for j in range(self.k):
            pos = st + j
            keep = pos < x.shape[1]
            if not keep.any():
                break
            rows = keep.repeat_interleave(b)
            lp = self.conditional(phi[rows], node[rows], torch.full((int(rows.sum()),), j))
            out[:, pos[keep]] = lp.reshape(-1, b, v).transpose(0, 1)
            tok = x[:, pos[keep]].T.reshape(-1)  # block-major, like the rows
            node[rows] = node[rows] * v + tok
        return out

    def log_prob(self, x: Tensor) -> Tensor:
        """log q̄'(x) = log q̄(x) + Σ_s [η d(x_{<s}, x_{s:s+k}) − log Z_s(x_{<s})] for full documents."""
        x = check_tokens(x, self.vocab_size, self.length)
        if x.shape[1] != self.length:
            return gather_log_prob(self.log_probs(x), x)
        with torch.no_grad():
            out = self.q.log_prob(x).double().clone()
        starts, phi = self._block_tries(x)
        if not starts:
            return out
        log_z = phi[:, 0].reshape(len(starts), -1)  # (blocks, B): the root of each trie
        for i, s in enumerate(starts):
            out += self.eta * self.d(x[:, : s + self.k], s, self.k).double() - log_z[i]
        return out

    def start(self, batch: int) -> State:
        hist = torch.zeros(batch, self.length, dtype=torch.long)
        z = torch.zeros(batch, dtype=torch.long)
        return self._enter(self.q.start(batch), hist, z, z.clone(), torch.zeros(batch, 0, dtype=torch.float64))

    def step(self, state: State, tokens: Tensor) -> tuple[State, Tensor]:
        t = state.tensors
        pos = t["pos"]
        if len(pos) and int(pos.max()) >= self.length:
            raise InputError(f"Boosted documents have {self.length} tokens; cannot read token {int(pos.max()) + 1}")
        tokens = tokens.long()
        q_state, _ = self.q.step(_unprefix(state, "q."), tokens)
        hist = t["hist"].clone()
        hist[torch.arange(len(pos)), pos] = tokens
        node = torch.where(self.block_depth(pos) >= 0, t["node"] * self.vocab_size + tokens, t["node"])
        new = self._enter(q_state, hist, pos + 1, node, t["phi"])
        return new, new.log_probs

    def _enter(self, q_state: State, hist: Tensor, pos: Tensor, node: Tensor, phi: Tensor) -> State:
        """State of every row at its own position: rows at a block start get their trie (one batched
        build for all of them), rows inside a block read q' from their trie, the others read q."""
        depth = self.block_depth(pos)
        fresh = (depth == 0).nonzero().squeeze(1)
        if len(fresh):
            width = int(self._level_offsets[-1])
            if phi.shape[1] < width:  # no row had a trie yet: allocate the flat levels
                phi = torch.nn.functional.pad(phi, (0, width - phi.shape[1]))
            phi = phi.clone()
            phi[fresh] = self.tries(q_state[fresh], hist[fresh], pos[fresh])
            node = node.clone()
            node[fresh] = 0
        lp = q_state.log_probs.double().clone()
        inside = (depth >= 0).nonzero().squeeze(1)
        if len(inside):
            lp[inside] = self.conditional(phi[inside], node[inside], depth[inside])
        tensors = {"log_probs": lp, "pos": pos, "hist": hist, "node": node, "phi": phi}
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
    """Δ per document: Σ_{s∈S_r} [η d(x_{<s}, x_{s:s+k}) − log Z_s(x_{<s})] (docs/theory.md §4)."""
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
