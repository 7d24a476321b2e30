"""Exact measurement primitives: KL(p̄‖q̄), entropy H(p̄), excess loss (docs/theory.md §1).

Identity (Lemmas 5–6): n·L(q) = H(p̄) + KL(p̄‖q̄), so the excess per-token loss is KL/n.
Sampling estimators draw x ~ p̄ and average log p̄(x) − log q̄(x) (unbiased, small variance);
exact ones enumerate all V^n strings and refuse, with the size, when that is too many.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from nextk.errors import MAX_ENUMERATION, InputError, NotExactError, check_docs, check_enumeration
from nextk.lm import LanguageModel, make_generator
from nextk.stats import Estimate, exact, mean_estimate

BATCH = 4096


def all_strings(vocab_size: int, length: int, budget: int | None = None) -> Tensor:
    """Every string of `length` tokens, lexicographic: LongTensor (V^length, length)."""
    kwargs = {} if budget is None else {"budget": budget}
    check_enumeration(vocab_size**length, f"enumeration of {vocab_size}^{length} strings", **kwargs)
    if length == 0:
        return torch.zeros(1, 0, dtype=torch.long)
    return torch.tensor(list(itertools.product(range(vocab_size), repeat=length)), dtype=torch.long)


def support(p, budget: int | None = None) -> tuple[Tensor, Tensor]:
    """Every string of positive probability under an exact LM, and its log p̄, by expanding the
    prefix trie level by level with batched `step`s and pruning zero-probability branches."""
    require_exact(p)
    budget = budget or MAX_ENUMERATION
    state, x, lp = p.start(1), torch.zeros(1, 0, dtype=torch.long), torch.zeros(1, dtype=torch.float64)
    for t in range(p.length):
        cond = state.log_probs.double()  # (B, V)
        rows, toks = (~torch.isneginf(cond)).nonzero(as_tuple=True)
        check_enumeration(len(rows), f"support enumeration (level {t + 1} of {p.length})", budget)
        x = torch.cat([x[rows], toks.unsqueeze(1)], dim=1)
        lp = lp[rows] + cond[rows, toks]
        if t + 1 < p.length:
            state, _ = p.step(state[rows], toks)
    return x, lp


def batched_log_prob(model: LanguageModel, x: Tensor, batch: int = BATCH) -> Tensor:
    """log q̄(x) in float64 for many strings, in batches; no gradients."""
    with torch.no_grad():
        return torch.cat([model.log_prob(x[i : i + batch]).double() for i in range(0, len(x), batch)])


def require_exact(p) -> None:
    if not p.exact:
        raise NotExactError(f"{p!r} has no exact probabilities; KL against it cannot be computed")


def check_vocab(p, q, what: str = "kl") -> None:
    """Refuse, by name, two models whose token ids mean different things: a different vocabulary size, or,
    when both name their tokens (a `vocab` list: sources do; networks, and HMM / PFSA whose a, b, c, … are
    placeholders, don't), different names."""
    if p.vocab_size != q.vocab_size:
        raise InputError(f"{what}: vocabulary mismatch, p has {p.vocab_size} tokens but q has {q.vocab_size}")
    p_names, q_names = (getattr(m, "vocab", None) if getattr(m, "named_tokens", True) else None for m in (p, q))
    if isinstance(p_names, (list, tuple)) and isinstance(q_names, (list, tuple)) and list(p_names) != list(q_names):
        diff = [i for i, (a, b) in enumerate(zip(p_names, q_names)) if a != b]
        i = diff[0]
        raise InputError(
            f"{what}: vocabulary mismatch, the token names differ ({len(diff)} of {len(p_names)}; token {i} is "
            f"{p_names[i]!r} in p but {q_names[i]!r} in q); if they mean the same, give both the same .vocab"
        )


def check_pair(p, q, what: str = "kl") -> None:
    """Refuse, by name, two models that do not describe the same documents: a different vocabulary (size,
    or names when both name their tokens), or a q defined for another document length (a network with
    length None scores any length)."""
    check_vocab(p, q, what)
    q_len = getattr(q, "length", None)
    if q_len is not None and p.length is not None and q_len != p.length:
        raise InputError(f"{what}: length mismatch, p's documents have {p.length} tokens but q is defined for {q_len}")


def kl(
    p, q: LanguageModel, *, num_docs: int = 1000, seed: int | torch.Generator = 0, estimator: str = "sample"
) -> Estimate:
    """KL(p̄ ‖ q̄) in nats for whole documents of p.length tokens.

    estimator="sample": mean of log p̄(x) − log q̄(x) over num_docs x ~ p̄, with a 95% interval;
    estimator="exact": Σ_x p̄(x) (log p̄(x) − log q̄(x)) over all V^n strings.
    """
    require_exact(p)
    check_pair(p, q, "kl")
    if estimator == "exact":
        x, lp = support(p)
        lq = batched_log_prob(q, x)
        return exact((lp.exp() * (lp - lq)).sum().item(), "exact enumeration of the support")
    if estimator != "sample":
        raise ValueError(f"unknown estimator={estimator!r}; choose 'sample' or 'exact'")
    check_docs(num_docs)
    x = p.sample(num_docs, generator=make_generator(seed))
    return mean_estimate(batched_log_prob(p, x) - batched_log_prob(q, x), "monte carlo over p samples")


def entropy(p, *, num_docs: int = 1000, seed: int | torch.Generator = 0, estimator: str = "sample") -> Estimate:
    """H(p̄) in nats (whole documents): E_p[−log p̄(x)], sampled or by enumeration."""
    require_exact(p)
    if estimator == "exact":
        _, lp = support(p)
        return exact(-(lp.exp() * lp).sum().item(), "exact enumeration of the support")
    if estimator != "sample":
        raise ValueError(f"unknown estimator={estimator!r}; choose 'sample' or 'exact'")
    x = p.sample(num_docs, generator=make_generator(seed))
    return mean_estimate(-batched_log_prob(p, x), "monte carlo over p samples")


def excess_loss(p, q: LanguageModel, **kwargs) -> Estimate:
    """Per-token excess loss L(q) − H(p̄)/n = KL(p̄‖q̄)/n (Lemmas 5–6), with its interval."""
    est = kl(p, q, **kwargs)
    n = p.length
    return Estimate(est.value / n, est.stderr / n, est.low / n, est.high / n, est.n, est.method)


def loss(p, q: LanguageModel, *, num_docs: int = 1000, seed: int | torch.Generator = 0) -> Estimate:
    """Per-token next-token loss L(q) = E_p[−log q̄(x)]/n on fresh samples of p (nats/token)."""
    check_pair(p, q, "loss")
    check_docs(num_docs)
    x = p.sample(num_docs, generator=make_generator(seed))
    return mean_estimate(-batched_log_prob(q, x) / x.shape[1], "monte carlo over p samples")
