"""`nextk boost`: boost a checkpoint with a distinguisher and report before/after (docs/theory.md §4);
optionally distill the boosted model back into a network of q's size, initialised from q.

KL(p̄‖q̄) before boosting, after boosting and after distilling are exact (enumeration of p's support)
where the support has at most `exact_support` strings; otherwise Monte Carlo over p documents, clamped at
0 with a note when the sampled mean or an interval end falls below (a KL is never negative). The step η
is the maximiser of the fitted gain; the rejection limit η = +∞ (reported as such, with Δ∞) only when d
accepting every true window is proven (d is one of the source's checks, or its support was enumerated);
otherwise a finite step under the violation rate the sample allows. The report says which case applies."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from nextk.boost import boost, distill
from nextk.checkpoint import load_model, save_model
from nextk.console import quiet
from nextk.distinguishers import LearnedDistinguisher, OptimalDistinguisher
from nextk.distinguishers.checks import pass_rate
from nextk.errors import InputError, TooLargeError
from nextk.lm import make_generator
from nextk.measure import batched_log_prob, kl, support
from nextk.runs.common import RESULTS, check_trained_on, prepare, write_json
from nextk.sources import make_source
from nextk.stats import Estimate, exact, fmt, mean_estimate

KEEP_TARGET = 0.5  # the distilled model should keep at least half of the boosting gain


@dataclass
class Config:
    checkpoint: str  # model.safetensors or its run folder: the q to boost
    source: str  # registry name of the truth p
    source_params: dict  # its parameters
    k: int = 4  # window size
    distinguisher: str = "check"  # check | check:NAME | learned | optimal
    num_docs: int = 256  # p documents for choosing (r, η), and as many for reporting Δ
    distill_steps: int = 0  # also distill the boosted model into a copy of q (optimiser steps; 0: no)
    seed: int = 0  # every random draw derives from this
    distill_docs: int = 4096  # samples of the boosted model distilled on (its exact conditionals as targets)
    distill_lr: float = 1e-3  # AdamW learning rate of distillation (small: it starts from q)
    exact_support: int = 200_000  # KLs are exact when p's support has at most this many strings
    allow_other_source: bool = False  # boost on a source other than the one the checkpoint was trained on


def pick_distinguisher(spec: str, source, model, k: int, seed: int):
    """(its name, a function that builds it): the spec is checked at once, the building (a learned
    distinguisher's fit) waits until the run folder is accepted."""
    if spec == "learned":
        return "learned", lambda: LearnedDistinguisher(source.vocab_size, seed=seed).fit(source, model, k)
    if spec == "optimal":
        return "optimal", lambda: OptimalDistinguisher(source, model, k)
    if spec.startswith("check"):
        name = spec.partition(":")[2] or next(iter(source.checks), "")
        if name not in source.checks:
            raise InputError(f"source has no checker {name!r}; it has {sorted(source.checks)}")
        return f"check:{name}", lambda: source.checks[name]
    raise InputError(f"unknown distinguisher {spec!r}; use check, check:NAME, learned or optimal")


class KLMeter:
    """KL(p̄‖·) for several models on one footing: exact over p's support when it has at most `budget`
    strings, otherwise Monte Carlo over the same p documents for every model (clamped at 0, with a note)."""

    def __init__(self, source, budget: int, num_docs: int, seed: int):
        self.source, self.num_docs, self.seed = source, num_docs, seed
        try:
            self.x, self.lp = support(source, budget=budget) if source.exact else (None, None)
        except TooLargeError:
            self.x = self.lp = None

    @property
    def exact(self) -> bool:
        return self.x is not None

    def __call__(self, model) -> Estimate:
        if self.exact:
            lq = batched_log_prob(model, self.x)
            w = self.lp.exp()
            value = math.inf if bool(((w > 0) & lq.isneginf()).any()) else (w * (self.lp - lq)).sum().item()
            return exact(value, f"exact enumeration of the support ({len(self.x):,} strings)")
        return clamp(kl(self.source, model, num_docs=self.num_docs, seed=self.seed))

    def drop(self, before: Estimate, after: Estimate, q, boosted) -> dict:
        """KL(p̄‖q̄) − KL(p̄‖q̄′) from the two models' own log-probabilities (Lemma 1's measured side,
        docs/theory.md §4): exact over the support when it fits, else the paired mean of log q̄′(x) − log q̄(x)
        over fresh p documents (seed + 1 from the meter's), with its interval."""
        if self.exact:
            if not (math.isfinite(before.value) and math.isfinite(after.value)):
                return {"value": None, "method": f"undefined: KL before {before.value}, after {after.value}"}
            return exact(before.value - after.value, after.method).to_dict()
        x = self.source.sample(self.num_docs, generator=make_generator(self.seed + 1))
        diff = batched_log_prob(boosted, x) - batched_log_prob(q, x)
        if bool(diff.isnan().any()):
            return {"value": None, "method": "undefined: q gives a fresh p document probability 0"}
        if bool(diff.isneginf().any()):  # q′ gives a p document probability 0: KL after boosting infinite
            return {"value": None, "documents_with_zero_probability": int(diff.isneginf().sum()),
                    "method": "q′ gives fresh p documents probability 0: the drop is −∞"}  # fmt: skip
        return mean_estimate(diff, "paired mean of log q′(x) − log q(x) over fresh p documents").to_dict()


def clamp(e: Estimate) -> Estimate:
    """A sampled KL with its value and interval ends raised to 0 where they fell below, saying so."""
    if e.value >= 0 and e.low >= 0:
        return e
    note = "; clamped at 0 (a KL is ≥ 0; the Monte Carlo mean or interval end fell below)"
    return Estimate(max(e.value, 0.0), e.stderr, max(e.low, 0.0), max(e.high, 0.0), e.n, e.method + note)


def kept_share(before: Estimate, boosted: Estimate, distilled: Estimate) -> dict:
    """(KL before − KL distilled) / (KL before − KL boosted): the share of the boosting gain the distilled
    model keeps. Exact when the three KLs are; otherwise the value only (the three estimates share their
    documents, so their errors are correlated and no interval is claimed)."""
    gain, kept = before.value - boosted.value, before.value - distilled.value
    share = kept / gain if gain > 0 and math.isfinite(gain) else math.nan
    method = "exact" if before.stderr == boosted.stderr == distilled.stderr == 0 else "point estimate, no interval"
    return {"value": share if math.isfinite(share) else None, "gain": gain, "kept": kept, "method": method}


def half_step(model, d, k: int, n: int, b, meter: KLMeter, kl_q: Estimate) -> dict | None:
    """q boosted at the chosen offset with η = α_fit/2 (α_fit from the fitting documents, so independent of the
    held-out α_r the guarantee uses): its KL and KL drop (docs/theory.md §4). None when α_fit is 0."""
    off = next(o for o in b.search_["offsets"] if o["offset"] == b.offset)
    eta = off["alpha_fit"]["value"] / 2
    if eta == 0:
        return None
    bh = boost(model, d, k, offset=b.offset, eta=eta, length=n)
    kl_h = meter(bh)
    return {"offset": b.offset, "eta": eta, "kl_after": kl_h.to_dict(), "kl_drop": meter.drop(kl_q, kl_h, model, bh)}


def run(cfg: Config, out: Path, *, log=quiet, progress: bool = False, force_new: bool = False) -> dict:
    source = make_source(cfg.source, **cfg.source_params)
    model = load_model(cfg.checkpoint, vocab_size=source.vocab_size)
    k, spec, num_docs, seed, distill_steps = cfg.k, cfg.distinguisher, cfg.num_docs, cfg.seed, cfg.distill_steps
    n = source.length
    name, make = pick_distinguisher(spec, source, model, k, seed)  # a bad spec fails before the folder exists
    check_trained_on(cfg.checkpoint, cfg.source, source, cfg.allow_other_source, log)  # as eval: before the folder
    prepare(out, cfg, force_new=force_new, log=log)
    d = make()
    b = boost(model, d, k, p=source, num_docs=num_docs, seed=seed)
    log(f"boosted: offset {b.offset}, {b.search_['eta_note']}")
    meter = KLMeter(source, cfg.exact_support, num_docs, seed + 1)
    kl_q, kl_b = meter(model), meter(b)
    kl_drop = meter.drop(kl_q, kl_b, model, b)
    half = half_step(model, d, k, n, b, meter, kl_q)
    check_name = next(iter(source.checks), None)
    res = {
        "distinguisher": name,
        "k": k,
        "length": n,
        "offset": b.offset,
        "eta": b.eta if math.isfinite(b.eta) else None,
        "eta_kind": b.search_["eta_kind"],
        "eta_note": b.search_["eta_note"],
        "eta_proof": b.search_["eta_proof"],
        "search": b.search_,
        "kl_method": "exact" if meter.exact else "sampled",
        "kl_before": kl_q.to_dict(),
        "kl_after": kl_b.to_dict(),
        "kl_drop": kl_drop,  # Lemma 1's measured side: exact, or paired over fresh p documents
        "half_step": half,  # the same at η = α_fit/2, where Lemma 1's guarantee is |S_r|α_r²/4 > 0
        "source": repr(source),
        "source_params": source.params,
        "model": model.name,
        "lemma1_guarantee_overall": b.search_["lemma1_guarantee_overall"],
        "lemma1_guarantee_tight": b.search_["lemma1_guarantee_tight"],
    }
    if check_name:
        check = source.checks[check_name]
        res["checker"] = check_name
        res["pass_before"] = pass_rate(check, model.sample(num_docs, n, generator=seed + 2)).to_dict()
        res["pass_after"] = pass_rate(check, b.sample(num_docs, generator=seed + 2)).to_dict()
        res["acceptance"] = b.acceptance_
    if distill_steps:
        student = copy.deepcopy(model)  # initialised from q
        tr = distill(
            b,
            student,
            num_docs=cfg.distill_docs,
            steps=distill_steps,
            lr=cfg.distill_lr,
            seed=seed + 3,
            eval_every=max(distill_steps // 6, 1),
            progress=progress,
            log=log,
        )
        save_model(student, out / "distilled.safetensors")
        kl_r = meter(student)
        res["kl_distilled"] = kl_r.to_dict()
        res["distill"] = {
            "init": "q (the model before boosting)",
            "steps": tr.steps,
            "samples": tr.samples,
            "tokens": tr.tokens,
            "targets": tr.targets,
            "lr": cfg.distill_lr,
            "best_step": tr.best_step,
            "history": tr.history,
            "kept_share": kept_share(kl_q, kl_b, kl_r),
        }
    res["sentences"] = sentences(res)
    write_json(out / RESULTS, res)
    return res


def lemma1_line(res: dict, half: bool = False) -> str | None:
    """Lemma 1 at the chosen (r, η) (`half`: at η = α_fit/2 there): the KL drop from the models' log-probabilities
    against |S_r|(η·α_r − η²) (docs/theory.md §4), α_r held out; above / below at one-sided 5% by the normal
    test, else indistinguishable."""
    s = res["search"]
    where = (res.get("half_step") or {}) if half else {"kl_drop": res.get("kl_drop"), "eta": s.get("eta")}
    drop, eta = where.get("kl_drop") or {}, where.get("eta")
    off = next((o for o in s.get("offsets", []) if o.get("offset") == s.get("offset")), None)
    if drop.get("value") is not None and (eta is None or not math.isfinite(eta)):
        return "Lemma 1: at η = ±∞ the guarantee |S_r|(ηα_r − η²) is −∞, so this run tests nothing (vacuous)"
    if drop.get("value") is None or off is None:
        return None
    a, n = off["alpha"], off["blocks"]
    g, se_g = n * (eta * a["value"] - eta * eta), n * abs(eta) * a["stderr"]
    se_t = math.hypot(drop["stderr"], se_g)
    z = (drop["value"] - g) / se_t if se_t > 0 else math.copysign(math.inf, drop["value"] - g)
    side = "above" if z > 1.645 else "BELOW" if z < -1.645 else "not distinguishable from"
    return (
        f"Lemma 1 at r={s.get('offset')}, η={eta:.4f}: the KL drop {fmt(drop, 5)} ({drop.get('method')}) is {side} "
        f"|S_r|(ηα_r − η²) = {g:.5f} ± {1.96 * se_g:.5f} (α_r {fmt(a)} held out, |S_r| = {n}; z = {z:.2f}, "
        "one-sided 5%)"
    )


def sentences(res: dict) -> list[str]:
    """The conclusions, each computed from the measured numbers."""
    out = [f"η: {res['eta_note']}"]
    before, after = res["kl_before"], res["kl_after"]
    drop = None if before["value"] is None or after["value"] is None else before["value"] - after["value"]
    gain = res["search"]["gain"]
    if drop is not None:
        g = f"the held-out gain Δ {fmt(gain)}" if gain.get("value") is not None else "Δ (undefined held out)"
        out.append(
            f"KL(p̄‖q̄) {fmt(before, 5)} → {fmt(after, 5)} after boosting ({res['kl_method']}): a drop of "
            f"{drop:.5f} nats{'' if res['kl_method'] == 'exact' else ' (difference of the two estimates)'}, "
            f"against {g}"
        )
        if res["kl_method"] == "exact" and gain.get("low") is not None:
            inside = gain["low"] <= drop <= gain["high"]
            out.append(
                f"the exact drop {drop:.5f} lies {'inside' if inside else 'OUTSIDE'} the held-out interval of Δ "
                f"[{gain['low']:.5f}, {gain['high']:.5f}]"
            )
    out += [line for half in (False, True) if (line := lemma1_line(res, half))]
    for label, key in (("before", "kl_before"), ("after boosting", "kl_after"), ("after distilling", "kl_distilled")):
        if "clamped at 0" in (res.get(key) or {}).get("method", ""):
            out.append(f"KL {label}: the Monte Carlo estimate or its interval fell below 0 and was clamped at 0")
    if "kl_distilled" in res:
        dist, share = res["distill"], res["distill"]["kept_share"]
        line = (
            f"distilled into a copy of q ({dist['steps']} steps, {dist['samples']} samples of the boosted model, "
            f"{dist['targets']}, kept step {dist['best_step']}): KL {fmt(res['kl_distilled'], 5)}"
        )
        if share["value"] is None:
            line += "; boosting gained nothing to keep"
        else:
            met = "met" if share["value"] >= KEEP_TARGET else "missed"
            line += (
                f", keeping {share['value']:.2f} of the boosting gain ({share['kept']:.5f} of {share['gain']:.5f} "
                f"nats; {share['method']}) — the target of {KEEP_TARGET:.0%} is {met} at this budget"
            )
        out.append(line)
    return out


def eta_text(eta, kind: str) -> str:
    if kind.startswith("limit"):
        return "+∞ (limit)" if kind.endswith("+inf") else "−∞ (limit)"
    return f"{eta:.3f}"


def table(res: dict) -> Table:
    """Before and after, one row per quantity (every interval on one line at 80 columns)."""
    t = Table(
        title=f"boost with {escape(res['distinguisher'])} at k={res['k']}: offset r={res['offset']}, "
        f"η={eta_text(res['eta'], res['eta_kind'])}"
    )
    t.add_column("quantity")
    t.add_column("estimate [95% interval]", no_wrap=True)
    f = fmt
    t.add_row("KL(p̄‖q̄) before, nats", f(res["kl_before"], 5))
    t.add_row("KL after boosting", f(res["kl_after"], 5))
    if "kl_distilled" in res:
        t.add_row("KL after distilling", f(res["kl_distilled"], 5))
    if "pass_before" in res:
        t.add_row(escape(f"pass rate '{res['checker']}' before"), f(res["pass_before"]))
        t.add_row("pass rate after boosting", f(res["pass_after"]))
    t.add_row("gain Δ (held out)", f(res["search"]["gain"]))
    t.caption = f"KL: {res['kl_method']}; intervals 95% over documents"
    return t


def offsets_table(res: dict) -> Table:
    """Every offset r tried: its α_r, Lemma 1's guarantee, the held-out gain at the chosen η and at α_r/2."""
    t = Table(title=f"offsets tried (k={res['k']})")
    t.add_column("r", justify="right")
    t.add_column("α_r", justify="right")
    t.add_column("Lemma 1: Δ ≥", justify="right")
    t.add_column("Δ [95% interval]", no_wrap=True)
    t.add_column("at η", no_wrap=True)
    t.add_column("Δ at η = α_r/2", justify="right")
    for o in res["search"]["offsets"]:
        t.add_row(
            str(o["offset"]),
            f"{o['alpha']['value']:+.4f}",
            f"{o['lemma1_guarantee']:.4f}",
            fmt(o["gain"]),
            eta_text(o["eta"], o["eta_choice"]["kind"]),
            f"{o['gain_at_half_alpha']['value']:.4f}",
        )
    return t


def show(res: dict) -> list:
    return [table(res), offsets_table(res), *res.get("sentences", sentences(res))]


def draw(res: dict, out: Path) -> list[Path]:
    """One quantity per panel, each on its own y-axis with a legend: the gain Δ per offset, Lemma 1's
    guarantee per offset (two orders of magnitude below Δ, so apart), KL(p̄‖·) before and after, and the
    checker's pass rate before and after."""
    from nextk.runs.plots import BOUND, errorbar, integer_ticks, log_y, plt, save, wrapped

    offs = res["search"]["offsets"]
    rates = "pass_before" in res
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5)) if rates else plt.subplots(1, 3, figsize=(14, 4.2))
    a1, a2, a3 = axes.flat[:3]
    shown = [o for o in offs if o["gain"].get("value") is not None]
    errorbar(a1, [o["offset"] for o in shown], [o["gain"] for o in shown], fmt="o", label="Δ at chosen η (∞: limit)")
    a1.plot([o["offset"] for o in offs], [o["gain_at_half_alpha"]["value"] for o in offs], "s", label="Δ at η = α_r/2")
    a1.axhline(0, color="gray", lw=0.5)
    a1.set_ylabel("KL decrease Δ (nats)")
    a1.set_title("held-out gain per offset", fontsize=9)
    guarantee = [o["lemma1_guarantee"] for o in offs]
    a2.plot([o["offset"] for o in offs], guarantee, "_", ms=20, mew=2, color=BOUND["color"], label="Lemma 1: Δ ≥ this")
    if guarantee and min(guarantee) > 0:
        log_y(a2, [{"value": g, "low": g, "high": g} for g in guarantee])
    a2.set_ylabel("guaranteed KL decrease (nats)")
    a2.set_title("Lemma 1's guarantee per offset", fontsize=9)
    for ax in (a1, a2):
        ax.set_xlabel("offset r")
    stages = [("before", res["kl_before"]), ("boosted", res["kl_after"])]
    if "kl_distilled" in res:
        stages.append(("distilled", res["kl_distilled"]))
    stages = [(s, e) for s, e in stages if e.get("value") is not None]
    errorbar(a3, list(range(len(stages))), [e for _, e in stages], fmt="o", label=f"KL(p̄‖·) ({res['kl_method']})")
    a3.set_xticks(list(range(len(stages))), [s for s, _ in stages])
    a3.set_ylabel("KL(p̄‖·) (nats)")
    a3.set_title("KL to the truth", fontsize=9)
    panels = [a1, a2, a3]
    if rates:
        a4 = axes.flat[3]
        errorbar(a4, [0, 1], [res["pass_before"], res["pass_after"]], fmt="s", color="C2", label="Wilson 95% interval")
        a4.set_xticks([0, 1], ["before", "boosted"])
        a4.set_xlim(-0.5, 1.5)
        a4.set_ylabel("pass rate")
        a4.set_title(f"pass rate of checker '{res['checker']}' on samples", fontsize=9)
        panels.append(a4)
    for ax in panels:
        ax.legend(fontsize=8)
    integer_ticks(a1, a2)
    title = f"{res['model']} on {res['source']}: boosting with {res['distinguisher']} (k={res['k']})"
    fig.suptitle(wrapped(title, 110 if rates else 150), fontsize=10)
    return [save(fig, out / "boost.png")]
