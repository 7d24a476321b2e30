"""The boosted (tilted) model q' (docs/theory.md §4; Lemma 2, eqs. 1.3–1.5): `Boosted`.

Given q, d, a window k, an offset r and a step η, the blocks are the windows starting at
S_r = {s ≡ r (mod k), s ≤ m−1}, and

    q̄'(x) = q̄(x) · Π_{s∈S_r} exp(η d(x_{<s}, x_{s:s+k})) / Z_s(x_{<s}).

`Boosted` wraps q (no copy, no retraining) and is itself a LanguageModel: exact conditionals by one
trie of depth k per block, exact log-probabilities, exact rejection sampling, and the limits η = ±∞
(q's blocks conditioned on d = 1 / d = 0).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from nextk.advantage import judge_all_windows, sample_windows, window_log_probs
from nextk.bounds import check_window
from nextk.errors import MAX_ENUMERATION, InputError, check_enumeration
from nextk.gain import log_z
from nextk.lm import State, check_tokens, gather_log_prob, make_generator, sample_by_steps, states_along

LOW_ACCEPTANCE = 0.02  # below this guaranteed acceptance exp(−|η|), "auto" samples from the trie (when it fits)
MAX_ROUNDS = 100_000  # rejection rounds per block before a sampler refuses (never a hang)


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
                pending, rounds = torch.arange(num), 0
                while len(pending):
                    rounds += 1
                    if rounds > MAX_ROUNDS:  # refused by name rather than a hang (e.g. q has no mass on d's side)
                        raise InputError(
                            f"rejection sampling of block {t}: {len(pending)} documents had no window accepted in "
                            f"{MAX_ROUNDS:,} proposals each (acceptance ≥ e^(−|η|) = {math.exp(-abs(self.eta)):.2e}, "
                            "or 0 where q gives d's side no mass at η = ±∞); lower |η| or use method='trie'"
                        )
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
