"""Probabilistic finite-state automata over fixed-length documents, and random ones of controlled rank.

A PFSA has S states, an initial distribution π and, for each token v, a matrix T_v (S, S) with
T_v[s, s'] the probability of emitting v and moving from s to s'; each state's outgoing mass
Σ_v Σ_s' T_v[s, s'] is 1. Deterministic when every (s, v) has at most one successor. A document is
the first `length` tokens the automaton emits.

Conditionals (docs/theory.md §1) by the forward recursion, batched over rows: the state holds
α_t = P(state at t | x_{<t}) (B, S); q(v | x_{<t}) = α_t E[:, v] with E = Σ_s' T_v[:, s'] the
(S, V) next-token matrix, and α_{t+1} ∝ α_t T_{x_t}, one matrix product per token value present.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from nextk.distinguishers.checks import SupportCheck
from nextk.errors import InputError, TooLargeError, check_memory
from nextk.lm import State
from nextk.sources.common import TokenSource, log_weights_to_log_probs, new_state

MAX_STATES = 4096
CHUNK = 1 << 22  # entries of T_x gathered at once by the non-deterministic step


def token_names(v: int) -> list[str]:
    return [chr(ord("a") + i) for i in range(v)] if v <= 26 else [chr(0x100 + i) for i in range(v)]


class PFSA(TokenSource):
    """A PFSA from `initial` (S,) and `transitions` (V, S, S) as nested lists or arrays; tokens are
    a, b, c, … . Rows are checked: non-negative, π sums to 1, every state's outgoing mass sums to 1.

    >>> T = [[[0.0, 0.5], [0.0, 0.0]], [[0.5, 0.0], [0.0, 1.0]]]   # state 0: a→1 or b→0; state 1: b→1
    >>> src = PFSA(initial=[1.0, 0.0], transitions=T, length=3)
    >>> [round(src.log_prob(src.encode(s)).exp().item(), 6) for s in ("abb", "bab", "aab")]
    [0.5, 0.25, 0.0]
    >>> src.deterministic
    True
    """

    named_tokens = False  # a, b, c, … are placeholders: compared with other sources by vocabulary size only

    def __init__(self, initial, transitions, length: int):
        self.initial = torch.as_tensor(np.asarray(initial, dtype=np.float64))
        self.transitions = torch.as_tensor(np.asarray(transitions, dtype=np.float64))
        if self.transitions.dim() != 3 or self.transitions.shape[1] != self.transitions.shape[2]:
            raise InputError(
                f"transitions must have shape (vocab, states, states), got {tuple(self.transitions.shape)}"
            )
        v, s, _ = self.transitions.shape
        if self.initial.shape != (s,):
            raise InputError(f"initial has shape {tuple(self.initial.shape)}, but the automaton has {s} states")
        if s > MAX_STATES:
            raise TooLargeError(f"a PFSA with {s:,} states is over the budget of {MAX_STATES:,}")
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise InputError(f"length must be a positive integer, got {length!r}")
        if (self.initial < 0).any() or (self.transitions < 0).any() or not torch.isfinite(self.transitions).all():
            raise InputError("PFSA probabilities must be finite and non-negative")
        if abs(self.initial.sum().item() - 1) > 1e-9:
            raise InputError(f"initial probabilities sum to {self.initial.sum().item():.12g}, not 1")
        out = self.transitions.sum(dim=(0, 2))  # (S,)
        bad = (out - 1).abs() > 1e-9
        if bad.any():
            i = int(bad.nonzero()[0])
            raise InputError(
                f"state {i}'s outgoing probabilities (all tokens, all successors) sum to {out[i]:.12g}, not 1"
            )
        self.length, self.vocab = length, token_names(v)
        self.emit = self.transitions.sum(-1).T.contiguous()  # (S, V): E[s, v]
        self.random_params: dict | None = None
        self._succ = self._prob = None
        if self.deterministic:  # successor and probability of each (token, state): (V, S) each
            self._succ = self.transitions.argmax(-1)
            self._prob = self.transitions.gather(-1, self._succ.unsqueeze(-1)).squeeze(-1)
        self.checks = {"valid": SupportCheck(self)}

    @classmethod
    def random(cls, states: int = 8, vocab: int = 4, rank: int | None = None, seed: int = 0, length: int = 16) -> PFSA:
        """A random deterministic PFSA as in Borenstein et al. (ACL 2024), where the rank of an automaton is
        the dimension of the space its next-token logits span: each state s has logits L[s] = A[s] B with
        A (states, rank) and B (rank, vocab) standard normal (scaled by 1/√rank), E[s] = softmax(L[s]),
        and each (state, token) moves to a uniformly drawn successor. Logits are defined up to a
        constant per state, so `rank` is measured on log E with each row centred: generically exactly
        `rank`, at most min(states, vocab − 1); rank=None draws L in full. The initial state is 0."""
        for name, value, low in (("states", states, 1), ("vocab", vocab, 2), ("length", length, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"{name} must be an integer ≥ {low}, got {value!r}")
        if states > MAX_STATES:
            raise TooLargeError(f"a PFSA with {states:,} states is over the budget of {MAX_STATES:,}")
        top = min(states, vocab - 1)
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= top):
            raise InputError(f"rank must be an integer in 1..min(states, vocab − 1) = {top}, got {rank!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {seed!r}")
        r = rank or vocab
        # the (V, S, S) transition table in float64, a torch copy of it, and the (S, r), (r, V), (S, V) factors
        need = 8 * (2 * vocab * states * states + r * (states + vocab) + 4 * states * vocab)
        check_memory(need, f"a random PFSA with {states:,} states and {vocab:,} tokens ({vocab:,} × {states:,}² table)")
        rng = np.random.default_rng(seed)
        logits = rng.standard_normal((states, r)) @ rng.standard_normal((r, vocab)) / math.sqrt(r)
        emit = np.exp(logits - logits.max(1, keepdims=True))
        emit /= emit.sum(1, keepdims=True)
        succ = rng.integers(0, states, size=(states, vocab))
        trans = np.zeros((vocab, states, states))
        for s in range(states):
            trans[np.arange(vocab), s, succ[s]] = emit[s]
        initial = np.zeros(states)
        initial[0] = 1.0
        out = cls(initial, trans, length)
        out.random_params = dict(states=states, vocab=vocab, rank=rank, seed=seed, length=length)
        return out

    @property
    def n_states(self) -> int:
        return self.transitions.shape[1]

    @property
    def deterministic(self) -> bool:
        return bool(((self.transitions > 0).sum(-1) <= 1).all())

    @property
    def rank(self) -> int:
        """Dimension of the space the next-token logits span: rank of log E (states, vocab) with each
        row centred (logits are defined up to a constant per state); needs E > 0 everywhere."""
        log_e = self.emit.log()
        if torch.isneginf(log_e).any():
            raise InputError("the logit rank needs every next-token probability > 0; this automaton has zeros")
        return int(torch.linalg.matrix_rank(log_e - log_e.mean(1, keepdim=True)).item())

    @property
    def params(self) -> dict:
        if self.random_params is not None:
            return dict(self.random_params)
        return dict(initial=self.initial.tolist(), transitions=self.transitions.tolist(), length=self.length)

    def __repr__(self) -> str:
        if self.random_params is not None:
            return "PFSA.random(" + ", ".join(f"{k}={v!r}" for k, v in self.random_params.items()) + ")"
        return f"PFSA(states={self.n_states}, vocab={self.vocab_size}, length={self.length}, explicit matrices)"

    def start(self, batch: int) -> State:
        alpha = self.initial.expand(batch, -1).clone()  # (B, S)
        return self._state(alpha, torch.zeros(batch, dtype=torch.bool))

    def step(self, state: State, tokens: Tensor) -> tuple[State, Tensor]:
        alpha, tokens = state.tensors["alpha"], tokens.long()
        if self._succ is not None:  # deterministic: α'[succ(s, x)] += α[s] · T_x[s, succ(s, x)], O(B·S)
            nxt = torch.zeros_like(alpha).scatter_add_(1, self._succ[tokens], alpha * self._prob[tokens])
        else:  # α' = α T_x row by row, in chunks of rows so the gathered (rows, S, S) stays small
            nxt = torch.empty_like(alpha)
            rows = max(1, CHUNK // self.n_states**2)
            for i in range(0, len(alpha), rows):
                part = alpha[i : i + rows].unsqueeze(1)  # (b, 1, S)
                nxt[i : i + rows] = torch.bmm(part, self.transitions[tokens[i : i + rows]]).squeeze(1)
        total = nxt.sum(-1, keepdim=True)
        dead = state.tensors["dead"] | (total.squeeze(-1) <= 0)
        nxt = torch.where(total > 0, nxt / total.clamp_min(1e-300), 0.0)
        new = self._state(nxt, dead)
        return new, new.log_probs

    def _state(self, alpha: Tensor, dead: Tensor) -> State:
        lp = log_weights_to_log_probs((alpha @ self.emit).log())  # (B, V)
        lp[dead] = -math.log(self.vocab_size)
        return new_state(lp, alpha=alpha, dead=dead)
