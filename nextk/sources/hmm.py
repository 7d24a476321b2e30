"""Hidden Markov model source: long-range structure through slowly mixing hidden states."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from nextk.distinguishers.checks import SupportCheck
from nextk.errors import InputError
from nextk.lm import State, check_tokens
from nextk.sources.common import TokenSource, check_source_size, log_weights_to_log_probs, new_state


class HMM(TokenSource):
    """x_t ~ emit[z_t], z_0 ~ start, z_{t+1} ~ trans[z_t]; documents of `length` tokens.

    Conditionals come from the batched forward algorithm: the state holds the filtering
    distribution α_t(z) = P(z_t = z | x_{<t}), and q(v | x_{<t}) = Σ_z α_t(z) emit[z, v].
    Tokens are the letters a, b, c, … .

    >>> src = HMM(start=[1.0, 0.0], trans=[[0.9, 0.1], [0.1, 0.9]], emit=[[1.0, 0.0], [0.0, 1.0]], length=3)
    >>> round(src.log_prob(src.encode("aaa")).exp().item(), 6)   # stay, stay: 0.9 * 0.9
    0.81
    >>> round(src.log_prob(src.encode("aab")).exp().item(), 6)
    0.09
    >>> round(src.log_prob(src.encode("bbb")).exp().item(), 6)   # z_0 is always state 0
    0.0
    """

    named_tokens = False  # a, b, c, … are placeholders: compared with other sources by vocabulary size only

    def __init__(self, start, trans, emit, length: int):
        self.start_p = torch.as_tensor(start, dtype=torch.float64)
        self.trans = torch.as_tensor(trans, dtype=torch.float64)
        self.emit = torch.as_tensor(emit, dtype=torch.float64)
        s, v = self.emit.shape
        if self.start_p.shape != (s,) or self.trans.shape != (s, s):
            raise InputError(
                f"HMM shapes disagree: start {tuple(self.start_p.shape)}, "
                f"trans {tuple(self.trans.shape)}, emit {tuple(self.emit.shape)}"
            )
        for name, m in (("start", self.start_p), ("trans", self.trans), ("emit", self.emit)):
            if (m < 0).any() or not torch.allclose(m.sum(-1), torch.ones(()).double(), atol=1e-9):
                raise InputError(f"HMM {name} must be non-negative with rows summing to 1")
        if length < 1:
            raise InputError(f"length must be ≥ 1, got {length}")
        self.length = int(length)
        self.random_params: dict | None = None  # set by HMM.random
        self.vocab = [chr(ord("a") + i) for i in range(v)] if v <= 26 else [chr(0x100 + i) for i in range(v)]
        self.checks = {"support": SupportCheck(self)}

    @classmethod
    def random(
        cls,
        n_states: int = 8,
        vocab_size: int = 4,
        length: int = 32,
        seed: int = 0,
        concentration: float = 0.5,
        stay: float = 0.95,
    ) -> HMM:
        """A random HMM whose hidden state stays put with probability ≥ `stay` (slow mixing);
        emission rows ~ Dirichlet(concentration) (small → peaked, informative emissions)."""
        if n_states < 1 or vocab_size < 1:
            raise InputError(f"an HMM needs n_states ≥ 1 and vocab_size ≥ 1, got {n_states} and {vocab_size}")
        if not 0.0 <= stay <= 1.0 or concentration <= 0:
            raise InputError(f"need 0 ≤ stay ≤ 1 and concentration > 0, got {stay}, {concentration}")
        check_source_size(f"an HMM with {n_states:,} states", vocab_size, 8 * 3 * n_states * (n_states + vocab_size))
        rng = np.random.default_rng(seed)
        trans = stay * np.eye(n_states) + (1 - stay) * rng.dirichlet(np.ones(n_states), size=n_states)
        emit = rng.dirichlet(np.full(vocab_size, concentration), size=n_states)
        out = cls(np.full(n_states, 1.0 / n_states), trans, emit, length)
        out.random_params = dict(
            n_states=n_states, vocab_size=vocab_size, length=length, seed=seed, concentration=concentration, stay=stay
        )
        return out

    @property
    def params(self) -> dict:
        """`HMM.random`'s arguments when it built this HMM (what `nextk.sources.make_source("hmm", …)`
        takes), else the shapes and the matrices themselves."""
        if self.random_params is not None:
            return dict(self.random_params)
        return {
            "start": self.start_p.tolist(),
            "trans": self.trans.tolist(),
            "emit": self.emit.tolist(),
            "length": self.length,
        }

    def __repr__(self) -> str:
        if self.random_params is not None:
            return "HMM.random(" + ", ".join(f"{k}={v!r}" for k, v in self.random_params.items()) + ")"
        return f"HMM(n_states={self.n_states}, vocab_size={self.vocab_size}, length={self.length}, explicit matrices)"

    @property
    def n_states(self) -> int:
        return self.emit.shape[0]

    def start(self, batch: int) -> State:
        alpha = self.start_p.expand(batch, -1).clone()  # (B, S)
        return new_state(self._predict(alpha), alpha=alpha)

    def step(self, state: State, tokens: Tensor) -> tuple[State, Tensor]:
        alpha = state.tensors["alpha"] * self.emit[:, tokens.long()].T  # (B, S): joint with x_t
        total = alpha.sum(-1, keepdim=True)
        alpha = torch.where(total > 0, alpha / total.clamp_min(1e-300), 1.0 / self.n_states)
        alpha = alpha @ self.trans  # (B, S): P(z_{t+1} | x_{≤t})
        lp = self._predict(alpha)
        return new_state(lp, alpha=alpha), lp

    def _predict(self, alpha: Tensor) -> Tensor:
        return log_weights_to_log_probs((alpha @ self.emit).log())  # (B, V)

    def log_prob(self, x: Tensor) -> Tensor:
        """Forward algorithm with per-step normalisation (scaled α), batched over strings; log p̄ =
        Σ_t log c_t with c_t the normaliser at step t. Run in NumPy float64: on (batch, states) arrays
        its per-operation cost is a fraction of torch's (BENCHMARKS.md). A string of probability 0
        gets −inf (its α is reset to uniform so the batch stays finite)."""
        x = check_tokens(x, self.vocab_size, self.length)
        n, t_len = x.shape
        trans, emit_t = self.trans.numpy(), np.ascontiguousarray(self.emit.numpy().T)  # (S, S), (V, S)
        xt = np.ascontiguousarray(x.numpy().T)  # (T, B): one contiguous row of tokens per step
        alpha = np.broadcast_to(self.start_p.numpy(), (n, self.n_states)).copy()
        joint = np.empty_like(alpha)
        scale = np.empty((t_len, n))
        for t in range(t_len):
            np.multiply(alpha, emit_t[xt[t]], out=joint)
            c = joint.sum(1)
            scale[t] = c
            dead = c <= 0
            if dead.any():
                joint[dead], c[dead] = 1.0 / self.n_states, 1.0
            joint /= c[:, None]
            np.matmul(joint, trans, out=alpha)
        with np.errstate(divide="ignore"):
            return torch.from_numpy(np.log(scale).sum(0))
