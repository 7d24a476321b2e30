"""Boosting a language model with a distinguisher (docs/theory.md §4; Lemmas 1–2, eq. 1.3–1.5).

Given q, d, a window k, an offset r and a step η, the blocks are the windows starting at
S_r = {s ≡ r (mod k), s ≤ m−1}, and

    q̄'(x) = q̄(x) · Π_{s∈S_r} exp(η d(x_{<s}, x_{s:s+k})) / Z_s(x_{<s}).

`Boosted` wraps q (no copy, no retraining) and is itself a LanguageModel: exact conditionals by one
trie of depth k per block, exact log-probabilities, exact rejection sampling. `boost` chooses (r, η)
on samples of p when they are not given, and reports the gain Δ against Lemma 1's guarantee.

The step η is infinite only when that is proven. When d accepts every true window of p in the blocks,
Δ(η) increases without bound in η toward the rejection limit: η → +∞ conditions q's blocks on d = 1, and
Δ∞ = −Σ_s E_p log P_q(d = 1 | x_{<s}). But a finite sample in which d accepted every window does not show
P_p(d = 0) = 0, and one violating document makes the limit's KL infinite. So `boost` takes the limit
η = +∞ only when P_p(d = 0) = 0 on the blocks is proven (`support_proof`): exactly, by enumerating p's
support, or because d is one of p's own checks (a rule every document of p keeps). Otherwise η maximises
Δ under the largest violation rate the sample allows, ε = 1 − 0.05^{1/N} (the one-sided 95% Clopper–
Pearson bound at 0 violations in N documents), per block: a finite step, and the held-out interval of Δ
is lowered by |η| Σ_s ε_s for the violations it cannot have seen. Symmetrically for η → −∞ when d rejects
every true window. Otherwise the maximum is interior and Δ'(η) = 0 there (`choose_eta`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from nextk import bounds
from nextk.advantage import judge_all_windows, sample_windows, window_log_probs
from nextk.bounds import check_window
from nextk.errors import MAX_ENUMERATION, InputError, TooLargeError, check_enumeration
from nextk.lm import State, check_tokens, gather_log_prob, make_generator, sample_by_steps, states_along
from nextk.measure import batched_log_prob, check_pair, support
from nextk.stats import mean_estimate

ETA_BRACKET = 2.0**20  # the root of Δ'(η) is bracketed by doubling up to this |η| (a finite maximum lies far below)
LOW_ACCEPTANCE = 0.02  # below this guaranteed acceptance exp(−|η|), "auto" samples from the trie (when it fits)
CONFIDENCE = 0.95  # of the Clopper–Pearson bound on the violation rate a sample without violations allows


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

    def judge(self, x: Tensor, start: int | Tensor, k: int) -> Tensor:
        """d(x, start, k), with a one-line error naming the distinguisher contract when d breaks it."""
        return _judge(self.d, x, start, k)

    # ---- the block weight e^{η d}, including the limits η = ±∞ ----------------------------------------
    def weight(self, dd: Tensor) -> Tensor:
        """log of the block weight: η·d for a finite η; for η = +∞ the conditioning limit log 1[d = 1]
        (0 or −∞), for η = −∞ log 1[d = 0]. The normaliser Z_s (the trie root) follows the same convention,
        so every conditional and log q̄' is exact in the limit too."""
        dd = dd.double()
        if math.isfinite(self.eta):
            return self.eta * dd
        keep = dd > 0 if self.eta > 0 else dd <= 0
        return torch.where(keep, 0.0, -math.inf).double()

    def _log_accept(self, dd: Tensor) -> Tensor:
        """log of the rejection sampler's acceptance probability: weight − its maximum over d ∈ {0, 1}."""
        top = max(self.eta, 0.0) if math.isfinite(self.eta) else 0.0
        return self.weight(dd) - top

    def _log_z(self, beta: Tensor) -> Tensor:
        """log Z_s from β_s = E_q d, in the convention of `weight`."""
        if math.isfinite(self.eta):
            return log_z(self.eta, beta)
        return (beta if self.eta > 0 else 1 - beta).clamp(0, 1).log()

    # ---- the trie ----------------------------------------------------------------------------------
    def trie(self, q_state: State, prefix: Tensor, starts: int | Tensor | None = None) -> Tensor:
        """Φ of every trie node for the blocks starting after each row's prefix, levels flattened:
        (B, Σ_{j≤k} V^j), level j (the V^j nodes at depth j) at columns offsets[j]:offsets[j+1].
        `starts`: the block start of each row (int or (B,)); default prefix.shape[1]."""
        v, k, b = self.vocab_size, self.k, prefix.shape[0]
        check_enumeration(b * v**k, f"boosted trie ({b} blocks × {v}^{k} windows)")
        starts = prefix.shape[1] if starts is None else starts
        leaf = window_log_probs(self.q, q_state, k) + self.weight(judge_all_windows(self.judge, prefix, starts, k, v))
        levels = [leaf]  # (B, V^k): log q(w|x_{<s}) + η d
        for _ in range(k):
            levels.insert(0, torch.logsumexp(levels[0].reshape(b, -1, v), dim=-1))
        return torch.cat(levels, dim=1)

    def tries(self, q_state: State, prefix: Tensor, starts: Tensor) -> Tensor:
        """`trie` for many rows in chunks that each fit the enumeration budget (one batched pass when
        they all fit): rows may be at different positions (the State contract)."""
        per = max(1, (MAX_ENUMERATION // 4) // self.vocab_size**self.k)  # judged windows: rows·V^k × width ints
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
            out += self.weight(self.judge(x[:, : s + self.k], s, self.k)) - log_z[i]
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
        sampling through the exact conditionals; "auto": rejection unless exp(−|η|) < LOW_ACCEPTANCE and the tries
        fit the enumeration budget."""
        length = self.length if length is None else length
        if not 0 <= length <= self.length:
            raise InputError(f"length={length} but Boosted documents have {self.length} tokens")
        if method not in ("auto", "rejection", "trie"):
            raise InputError(f"unknown method={method!r}; choose 'auto', 'rejection' or 'trie'")
        g = make_generator(generator)
        if method == "auto":
            fits = num * self.vocab_size**self.k <= MAX_ENUMERATION  # the trie is exact only where it can be built
            low = math.exp(-abs(self.eta)) < LOW_ACCEPTANCE
            method = "trie" if prefix is not None or (low and fits) else "rejection"
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
                    dd = self.judge(torch.cat([out[pending, :t], w], dim=1), t, self.k).double()
                    ok = torch.rand(len(pending), generator=g, dtype=torch.float64) < self._log_accept(dd).exp()
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
            dd = self.judge(torch.cat([x[:, :s].repeat_interleave(num_windows, 0), w], 1), s, self.k).double()
            beta = dd.reshape(-1, num_windows).mean(1)
            se_beta = dd.reshape(-1, num_windows).std(1) / math.sqrt(num_windows)
            lz = self._log_z(beta)
            out += self.weight(self.judge(x[:, : s + self.k], s, self.k)) - lz
            slope = math.expm1(self.eta) / lz.exp() if math.isfinite(self.eta) else 1 / lz.exp()  # |d log Z / dβ|
            var += (slope * se_beta) ** 2
        return out, var.sqrt()


def _judge(d, x: Tensor, start: int | Tensor, k: int) -> Tensor:
    """d(x, start, k); an error inside d (typically indexing with a per-row `start` as if it were an int)
    becomes one line that names the contract."""
    try:
        return d(x, start, k)
    except InputError:
        raise
    except (TypeError, IndexError, RuntimeError, ValueError) as e:
        given = "an int" if isinstance(start, int) else f"a LongTensor of {len(start)} starts, one per row"
        cause = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise InputError(
            f"distinguisher {getattr(d, '__name__', type(d).__name__)} failed when given start as {given} "
            f"({cause}); the contract: d(x, start, k) gets `start` as an int or a LongTensor with one start per "
            "row, and must handle both (nextk.distinguishers.checks.clip does this)"
        ) from None


def _unprefix(state: State, prefix: str) -> State:
    return State({k[len(prefix) :]: v for k, v in state.tensors.items() if k.startswith(prefix)})


@dataclass(frozen=True)
class EtaChoice:
    """The step that maximises the mean gain on the fitting documents (`choose_eta`).

    kind: "interior" (a finite η with Δ'(η) = 0 to solver precision), "limit +inf" / "limit -inf" (d
    accepts / rejects every true window and P_p(d = 0) = 0 (resp. 1) is proven: η = ±∞ conditions q on
    d = 1 / d = 0), "guarded +" / "guarded -" (d accepted / rejected every fitting window but that is not
    proven: the finite maximum of Δ(η) − |η| Σ_s ε_s, ε_s the violation rate the sample allows), "given",
    or "flat" (d is constant on the true and on q's windows: Δ ≡ 0, η = 0)."""

    eta: float
    kind: str
    gain: float  # mean Δ per document at η on the fitting documents (the limit Δ±∞ for a limit)
    derivative: float  # Δ'(η) there: ≈ 0 at an interior maximum; 0⁺ approaching a limit
    proof: str | None = None  # how P_p(d = 0) = 0 (resp. 1) was proven, for a limit
    violation_bound: float | None = None  # ε per block, for a guarded step

    def to_dict(self) -> dict:
        return {
            "eta": self.eta if math.isfinite(self.eta) else None,
            "kind": self.kind,
            "gain_fit": self.gain if math.isfinite(self.gain) else None,
            "derivative_fit": self.derivative,
            "proof": self.proof,
            "violation_bound": self.violation_bound,
        }


@dataclass(frozen=True)
class OffsetReport:
    """How one offset r does: its advantage α_r, the chosen η (`eta_choice`: interior or a limit), the
    achieved gain Δ (held-out documents) and Lemma 1's guarantee |S_r|·α_r²/4 with the gain actually
    achieved at η = α_r/2."""

    offset: int
    blocks: int
    alpha: dict
    eta: float | None  # None when the choice is a limit η = ±∞ (see eta_choice["kind"])
    eta_choice: dict
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
    """Δ per document: Σ_{s∈S_r} [η d(x_{<s}, x_{s:s+k}) − log Z_s(x_{<s})] (docs/theory.md §4). At η = +∞
    the limit Σ_s [log 1[d = 1] − log β_s] (−∞ for a document whose true window d rejects), at η = −∞
    Σ_s [log 1[d = 0] − log(1 − β_s)]."""
    D, beta = D[:, blocks], beta[:, blocks]
    if math.isfinite(eta):
        return (eta * D - log_z(eta, beta)).sum(1)
    keep, mass = (D > 0, beta) if eta > 0 else (D <= 0, 1 - beta)
    return torch.where(keep, -mass.clamp(0, 1).log(), -math.inf).sum(1)


def gain_derivative(eta: float, D: Tensor, beta: Tensor, blocks: list[int]) -> float:
    """Δ'(η) of the mean gain: mean over documents of Σ_s [D_s − β_s e^η / Z_s] — decreasing in η (Δ is
    concave), so its root is the maximum."""
    D, beta = D[:, blocks], beta[:, blocks].clamp(0, 1)
    tilted = torch.exp(eta + beta.log() - log_z(eta, beta))  # β e^η / Z: q's mass on d = 1 after tilting
    return (D - tilted).sum(1).mean().item()


def violation_bound(num: int, confidence: float = CONFIDENCE) -> float:
    """The one-sided Clopper–Pearson upper bound on a rate after 0 events in `num` trials: 1 − (1 − c)^{1/num}."""
    return 1 - (1 - confidence) ** (1 / num)


def support_proof(p, d, k: int, blocks: list[int], side: int, budget: int = MAX_ENUMERATION) -> str | None:
    """How P_p(d = 0 on some block of `blocks`) = 0 (side +1; for side −1: d = 1) is proven, or None:
    d is one of p's own checks (side +1 only: a rule every document of p keeps), or the exact enumeration
    of p's support (within `budget` strings) finds no document of positive probability with a violation."""
    if side > 0:
        for name, check in (getattr(p, "checks", None) or {}).items():
            if check is d:
                return f"d is p.checks[{name!r}], a rule every document of p keeps"
    if not getattr(p, "exact", False):
        return None
    try:
        x, lp = support(p, budget)
    except TooLargeError:
        return None
    for s in blocks:
        dd = _judge(d, x[:, : s + k], s, k)
        if bool(((dd == 0) if side > 0 else (dd != 0)).any()):
            return None
    return f"exact enumeration of p's support ({len(x):,} documents): d = {1 if side > 0 else 0} on every block"


def choose_eta(D: Tensor, beta: Tensor, blocks: list[int], proof: str | None = None) -> EtaChoice:
    """argmax_η of the mean gain (a 1-D concave maximisation, log Z convex in η), by the root of its slope
    (bracketed by doubling, Brent's method). When d accepts (rejects) every true window, Δ'(η) > 0 (< 0)
    for every finite η: with `proof` (that P_p(d = 0) = 0, resp. 1; `support_proof`) the choice is the
    limit η = ±∞ with Δ±∞; without it, the maximum of Δ(η) − |η| Σ_s ε_s with ε_s = violation_bound(N)
    per block, which is finite ("guarded")."""
    from scipy.optimize import brentq

    Db, bb = D[:, blocks], beta[:, blocks]
    penalty = 0.0
    guarded = None
    if bool((Db > 0).all()) or bool((Db <= 0).all()):
        up = bool((Db > 0).all())
        if bool(((bb >= 1) if up else (bb <= 0)).all()):  # q agrees with p about d everywhere: Δ ≡ 0
            return EtaChoice(0.0, "flat", 0.0, 0.0)
        if proof is not None:
            eta = math.inf if up else -math.inf
            gain = gain_per_doc(eta, D, beta, blocks).mean().item()
            return EtaChoice(eta, f"limit {'+' if up else '-'}inf", gain, 0.0, proof=proof)
        guarded = violation_bound(D.shape[0])
        penalty = (1.0 if up else -1.0) * guarded * len(blocks)  # d Σ_s ε_s |η| / dη on the side of the limit
    slope = lambda e: gain_derivative(e, D, beta, blocks) - penalty  # noqa: E731
    kind = "interior" if guarded is None else f"guarded {'+' if penalty > 0 else '-'}"
    s0 = slope(0.0)
    if s0 == 0:
        return EtaChoice(0.0, kind, 0.0, 0.0, violation_bound=guarded)
    sign = 1.0 if s0 > 0 else -1.0
    lo, hi = 0.0, sign
    while slope(hi) * sign > 0:
        if abs(hi) >= ETA_BRACKET:  # only when q gives d's side zero mass where p's true window is
            eta = sign * math.inf
            return EtaChoice(eta, f"limit {'+' if sign > 0 else '-'}inf", math.inf, slope(hi))
        lo, hi = hi, 2 * hi
    eta = brentq(slope, min(lo, hi), max(lo, hi), xtol=1e-12, rtol=1e-12)
    gain = gain_per_doc(eta, D, beta, blocks).mean().item() - abs(eta * penalty)
    return EtaChoice(float(eta), kind, gain, slope(eta), violation_bound=guarded)


def best_eta(D: Tensor, beta: Tensor, blocks: list[int]) -> float:
    """The η of `choose_eta` (±inf for a limit)."""
    return choose_eta(D, beta, blocks).eta


def gain_estimate(eta: float, D: Tensor, beta: Tensor, blocks: list[int], method: str, proven: bool = False) -> dict:
    """Δ at η on documents (D, β) with its interval; a limit that some document makes −∞ (d rejects its
    true window, so the conditioned model gives it probability 0) is reported as −∞ with that count.

    Unless `proven` (P_p of the unseen side is 0), a block on which no document shows the side that η
    penalises (d = 0 for η > 0, d = 1 for η < 0) may still have it at a rate up to ε = violation_bound(N),
    each costing |η|: the interval's low end is lowered by |η| Σ_s ε_s over those blocks."""
    per = gain_per_doc(eta, D, beta, blocks)
    bad = int(torch.isneginf(per).sum())
    if bad:
        out = {"value": None, "stderr": None, "low": None, "high": None, "n": len(per), "method": method}
        return {**out, "documents_with_zero_probability": bad}
    est = mean_estimate(per, method)
    if proven or eta == 0 or not math.isfinite(eta):
        return est.to_dict()
    Db = D[:, blocks]
    unseen = int(((Db > 0) if eta > 0 else (Db <= 0)).all(0).sum())  # blocks with no penalised window seen
    if not unseen:
        return est.to_dict()
    shift = abs(eta) * unseen * violation_bound(len(per))
    note = (
        f"; low end lowered by |η|·Σε = {shift:.4g} for {unseen} block(s) where no document showed "
        f"d = {0 if eta > 0 else 1} (rate ≤ ε = {violation_bound(len(per)):.3g}, Clopper–Pearson {CONFIDENCE:.0%})"
    )
    return {**est.to_dict(), "low": est.low - shift, "method": method + note}


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
    the document length; η may be ±inf, the conditioning limits). Otherwise each offset r is tried: η
    maximises the gain Δ(r, η) on `num_docs` documents of p (`choose_eta`: an interior maximum, or the
    limit η = ±∞ when Δ rises without bound toward it), Δ is reported with its interval on `num_docs`
    other documents, and the best r is kept. `result.search_` lists every offset's α_r, η (with its
    kind and Δ'(η) on the fitting documents), Δ and Lemma 1's guarantee.
    """
    n = p.length if p is not None else length
    if n is None:
        raise InputError("give p (samples of the truth) or length= (the document length)")
    if p is not None:
        check_pair(p, q, "boost")
    if getattr(q, "length", None) is not None and q.length < n:
        raise InputError(f"boost: q is defined for {q.length} tokens, shorter than the documents' {n}")
    m = check_window(k, n)
    if offset is not None and eta is not None:
        return Boosted(q, d, k, offset, eta, n)
    if p is None:
        raise InputError("choosing offset/eta needs samples of the truth: pass p=, or give both offset= and eta=")
    g = make_generator(seed)
    fit_x, test_x = p.sample(num_docs, generator=g), p.sample(num_docs, generator=g)
    *fit, how = window_statistics(p, q, d, k, fit_x, generator=g)
    *test, _ = window_statistics(p, q, d, k, test_x, generator=g)
    reports, choices = [], {}
    for r in [offset] if offset is not None else range(min(k, m)):
        blocks = list(range(r, m, k))
        if eta is None:
            Db = fit[0][:, blocks]
            side = 1 if bool((Db > 0).all()) else -1 if bool((Db <= 0).all()) else 0
            proof = support_proof(p, d, k, blocks, side) if side else None
            choice = choose_eta(*fit, blocks, proof=proof)
        else:
            e = float(eta)
            fitted = gain_per_doc(e, *fit, blocks).mean().item()
            choice = EtaChoice(e, "given", fitted, gain_derivative(e, *fit, blocks))
        choices[r] = choice
        alpha = mean_estimate((test[0][:, blocks] - test[1][:, blocks]).mean(1), f"held-out p documents, {how}")
        half = alpha.value / 2
        reports.append(
            OffsetReport(
                offset=r,
                blocks=len(blocks),
                alpha=alpha.to_dict(),
                eta=choice.eta if math.isfinite(choice.eta) else None,
                eta_choice=choice.to_dict(),
                gain=gain_estimate(choice.eta, *test, blocks, "held-out p documents", proven=choice.proof is not None),
                lemma1_guarantee=len(blocks) * alpha.value**2 / 4,
                gain_at_half_alpha=mean_estimate(gain_per_doc(half, *test, blocks), "held-out p documents").to_dict(),
            )
        )
    chosen = max(reports, key=lambda rep: choices[rep.offset].gain)
    choice = choices[chosen.offset]
    out = Boosted(q, d, k, chosen.offset, choice.eta, n)
    overall = mean_estimate((test[0] - test[1]).mean(1), "held-out").value
    out.search_ = {
        "offset": chosen.offset,
        "eta": chosen.eta,
        "eta_kind": choice.kind,
        "eta_note": eta_note(choice),
        "eta_proof": choice.proof,
        "eta_violation_bound": choice.violation_bound,
        "gain": chosen.gain,
        "lemma1_guarantee_overall": bounds.lemma1_guarantee(overall, k, n),
        "lemma1_guarantee_tight": bounds.lemma1_guarantee_tight(overall, k, n),
        "offsets": [rep.to_dict() for rep in reports],
        "num_docs": num_docs,
        "beta_method": how,
    }
    return out


def eta_note(choice: EtaChoice) -> str:
    """One sentence on the step chosen, computed from the choice."""
    if choice.kind.startswith("limit") and math.isinf(choice.gain):
        side = "1" if choice.eta > 0 else "0"
        return (
            f"Δ'(η) stays {'positive' if choice.eta > 0 else 'negative'} past |η| = {ETA_BRACKET:g}: q gives (almost) "
            f"no mass to d = {side} on blocks where the fitting documents' true windows have it, so Δ(η) grows "
            f"without bound toward η = {'+' if choice.eta > 0 else '−'}∞ (Δ∞ = ∞ on them)"
        )
    if choice.kind.startswith("limit"):
        side = "1" if choice.eta > 0 else "0"
        verb = "accepts" if choice.eta > 0 else "rejects"
        return (
            f"d {verb} every true window of p, proven ({choice.proof}), so Δ(η) increases without bound in |η| "
            f"toward the rejection limit η = {'+' if choice.eta > 0 else '−'}∞: q's blocks conditioned on d = {side}, "
            f"Δ∞ = −Σ_s E_p log P_q(d = {side} | x_<s) = {choice.gain:.4f} nats on the fitting documents"
        )
    if choice.kind.startswith("guarded"):
        verb, side = ("accepted", "0") if choice.kind.endswith("+") else ("rejected", "1")
        return (
            f"d {verb} every true window of the fitting documents, but P_p(d = {side}) = 0 is not proven (d is "
            f"not one of p's checks, and p's support could not be enumerated or has documents with d = {side}): "
            f"η = {choice.eta:.4g} maximises Δ under the largest violation rate the sample allows, "
            f"ε = {choice.violation_bound:.3g} per block (Clopper–Pearson {CONFIDENCE:.0%}), "
            f"Δ = {choice.gain:.4f} nats on the fitting documents"
        )
    if choice.kind == "flat":
        return "d takes one value on every true and every model window: Δ ≡ 0, η = 0"
    if choice.kind == "given":
        return f"η = {choice.eta:.4g} was given (Δ'(η) = {choice.derivative:+.2e} on the fitting documents)"
    return f"interior maximum: η = {choice.eta:.4g} with Δ'(η) = {choice.derivative:+.2e} on the fitting documents"


# ---- distillation -------------------------------------------------------------------------------------


def distill(
    boosted,
    model,
    *,
    num_docs: int | None = 4096,
    steps: int = 300,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    eval_every: int = 50,
    eval_docs: int = 512,
    targets: str = "auto",
    progress: bool = False,
    log=None,
):
    """Put the boosted model back into a fixed-size network: train `model` (in place; pass a copy of q to
    start from q, as `nextk boost --distill-steps` does) to minimise KL(q̄' ‖ model) on documents sampled
    from the boosted model q'.

    targets="soft" (the default "auto" when q' has exact conditionals): the loss is the per-token KL
    Σ_v q'(v | x_{<t}) log(q'(v | x_{<t}) / r(v | x_{<t})) with q' from its tries — every token's whole
    conditional, not one sampled token; "hard": cross-entropy on the sampled tokens (the same minimiser,
    more variance). `num_docs` samples of q' are drawn once (None: as many as the steps read,
    batch_size·steps), `eval_docs` more are held out; every `eval_every` steps the held-out KL(q̄'‖r̄)/n
    (per token) is measured and the weights with the lowest are kept. Returns a TrainResult (steps,
    tokens, seconds, history with the held-out KL, best_step) with `samples` set to the documents read.
    """
    import time

    import torch.nn.functional as F

    from nextk.console import progress_bar, quiet
    from nextk.models.common import snapshot
    from nextk.train import TrainResult

    log = log or quiet
    if targets not in ("auto", "soft", "hard"):
        raise InputError(f"unknown targets={targets!r}; choose 'auto', 'soft' or 'hard'")
    if steps < 1 or batch_size < 1:
        raise InputError(f"steps and batch_size must be ≥ 1, got steps={steps}, batch_size={batch_size}")
    if model.vocab_size != boosted.vocab_size:
        raise InputError(f"model vocabulary {model.vocab_size} ≠ boosted vocabulary {boosted.vocab_size}")
    soft = targets == "soft" or (targets == "auto" and boosted.exact)
    n = boosted.length
    g = make_generator(seed)
    t0 = time.perf_counter()
    num_docs = num_docs or batch_size * steps
    with torch.no_grad():
        data = boosted.sample(num_docs, generator=g)
        held = boosted.sample(eval_docs, generator=g)
        target = _conditionals(boosted, data) if soft else None
        held_lp = batched_log_prob(boosted, held)

    def held_out_kl() -> dict:
        model.eval()
        lr_ = batched_log_prob(model, held)
        model.train()
        return mean_estimate((held_lp - lr_) / n, "held-out samples of the boosted model: (log q̄' − log r̄)/n").to_dict()

    params = [w for w in model.parameters() if w.requires_grad]
    if not params:
        raise InputError(f"{type(model).__name__} has no trainable parameters")
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    result = TrainResult(steps=0, tokens=0, seconds=0.0, stopped="budget")
    first = held_out_kl()
    result.history.append({"step": 0, "tokens": 0, "kl_to_boosted": first})
    best, best_weights, result.best_step = first["value"], snapshot(model), 0
    model.train()
    with progress_bar(f"distill {getattr(model, 'name', '')}", steps, enabled=progress, loss="…") as bar:
        for step in range(1, steps + 1):
            idx = torch.randint(0, num_docs, (batch_size,), generator=g)
            x = data[idx]
            logits = model.logits(x)
            if soft:
                tgt = target[idx]
                loss = (tgt.exp() * (tgt - torch.log_softmax(logits.double(), -1))).nan_to_num(0.0).sum(-1).mean()
            else:
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            result.steps, result.tokens = step, result.tokens + x.numel()
            bar.update(advance=1, loss=f"{loss.item():.4f}")
            if step % eval_every == 0 or step == steps:
                row = held_out_kl()
                result.history.append(
                    {"step": step, "tokens": result.tokens, "train_loss": loss.item(), "kl_to_boosted": row}
                )
                log(f"  distill step {step}: KL(q̄'‖r̄)/n {row['value']:.5f} [{row['low']:.5f}, {row['high']:.5f}]")
                if row["value"] < best:
                    best, best_weights, result.best_step = row["value"], snapshot(model), step
    model.load_state_dict(best_weights)
    model.eval()
    result.seconds = time.perf_counter() - t0
    result.samples = num_docs  # type: ignore[attr-defined]
    result.targets = "soft (exact conditionals of q')" if soft else "hard (sampled tokens)"  # type: ignore[attr-defined]
    return result


def _conditionals(lm, x: Tensor, batch: int = 1024) -> Tensor:
    """log q'(· | x_{<t}) for every document and position, float64 (N, n, V), in batches."""
    return torch.cat([lm.log_probs(x[i : i + batch]).double() for i in range(0, len(x), batch)])
