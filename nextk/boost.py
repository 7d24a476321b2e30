"""Boosting a language model with a distinguisher (docs/theory.md §4; Lemmas 1–2, eq. 1.3–1.5).

`boost` chooses the offset r and the step η on samples of p when they are not given, and reports the gain
Δ against Lemma 1's guarantee. The parts live one per module, as the paper draws them, and every name
stays importable from here:

| part | module |
|---|---|
| the tilted model q' (`Boosted`) | `nextk.tilted` |
| the choice of step (`choose_eta`, `support_proof`, `EtaChoice`, `eta_note`) | `nextk.eta` |
| the gain Δ (`window_statistics`, `gain_per_doc`, `gain_derivative`, `gain_estimate`, `log_z`) | `nextk.gain` |
| sampling at any vocabulary (`smc_sample`, `smc_gain`) | `nextk.smc` |
| checking a sampler against the exact law (`check_sampler`) | `nextk.sampler_check` |
| distillation (`distill`) | `nextk.distill` |
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from nextk import bounds
from nextk.bounds import check_window
from nextk.distill import _conditionals, distill
from nextk.errors import InputError
from nextk.eta import ETA_BRACKET, EtaChoice, best_eta, choose_eta, eta_note, support_proof
from nextk.gain import (
    CONFIDENCE,
    gain_derivative,
    gain_estimate,
    gain_per_doc,
    log_z,
    sampled_windows,
    violation_bound,
    window_statistics,
)
from nextk.lm import make_generator
from nextk.measure import check_pair
from nextk.stats import mean_estimate
from nextk.tilted import LOW_ACCEPTANCE, Boosted, _judge, _unprefix

__all__ = [
    "Boosted",
    "EtaChoice",
    "OffsetReport",
    "boost",
    "best_eta",
    "choose_eta",
    "distill",
    "eta_note",
    "gain_derivative",
    "gain_estimate",
    "gain_per_doc",
    "log_z",
    "support_proof",
    "violation_bound",
    "window_statistics",
    "CONFIDENCE",
    "ETA_BRACKET",
    "LOW_ACCEPTANCE",
    "_conditionals",
    "_judge",
    "_unprefix",
]


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
    gain_at_half_alpha: dict  # Δ(α_r/2) on the documents α_r came from: ≥ |S_r|α_r²/4 there is an identity
    alpha_fit: dict  # α_r on the fitting documents (the ones η was chosen on)
    gain_at_half_fit_alpha: dict  # Δ at η = α_fit/2 on the held-out documents: Lemma 1's check, fit apart from test

    def to_dict(self) -> dict:
        return asdict(self)


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
    windows = sampled_windows(num_docs, q.vocab_size, k)  # None: β exact (window enumeration)
    reports, choices = [], {}
    enumerated: dict = {}  # p's support, enumerated at most once for the proofs of every offset
    for r in [offset] if offset is not None else range(min(k, m)):
        blocks = list(range(r, m, k))
        if eta is None:
            Db = fit[0][:, blocks]
            side = 1 if bool((Db > 0).all()) else -1 if bool((Db <= 0).all()) else 0
            proof = support_proof(p, d, k, blocks, side, cache=enumerated) if side else None
            choice = choose_eta(*fit, blocks, proof=proof, windows=windows)
        else:
            e = float(eta)
            fitted = gain_per_doc(e, *fit, blocks).mean().item()
            if math.isfinite(e):
                choice = EtaChoice(e, "given", fitted, gain_derivative(e, *fit, blocks))
            else:  # a given limit is taken as proven only with a proof (support_proof), never from the sample
                proof = support_proof(p, d, k, blocks, 1 if e > 0 else -1, cache=enumerated)
                choice = EtaChoice(e, "given", fitted, 0.0, proof=proof)
        choices[r] = choice
        alpha = mean_estimate((test[0][:, blocks] - test[1][:, blocks]).mean(1), f"held-out p documents, {how}")
        half = alpha.value / 2
        alpha_fit = mean_estimate((fit[0][:, blocks] - fit[1][:, blocks]).mean(1), f"fitting p documents, {how}")
        reports.append(
            OffsetReport(
                offset=r,
                blocks=len(blocks),
                alpha=alpha.to_dict(),
                eta=choice.eta if math.isfinite(choice.eta) else None,
                eta_choice=choice.to_dict(),
                gain=gain_estimate(
                    choice.eta,
                    *test,
                    blocks,
                    f"held-out p documents, {how}",
                    proven=choice.proof is not None,
                    windows=windows,
                ),
                lemma1_guarantee=len(blocks) * alpha.value**2 / 4,
                # as `gain` is: with sampled β the low end is lowered by the log-Z bias bound (docs/theory.md §4)
                gain_at_half_alpha=gain_estimate(half, *test, blocks, f"held-out p documents, {how}", windows=windows),
                alpha_fit=alpha_fit.to_dict(),
                gain_at_half_fit_alpha=gain_estimate(
                    alpha_fit.value / 2, *test, blocks, f"held-out p documents, η = α_fit/2, {how}", windows=windows
                ),
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
