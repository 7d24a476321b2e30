"""A mixture of sources: p̄(x) = Σ_c w_c p̄_c(x), with exact conditionals."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from nextk.errors import InputError
from nextk.lm import State, make_generator, sample_by_steps
from nextk.sources.common import TokenSource, new_state


class Mixture(TokenSource):
    """Each document comes from component c with probability w_c (weights are normalised). Conditionals are
    exact (docs/theory.md §1): after a prefix, the posterior over components is
    π_c(x_{<t}) ∝ w_c p̄_c(x_{<t}), kept in log space, and p(v | x_{<t}) = Σ_c π_c(x_{<t}) p_c(v | x_{<t}).

    Every component must share the vocabulary and the document length. `checks` holds the checkers that
    are provably rules of the mixture (a checker of one component alone may be false on the others'
    documents): a checker every component has under the same name that is the same object, or of one class
    whose fields are equal plain values (numbers, strings, tuples of them: the same rule); and, when every
    component has a support check, `SupportCheck(self)` built on the mixture itself (a window is possible
    under the mixture). Fields that are objects (a source, a tensor) are never compared by repr: repr(HMM)
    omits its parameters.

    >>> from nextk.sources import HMM, Parity
    >>> flat = HMM([1.0], [[1.0]], [[0.5, 0.5]], length=4)
    >>> src = Mixture([Parity(block=2, length=4), flat], [0.9, 0.1])
    >>> round(src.log_prob(torch.tensor([[1, 1, 0, 0]])).exp().item(), 6)   # 0.9/4 + 0.1/16
    0.23125
    >>> round(src.log_prob(torch.tensor([[1, 0, 0, 0]])).exp().item(), 6)   # odd block: only the flat one
    0.00625
    """

    def __init__(self, sources, weights):
        sources, weights = list(sources), [float(w) for w in weights]
        if not sources or len(sources) != len(weights):
            raise InputError(f"Mixture needs one weight per source, got {len(sources)} sources, {len(weights)} weights")
        if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
            raise InputError(f"Mixture weights must be non-negative and not all zero, got {weights}")
        first = sources[0]
        for i, s in enumerate(sources[1:], 1):
            if s.vocab_size != first.vocab_size:
                raise InputError(
                    f"Mixture components disagree on the vocabulary: source 0 has {first.vocab_size} tokens, "
                    f"source {i} has {s.vocab_size}"
                )
            if s.length != first.length:
                raise InputError(
                    f"Mixture components disagree on the length: source 0 has {first.length} tokens, "
                    f"source {i} has {s.length}"
                )
            if not getattr(s, "exact", True):
                raise InputError(f"Mixture component {i} ({s!r}) has no exact probabilities")
        self.sources, self.weights = sources, weights
        self.length = first.length
        self.vocab = list(getattr(first, "vocab", [str(i) for i in range(first.vocab_size)]))
        total = sum(weights)
        with torch.no_grad():
            self._log_w = torch.tensor(
                [math.log(w / total) if w > 0 else -math.inf for w in weights], dtype=torch.float64
            )
        self.checks = _shared_checks(sources, self)

    @property
    def params(self) -> dict:
        return {
            "sources": [{"source": type(s).__name__, "params": getattr(s, "params", repr(s))} for s in self.sources],
            "weights": self.weights,
        }

    def __repr__(self) -> str:
        return f"Mixture(sources={self.sources!r}, weights={self.weights!r})"

    def start(self, batch: int) -> State:
        states = [s.start(batch) for s in self.sources]
        return self._state(states, self._log_w.expand(batch, -1).clone())

    def step(self, state: State, tokens: Tensor) -> tuple[State, Tensor]:
        tokens = tokens.long()
        log_post = state.tensors["log_post"]  # (B, C): log π_c(x_{<t})
        states, reads = [], []
        for i, src in enumerate(self.sources):
            own = _component(state, i)
            reads.append(own.log_probs.double().gather(1, tokens[:, None])[:, 0])  # log p_c(x_t | x_{<t})
            states.append(src.step(own, tokens)[0])
        joint = log_post + torch.stack(reads, 1)  # (B, C)
        total = torch.logsumexp(joint, 1, keepdim=True)
        dead = torch.isneginf(total).squeeze(1)  # an impossible prefix: keep the prior (the row is uniform anyway)
        post = torch.where(dead[:, None], self._log_w.expand_as(joint), joint - total)
        new = self._state(states, post)
        return new, new.log_probs

    def _state(self, states: list[State], log_post: Tensor) -> State:
        lp = torch.stack([s.log_probs.double() for s in states], 1)  # (B, C, V)
        mixed = torch.logsumexp(log_post[:, :, None] + lp, 1)  # (B, V)
        tensors = {f"c{i}.{k}": v for i, s in enumerate(states) for k, v in s.tensors.items()}
        return new_state(mixed, log_post=log_post, **tensors)

    def sample(self, num: int, length: int | None = None, *, generator=None, prefix=None) -> Tensor:
        """Exact: a component per document from the weights, then that component's own sampler."""
        length = self._length(length)
        g = make_generator(generator)
        if prefix is not None:
            return sample_by_steps(self, num, length, g, prefix)
        which = torch.multinomial(self._log_w.exp().expand(num, -1), 1, generator=g)[:, 0]
        out = torch.zeros(num, length, dtype=torch.long)
        for i, src in enumerate(self.sources):
            rows = (which == i).nonzero().squeeze(1)
            if len(rows):
                out[rows] = src.sample(len(rows), length, generator=g).long()
        return out


def _component(state: State, i: int) -> State:
    head = f"c{i}."
    return State({k[len(head) :]: v for k, v in state.tensors.items() if k.startswith(head)})


_PLAIN = (int, float, str, bool, type(None))


def _plain(value) -> bool:
    return isinstance(value, _PLAIN) or (isinstance(value, tuple) and all(_plain(v) for v in value))


def _same_rule(a, b) -> bool:
    """a and b are provably one rule: the same object, or one class whose fields are all equal plain values."""
    if a is b:
        return True
    if type(a) is not type(b) or not hasattr(a, "__dict__") or not hasattr(b, "__dict__"):
        return False
    fa, fb = vars(a), vars(b)
    return fa.keys() == fb.keys() and all(_plain(fa[k]) and _plain(fb[k]) and fa[k] == fb[k] for k in fa)


def _shared_checks(sources, mixture) -> dict:
    """The checkers that are rules of the mixture (class docstring): shared ones that are provably the same
    rule, and support checks rebuilt on the mixture itself."""
    from nextk.distinguishers.checks import SupportCheck

    first = getattr(sources[0], "checks", {})
    out = {}
    for name, check in first.items():
        others = [getattr(s, "checks", {}).get(name) for s in sources[1:]]
        if all(o is not None and _same_rule(o, check) for o in others):
            out[name] = check
        elif isinstance(check, SupportCheck) and all(isinstance(o, SupportCheck) for o in others):
            out[name] = SupportCheck(mixture)  # possible under the mixture: a rule every document of it keeps
    return out
