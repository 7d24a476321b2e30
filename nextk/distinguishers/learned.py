"""A size-bounded learned distinguisher (docs/theory.md §2): a prefix summary and a window reader, fitted
on pairs of windows that share their prefix.

The score f(x_{<i}, w) is read in two stages: a GRU summarises the prefix x_{<i} (after a beginning-of-
document token, so the empty prefix has a summary too), and a second GRU, started from that summary,
reads the k window tokens; a small head on both states gives the real-valued score. Nothing after the
window is read. Tokens enter through an embedding table of (V + 1) × hidden entries (no one-hot of V),
so the same class works for a two-letter Dyck alphabet and a 50,000-token vocabulary.

Fitting (`fit(p, q, k)`): documents x ∼ p; at a few starts i of each document one window is drawn from
q(· | x_{<i}), so every pair (true window x_{i:i+k}, model window w) shares its prefix. The loss is the
pairwise logistic loss on the difference, −log σ(f(x_{<i}, x_{i:i+k}) − f(x_{<i}, w)) (whose minimiser is
f = log p(w|x_{<i}) / q(w|x_{<i}) + c(x_{<i})), plus a pointwise logistic term on both windows (true
label 1, model label 0) that pins the prefix-dependent level c to 0, so one global threshold suits every
prefix. A quarter of the fitted documents are held back: the weights kept are those with the lowest loss
on them, and the decision threshold τ of d = 1[f > τ] is the one that maximises the empirical advantage
on them. Measure the result with `nextk.advantage` on other documents (another seed): never on these.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nextk.advantage import sample_windows
from nextk.bounds import check_window
from nextk.console import quiet
from nextk.distinguishers.checks import clip
from nextk.errors import InputError
from nextk.lm import make_generator
from nextk.models.common import seeded, snapshot
from nextk.stats import mean_estimate

CHUNK = 32768  # rows per forward pass when judging (judge_all_windows may send millions)
DOC_CHUNK = 256  # documents whose q states are stepped together while drawing model windows


class LearnedDistinguisher(nn.Module):
    """d(x_{<i}, w) = 1[f(x_{<i}, w) > τ]: f reads a GRU summary of the prefix and the window (module
    docstring); τ is calibrated on held-back documents. Its size bound is `hidden` (both GRUs and the head).

    Hyperparameters: `steps` optimiser steps of Adam at `lr` on minibatches of about `batch_size` pairs
    (all the pairs of batch_size / starts_per_doc documents, whose prefixes are read once);
    `starts_per_doc` window starts drawn per fitted document (every start when ≥ m); `calibration` the
    share of fitted documents held back for the weights kept and τ; `pointwise` the weight of the
    pointwise term next to the pairwise one; `eval_every` steps between losses on the held-back documents;
    `schedule` "cosine" (the learning rate decays from lr to lr/10) or "constant"; `patience`: stop after
    that many evaluations without a lower held-back loss (None: run every step).

    Fitted attributes (set by `fit`): `threshold_` τ; `train_accuracy_` the balanced accuracy of d on the
    training pairs ((1 + empirical advantage) / 2); `pair_accuracy_` the share of held-back pairs with
    f(true) > f(model) among those whose two windows differ; `calibration_advantage_` the empirical
    advantage of d on the held-back documents (an Estimate dict; τ was chosen on them, so it is
    optimistic); `fit_docs_`, `fit_pairs_`, `steps_` (taken), `best_step_`, `history_` (held-back loss per
    evaluation), `k_`, `length_`.
    """

    def __init__(
        self,
        vocab_size: int,
        hidden: int = 32,
        steps: int = 600,
        batch_size: int = 512,
        lr: float = 3e-3,
        seed: int = 0,
        starts_per_doc: int = 8,
        calibration: float = 0.25,
        pointwise: float = 0.5,
        eval_every: int = 50,
        schedule: str = "constant",
        patience: int | None = 5,
    ):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("hidden", hidden), ("steps", steps)):
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        if not 0 < calibration < 1:
            raise InputError(f"calibration must be a share in (0, 1), got {calibration}")
        if schedule not in ("cosine", "constant"):
            raise InputError(f"unknown schedule={schedule!r}; choose 'cosine' or 'constant'")
        self.schedule, self.patience = schedule, patience
        self.vocab_size, self.hidden, self.steps, self.batch_size, self.lr, self.seed = (
            vocab_size,
            hidden,
            steps,
            batch_size,
            lr,
            seed,
        )
        self.starts_per_doc, self.calibration, self.pointwise, self.eval_every = (
            starts_per_doc,
            calibration,
            pointwise,
            eval_every,
        )
        with seeded(seed):
            self.embed = nn.Embedding(vocab_size + 1, hidden)  # token ids and the beginning-of-document token V
            self.where = nn.Linear(1, hidden)  # position t / n: how many tokens are left matters (e.g. Dyck)
            self.prefix_rnn = nn.GRU(hidden, hidden, batch_first=True)
            self.window_rnn = nn.GRU(hidden, hidden, batch_first=True)
            self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.threshold_ = 0.0
        self.length_: int | None = None
        self.k_: int | None = None
        self.eval()

    # ---- the score ----------------------------------------------------------------------------------
    def _inputs(self, tokens: Tensor, positions: Tensor) -> Tensor:
        scale = float(self.length_ or (int(positions.max()) + 1 if positions.numel() else 1))
        return self.embed(tokens) + self.where((positions.float() / scale).unsqueeze(-1))

    def summarise(self, prefixes: Tensor, starts: Tensor) -> Tensor:
        """The prefix summary (B, hidden): the prefix GRU's state after reading BOS and x_{<start}
        (prefixes (B, ≥ max start); columns from each row's start on are never read)."""
        b = prefixes.shape[0]
        return self._prefix_states(prefixes, int(starts.max()) if b else 0)[torch.arange(b), starts]

    def _prefix_states(self, docs: Tensor, width: int) -> Tensor:
        """The prefix GRU's states after BOS, x_0, …, x_{width−1}: (D, width + 1, hidden); column i is
        the summary of x_{<i}."""
        d = docs.shape[0]
        tokens = torch.cat([torch.full((d, 1), self.vocab_size, dtype=torch.long), docs[:, :width]], dim=1)
        pos = torch.arange(width + 1).expand(d, -1)  # BOS at 0, x_t at t + 1
        return self.prefix_rnn(self._inputs(tokens, pos))[0]

    def score_windows(self, summary: Tensor, windows: Tensor, starts: Tensor) -> Tensor:
        """f for windows (B, k) after prefixes with summaries (B, hidden) at starts (B,): (B,)."""
        k = windows.shape[1]
        pos = starts.unsqueeze(1) + 1 + torch.arange(k)
        out, _ = self.window_rnn(self._inputs(windows, pos), summary.unsqueeze(0).contiguous())
        return self.head(torch.cat([out[:, -1], summary], dim=1)).squeeze(-1)

    def score(self, x: Tensor, starts: Tensor, k: int) -> Tensor:
        """f (B,) for the windows x[b, starts[b]:starts[b]+k] given their prefixes, computed along the trie
        of the rows: rows sharing a prefix share one summary, and rows sharing a prefix and the first j
        window tokens share the window reader's first j steps. An enumeration of all V^k windows after
        each prefix (Rao–Blackwellised advantage) thus costs Σ_j V^j reader steps, not k·V^k."""
        b = x.shape[0]
        if b == 0:
            return torch.zeros(0)
        v = self.vocab_size
        node = starts.clone()  # trie of the prefixes: a node per distinct (start, x_{<start}); pad V after start
        for t in range(int(starts.max())):
            node = _child_ids(node, torch.where(t < starts, x[:, t], v), v + 1)[2]
        rep = torch.zeros(int(node.max()) + 1, dtype=torch.long).scatter_(0, node, torch.arange(b))  # a row each
        summary = torch.cat([self.summarise(x[rep[c]], starts[rep[c]]) for c in _chunks(len(rep))])  # (U, H)
        prefix_of = node
        h, node_start = summary, starts[rep]
        for j in range(k):  # one level of the trie of windows: distinct (parent node, token) pairs
            parent, tok, node = _child_ids(node, x[torch.arange(b), starts + j], v)
            node_start = node_start[parent]
            inp = self._inputs(tok.unsqueeze(1), (node_start + 1 + j).unsqueeze(1))  # (U, 1, H)
            h = torch.cat(
                [self.window_rnn(inp[c], h[parent[c]].unsqueeze(0).contiguous())[1][0] for c in _chunks(len(tok))]
            )
        return torch.cat(
            [self.head(torch.cat([h[node[c]], summary[prefix_of[c]]], dim=1)).squeeze(-1) for c in _chunks(b)]
        )

    @torch.no_grad()
    def __call__(self, x: Tensor, start, k: int) -> Tensor:
        x, starts = clip(x, start, k)
        if x.numel() and (x.min() < 0 or x.max() >= self.vocab_size):
            raise InputError(f"x holds token ids outside the vocabulary 0..{self.vocab_size - 1}")
        return self.score(x, starts, k) > self.threshold_

    # ---- fitting ------------------------------------------------------------------------------------
    @torch.no_grad()
    def pairs(self, p, q, k: int, num_docs: int, generator: torch.Generator) -> dict[str, Tensor]:
        """Fresh p documents and, at `starts_per_doc` starts of each, the true window and one window
        drawn from q given the same prefix: {"x" (D, n), "doc", "start", "true", "fake" (P, k)}.
        q is stepped along each document once; only the rows whose start is reached branch off."""
        m = check_window(k, p.length)
        if q.vocab_size != self.vocab_size or p.vocab_size != self.vocab_size:
            raise InputError(f"p, q and the distinguisher must share one vocabulary ({self.vocab_size} tokens)")
        x = p.sample(num_docs, generator=generator)
        s = min(self.starts_per_doc, m)
        chosen = torch.rand(num_docs, m, generator=generator).argsort(dim=1)[:, :s]  # without replacement
        doc = torch.arange(num_docs).repeat_interleave(s)
        start = chosen.reshape(-1)
        fake = torch.empty(len(doc), k, dtype=torch.long)
        for lo in range(0, num_docs, DOC_CHUNK):  # one q state per document of the chunk (bounded memory)
            docs = torch.arange(lo, min(lo + DOC_CHUNK, num_docs))
            state = q.start(len(docs))
            for i in range(m):
                rows = ((start == i) & (doc >= lo) & (doc < lo + len(docs))).nonzero().squeeze(1)
                if len(rows):
                    fake[rows] = sample_windows(q, state[doc[rows] - lo], k, generator)
                if i + 1 < m:
                    state, _ = q.step(state, x[docs, i])
        true = x[doc].gather(1, start.unsqueeze(1) + torch.arange(k))
        return {"x": x, "doc": doc, "start": start, "true": true, "fake": fake, "per_doc": s}

    def _pair_scores(self, data: dict, idx: Tensor) -> tuple[Tensor, Tensor]:
        """f on the true and the model window of pairs idx; each document's prefix is read once."""
        start = data["start"][idx]
        docs, local = torch.unique(data["doc"][idx], return_inverse=True)
        summary = self._prefix_states(data["x"][docs], int(start.max()))[local, start]
        both = self.score_windows(
            summary.repeat(2, 1), torch.cat([data["true"][idx], data["fake"][idx]]), start.repeat(2)
        )
        return both[: len(idx)], both[len(idx) :]

    def _loss(self, f_true: Tensor, f_fake: Tensor) -> Tensor:
        pairwise = F.softplus(f_fake - f_true).mean()
        pointwise = 0.5 * (F.softplus(-f_true).mean() + F.softplus(f_fake).mean())
        return pairwise + self.pointwise * pointwise

    @torch.no_grad()
    def _scores(self, data: dict, idx: Tensor) -> tuple[Tensor, Tensor]:
        parts = [self._pair_scores(data, idx[c]) for c in _chunks(len(idx), 8192)]
        return torch.cat([a for a, _ in parts]), torch.cat([b for _, b in parts])

    def fit(self, p, q, k: int, num_docs: int = 2048, seed: int | None = None, log=quiet) -> LearnedDistinguisher:
        """Fit on `num_docs` fresh p documents (a `calibration` share held back); returns self."""
        if num_docs < 8:
            raise InputError(f"num_docs must be ≥ 8 (some are held back for calibration), got {num_docs}")
        g = make_generator(self.seed if seed is None else seed)
        self.length_, self.k_ = p.length, k
        data = self.pairs(p, q, k, num_docs, g)
        held = max(2, round(self.calibration * num_docs))
        cal_doc = data["doc"] >= num_docs - held  # the last documents are held back
        fit_idx, cal_idx = (~cal_doc).nonzero().squeeze(1), cal_doc.nonzero().squeeze(1)
        per = data["per_doc"]  # pairs of document i: rows i·per … i·per + per − 1
        fit_docs = num_docs - held
        docs_per_step = max(1, self.batch_size // per)
        opt = torch.optim.Adam(self.parameters(), lr=self.lr)
        best, best_state, history, stale = math.inf, None, [], 0
        self.train()
        for step in range(1, self.steps + 1):
            docs = torch.randint(0, fit_docs, (docs_per_step,), generator=g)  # all pairs of a few documents
            idx = (docs.unsqueeze(1) * per + torch.arange(per)).reshape(-1)
            loss = self._loss(*self._pair_scores(data, idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.parameters(), 1.0)
            if self.schedule == "cosine":  # decay to a tenth of lr: the last steps average out minibatch noise
                for group in opt.param_groups:
                    group["lr"] = self.lr * (0.55 + 0.45 * math.cos(math.pi * (step - 1) / self.steps))
            opt.step()
            if step % self.eval_every == 0 or step == self.steps:
                self.eval()
                held_loss = self._loss(*self._scores(data, cal_idx)).item()
                self.train()
                history.append({"step": step, "train_loss": loss.item(), "held_back_loss": held_loss})
                log(f"  learned d, step {step}: loss {loss.item():.4f}, held back {held_loss:.4f}")
                if held_loss < best:
                    best, self.best_step_, stale = held_loss, step, 0
                    best_state = snapshot(self)
                else:
                    stale += 1
                if self.patience is not None and stale >= self.patience:
                    break
        if best_state is not None:
            self.load_state_dict(best_state)
        self.eval()
        f_true, f_fake = self._scores(data, cal_idx)
        self.threshold_ = best_threshold(f_true, f_fake)
        differ = (data["true"][cal_idx] != data["fake"][cal_idx]).any(1)
        self.pair_accuracy_ = (f_true > f_fake)[differ].double().mean().item() if differ.any() else math.nan
        per_doc = (f_true > self.threshold_).double() - (f_fake > self.threshold_).double()
        self.calibration_advantage_ = mean_estimate(
            _per_document(per_doc, data["doc"][cal_idx]),
            "held-back fitting documents, empirical advantage at the threshold chosen on them (optimistic)",
        ).to_dict()
        t_true, t_fake = self._scores(data, fit_idx)
        adv = (t_true > self.threshold_).double().mean() - (t_fake > self.threshold_).double().mean()
        self.train_accuracy_ = (1 + adv.item()) / 2
        self.fit_docs_, self.fit_pairs_, self.history_ = num_docs, len(data["doc"]), history
        self.steps_ = history[-1]["step"] if history else 0
        return self

    def summary(self) -> dict:
        """The fitted state as JSON-safe numbers (for results.json)."""
        return {
            "train_accuracy": self.train_accuracy_,
            "pair_accuracy": self.pair_accuracy_ if math.isfinite(self.pair_accuracy_) else None,
            "threshold": self.threshold_,
            "calibration_advantage": self.calibration_advantage_,
            "fit_docs": self.fit_docs_,
            "fit_pairs": self.fit_pairs_,
            "held_back_share": self.calibration,
            "steps": self.steps_,
            "best_step": self.best_step_,
            "hidden": self.hidden,
            "parameters": sum(t.numel() for t in self.parameters()),
        }


def best_threshold(f_true: Tensor, f_fake: Tensor) -> float:
    """τ maximising mean 1[f_true > τ] − mean 1[f_fake > τ] (the empirical advantage of 1[f > τ]); +inf
    (d ≡ 0, advantage 0) when no threshold does better than 0. τ lies halfway between two scores."""
    scores = torch.cat([f_true, f_fake]).double()
    weight = torch.cat([torch.full_like(f_true, 1 / len(f_true)), torch.full_like(f_fake, -1 / len(f_fake))]).double()
    order = scores.argsort(descending=True)
    s, gain = scores[order], weight[order].cumsum(0)  # gain[j]: advantage of accepting the top j+1 scores
    distinct = torch.ones_like(s, dtype=torch.bool)
    distinct[:-1] = s[:-1] > s[1:]  # a threshold can only fall between different scores
    gain = torch.where(distinct, gain, -math.inf)
    j = int(gain.argmax())
    if gain[j] <= 0:
        return math.inf
    return float((s[j] + s[j + 1]) / 2) if j + 1 < len(s) else float(s[j] - 1.0)


def _child_ids(parent: Tensor, token: Tensor, base: int) -> tuple[Tensor, Tensor, Tensor]:
    """The distinct (parent, token) pairs of a trie level by one 1-D unique of parent·base + token: (their
    parents, their tokens, each row's child id)."""
    code, inverse = torch.unique(parent * base + token, return_inverse=True)
    return code // base, code % base, inverse


def _chunks(n: int, size: int = CHUNK) -> list[slice]:
    return [slice(i, i + size) for i in range(0, n, size)] or [slice(0, 0)]


def _per_document(values: Tensor, doc: Tensor) -> Tensor:
    """Mean of `values` over the rows of each document (the unit of independence)."""
    uniq, inverse = torch.unique(doc, return_inverse=True)
    sums = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inverse, values.double())
    counts = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inverse, torch.ones_like(values.double()))
    return sums / counts
