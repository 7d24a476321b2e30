"""Advantage of next-k-token distinguishers (docs/theory.md §2), with intervals.

    a(d; p, q) = (1/m) Σ_{i<m} E_{x∼p̄}[ d(x_{<i}, x_{i:i+k}) − E_{w∼q(·|x_{<i})} d(x_{<i}, w) ],  m = n−k+1.

Estimators: "paired" Monte Carlo (one model window per sampled prefix), "rao_blackwell" (prefixes
from p, inner expectations over all V^k windows exactly) and "exact" (prefixes enumerated too).
Model states are computed once along each document and branched: all starts of a batch of
documents draw their windows in k batched steps, instead of re-running every prefix.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nextk.bounds import check_window
from nextk.errors import MAX_ENUMERATION, InputError, check_docs, check_enumeration, check_option
from nextk.lm import LanguageModel, State, make_generator, sample_categorical, states_along
from nextk.measure import all_strings, check_vocab, require_exact, support
from nextk.stats import Estimate, exact, mean_estimate

ESTIMATORS = ("auto", "paired", "rao_blackwell", "exact")
WINDOW_BUDGET = 4096  # "auto": Rao–Blackwellise while V^k windows fit, else pair


def check_sample_docs(num_docs: int, estimator: str) -> None:
    """A sampled estimate needs ≥ 2 documents: its interval comes from their spread (one gives [nan, nan])."""
    check_docs(num_docs)
    if estimator != "exact" and num_docs < 2:
        raise InputError(f"num_docs={num_docs}: a sampled estimate needs at least 2 documents for its interval")


def resolve_estimator(estimator: str, vocab_size: int, k: int) -> str:
    """The one default (docs/theory.md §2): "auto" is Rao–Blackwellised (exact inner expectations)
    while V^k ≤ WINDOW_BUDGET, paired Monte Carlo beyond; every other name is taken as given."""
    check_option("estimator", estimator, ESTIMATORS)
    if estimator != "auto":
        return estimator
    return "rao_blackwell" if vocab_size**k <= WINDOW_BUDGET else "paired"


def window_log_probs(model: LanguageModel, state: State, k: int) -> Tensor:
    """log q(w | prefix) for every window w ∈ Σ^k in lexicographic order: (B, V^k), by expanding
    the depth-k trie of continuations with batched steps (Σ_{j<k} B·V^(j+1) model steps)."""
    v = model.vocab_size
    b = state.batch_size
    lp = torch.zeros(b, 1, dtype=torch.float64)
    for j in range(k):
        lp = (lp.reshape(-1, 1) + state.log_probs.double().cpu()).reshape(b, -1)  # (B, V^(j+1)), on the CPU
        if j + 1 < k:
            state, _ = model.step(state.repeat(v), torch.arange(v).repeat(state.batch_size))
    return lp


def sample_windows(model: LanguageModel, state: State, k: int, generator: torch.Generator) -> Tensor:
    """One window per row drawn from q(·|prefix) by k batched steps: (B, k), on the generator's device. A model
    with its own exact sampler `sample_next(log_probs, generator)` draws with it (the HF adapter's two-level
    inverse CDF: at V = 50k far cheaper than torch.multinomial); others through `sample_categorical`."""
    draw = getattr(model, "sample_next", sample_categorical)
    out = []
    for j in range(k):
        tok = draw(state.log_probs, generator)
        out.append(tok)
        if j + 1 < k:
            state, _ = model.step(state, tok)
    return torch.stack(out, dim=1)


def choose_starts(num_docs: int, m: int, starts, generator) -> Tensor:
    """(docs, S) starts: all m, or S uniform draws without replacement per document."""
    if starts == "all":
        return torch.arange(m).expand(num_docs, m)
    if not isinstance(starts, int) or starts < 1:
        raise InputError(f"starts must be 'all' or a positive int, got {starts!r}")
    s = min(starts, m)
    return torch.rand(num_docs, m, generator=generator).argsort(dim=1)[:, :s]


def start_chunks(s: Tensor, m: int, rows_per_chunk: int):
    """(start i, (doc, slot) pairs) for every start, in chunks of at most rows_per_chunk pairs."""
    for i in range(m):
        r = (s == i).nonzero()
        for c in range(0, len(r), rows_per_chunk):
            yield i, r[c : c + rows_per_chunk]


def judge_all_windows(d, prefix: Tensor, start: int | Tensor, k: int, v: int) -> Tensor:
    """d on (prefix, w) for every w ∈ Σ^k: float (B, V^k). `start` is an int or a per-row LongTensor
    (B,): row b's window goes at columns start[b] … start[b]+k−1 of its prefix row (columns from
    start[b] on are ignored, so rows of one batch may have prefixes of different lengths)."""
    windows = all_strings(v, k)  # (V^k, k)
    b, n_w = prefix.shape[0], len(windows)
    if not isinstance(start, Tensor):
        x = torch.cat([prefix[:, :start].repeat_interleave(n_w, 0), windows.repeat(b, 1)], dim=1)
        return d(x, start, k).reshape(b, -1).double()
    start = start.long()
    width = int(start.max()) + k if b else k
    base = torch.zeros(b, width, dtype=torch.long)
    base[:, : min(prefix.shape[1], width)] = prefix[:, :width]
    base[torch.arange(width) >= start.unsqueeze(1)] = 0  # nothing from the row's own tail
    x = base.repeat_interleave(n_w, 0)
    starts = start.repeat_interleave(n_w)
    x.scatter_(1, starts.unsqueeze(1) + torch.arange(k), windows.repeat(b, 1))
    return d(x, starts, k).reshape(b, -1).double()


def advantage(
    d,
    p,
    q: LanguageModel,
    k: int,
    *,
    num_docs: int = 256,
    starts="all",
    estimator: str = "auto",
    seed: int | torch.Generator = 0,
    chunk: int = MAX_ENUMERATION // 4,
) -> Estimate:
    """Advantage of distinguisher d at telling p's windows from q's, with a 95% interval over documents.
    estimator: "auto" (default: Rao–Blackwellised while V^k ≤ 4096, else paired), "paired",
    "rao_blackwell" or "exact"; the Estimate's method names the one used."""
    estimator = resolve_estimator(estimator, p.vocab_size, k)
    check_sample_docs(num_docs, estimator)
    n = p.length
    m = check_window(k, n)
    v = p.vocab_size
    check_vocab(p, q, "advantage")
    if estimator == "exact":
        return _exact(
            lambda pre, i, P, Q: ((P - Q) * judge_all_windows(d, pre, i, k, v)).sum(1), p, q, k, m, "exact enumeration"
        )
    gen = make_generator(seed)
    x = p.sample(num_docs, generator=gen)
    s = choose_starts(num_docs, m, starts, gen)
    per = torch.zeros(num_docs, s.shape[1], dtype=torch.float64)
    q_states = states_along(q, x[:, : m - 1])
    if estimator == "paired":
        # every (document, start) pair at once: states branched from the cache, windows in k batched
        # steps, one call of d with per-row starts (d reads nothing after its window)
        doc, slot = torch.meshgrid(torch.arange(num_docs), torch.arange(s.shape[1]), indexing="ij")
        doc, slot = doc.flatten(), slot.flatten()
        start = s[doc, slot]
        order = torch.argsort(start, stable=True)
        doc, slot, start = doc[order], slot[order], start[order]
        counts = torch.bincount(start, minlength=m).tolist()
        batch = State.cat([q_states[i][doc[start == i]] for i in range(m) if counts[i]])
        windows = sample_windows(q, batch, k, gen)  # (pairs, k)
        true = x[doc]
        fake = true.clone()
        cols = start.unsqueeze(1) + torch.arange(k)
        fake.scatter_(1, cols, windows)
        per[doc, slot] = d(true, start, k).double() - d(fake, start, k).double()
        method = "paired monte carlo"
    else:
        check_enumeration(v**k, f"Rao–Blackwell window enumeration ({v}^{k})")
        p_exact = p.exact
        p_states = states_along(p, x[:, : m - 1]) if p_exact else None
        for i, rc in start_chunks(s, m, max(1, chunk // v**k)):
            docs = x[rc[:, 0]]
            dd = judge_all_windows(d, docs[:, :i], i, k, v)  # (B, V^k)
            eq = (window_log_probs(q, q_states[i][rc[:, 0]], k).exp() * dd).sum(1)
            if p_exact:
                ep = (window_log_probs(p, p_states[i][rc[:, 0]], k).exp() * dd).sum(1)
            else:
                ep = d(docs[:, : i + k], i, k).double()
            per[rc[:, 0], rc[:, 1]] = ep - eq
        method = "rao-blackwellised (exact inner expectations)"
    return mean_estimate(per.mean(dim=1), method)


def tv_advantage(
    p,
    q: LanguageModel,
    k: int,
    *,
    num_docs: int = 256,
    starts="all",
    estimator: str = "rao_blackwell",
    seed: int | torch.Generator = 0,
    chunk: int = MAX_ENUMERATION // 4,
) -> Estimate:
    """Advantage of the optimal distinguisher d* = 1[p(w|x_{<i}) > q(w|x_{<i})]: the average total
    variation (1/m) Σ_i E_p TV(p_k(·|x_{<i}), q_k(·|x_{<i})), the ceiling for every d (docs/theory.md §2)."""
    check_option("estimator", estimator, ("rao_blackwell", "exact"))
    check_sample_docs(num_docs, estimator)
    require_exact(p)
    check_vocab(p, q, "tv_advantage")
    n, v = p.length, p.vocab_size
    m = check_window(k, n)
    check_enumeration(v**k, f"window enumeration ({v}^{k})")
    if estimator == "exact":
        return _exact(lambda pre, i, P, Q: 0.5 * (P - Q).abs().sum(1), p, q, k, m, "exact enumeration")
    gen = make_generator(seed)
    x = p.sample(num_docs, generator=gen)
    s = choose_starts(num_docs, m, starts, gen)
    per = torch.zeros(num_docs, s.shape[1], dtype=torch.float64)
    p_states, q_states = states_along(p, x[:, : m - 1]), states_along(q, x[:, : m - 1])
    for i, rc in start_chunks(s, m, max(1, chunk // v**k)):
        P = window_log_probs(p, p_states[i][rc[:, 0]], k).exp()
        Q = window_log_probs(q, q_states[i][rc[:, 0]], k).exp()
        per[rc[:, 0], rc[:, 1]] = 0.5 * (P - Q).abs().sum(1)
    return mean_estimate(per.mean(dim=1), "rao-blackwellised total variation")


def _exact(term, p, q, k: int, m: int, method: str) -> Estimate:
    """(1/m) Σ_i Σ_{x_{<i}} p̄(x_{<i}) · term(prefix, i, P_windows, Q_windows), prefixes enumerated."""
    return exact(per_start_exact(term, p, q, k, range(m)).mean().item(), method)


def per_start_exact(term, p, q, k: int, starts) -> Tensor:
    """E_{x_{<i} ∼ p}[term(prefix, i, P, Q)] for each start i, by enumerating the prefixes of p
    (P, Q: window probabilities (B, V^k) of p and q after each prefix). float64 (len(starts),)."""
    require_exact(p)
    v = p.vocab_size
    out = []
    for i in starts:
        pre, lp = support(_Truncated(p, i))
        check_enumeration(len(pre) * v**k, f"exact expectation at start {i} ({len(pre)} prefixes × {v}^{k} windows)")
        P = window_log_probs(p, states_along(p, pre)[-1], k).exp()
        Q = window_log_probs(q, states_along(q, pre)[-1], k).exp()
        out.append((lp.exp() * term(pre, i, P, Q)).sum())
    return torch.stack(out) if out else torch.zeros(0, dtype=torch.float64)


class _Truncated:
    """View of an exact source as a distribution over its first `length` tokens (for enumeration)."""

    def __init__(self, p, length: int):
        self.p, self.length, self.vocab_size, self.exact = p, length, p.vocab_size, True

    def start(self, batch):
        return self.p.start(batch)

    def step(self, state, tokens):
        return self.p.step(state, tokens)
