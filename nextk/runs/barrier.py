"""`nextk barrier report`: sampling cost by order, learning by order, hidden stream / seed prefix, random
primes, uniformity → JSON, plots and summary.md (about 6 minutes on 2 cores at the defaults).

Every conclusion it prints (summary, plot titles, results.json "conclusions") is computed from the measured
numbers and their intervals by `nextk.barrier.conclusions`.

Learning by order: equal GRUs and equal budgets for both orders at each d. At the default budget (GRU-64, 1500
steps × 64 documents) both orders learn d = 1 and d = 2 (valid 0.89–1.00 in the run below) and no order effect
shows. At d = 3 every document needs a 3 × 3-digit product (or factorisation) of which there are 10,296, and
smaller budgets than the one below leave valid samples rare (the `hard_*` options run any budget, e.g.
`--hard-digits 3 --hard-steps 2000`). d = 3 therefore has its own option and budget, `hard_digits` (`hard_*`
fields; default GRU-256, 8000 steps × 256 documents = 2.05M documents, lr 3e-3, no curriculum: about 23
minutes per order on one core). Measured by `nextk barrier report --hard-digits 3` (1000 samples per order):
valid 0.105 [0.087, 0.126] factors-first against 0.025 [0.017, 0.037] product-first — the order effect shows,
the intervals apart — with excess loss 0.238 against 0.376 nats/token and the digits of N agreeing with p·q at
0.464 against 0.380. Rows report `validity` with its interval and `product_digits`, the share of N's digits
that agree with p·q, a graded measure of the arithmetic validity needs, so progress shows before the first
valid sample does."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.markup import escape

from nextk.barrier.conclusions import (
    cohens_w_interval,
    conclusions,
    interval_text,
    invalid_rate,
    label,
    order_headline,
    sampling_headline,
    seconds_text,
)
from nextk.barrier.hidden import HiddenStream, SeedPrefix, visible_tv
from nextk.barrier.primes import prime_costs
from nextk.barrier.sampling import sampling_cost
from nextk.barrier.uniformity import uniformity_test
from nextk.console import quiet
from nextk.distinguishers.checks import pass_rate
from nextk.errors import InputError
from nextk.measure import excess_loss
from nextk.models import GRU
from nextk.runs.common import RESULTS, prepare, write_json
from nextk.runs.plots import count_ticks, errorbar, integer_ticks, log_y, plt, save, wrapped
from nextk.sources import Factorization, RandomNumber
from nextk.stats import Z95
from nextk.train import check_budget, train


@dataclass
class Config:
    """The barrier report's experiments; the defaults finish in about 6 minutes on 2 CPU cores."""

    sampling_digits: list = field(
        default_factory=lambda: [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24]
    )  # digits d of each prime in the sampling-cost sweep
    sampling_budget_s: float = 120.0  # seconds shared by the four samplers
    prime_digits: list = field(
        default_factory=lambda: [2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24]
    )  # digits d of the random-prime oracle timings
    prime_budget_s: float = 30.0  # seconds for the prime oracle timings
    learn_digits: list = field(default_factory=lambda: [1, 2])  # d for learning by order (the default budget)
    hidden: int = 64  # GRU width of every trained model (equal size across orders)
    steps: int = 1500  # optimiser steps of every trained model (equal budget across orders)
    batch_size: int = 64  # documents per step
    lr: float = 5e-3  # AdamW learning rate
    hidden_digits: int = 2  # d for the hidden-stream / seed-prefix comparison
    seed_bits: int = 12  # bits of the hidden seed
    eval_samples: int = 1000  # model samples judged for validity / uniformity
    seed: int = 0  # every random draw derives from this
    hard_digits: list[int] = field(default_factory=list)  # d learned with the hard_* budget below (e.g. 3)
    hard_hidden: int = 256  # GRU width for hard_digits
    hard_steps: int = 8000  # optimiser steps for hard_digits (after the curriculum)
    hard_batch_size: int = 256  # documents per step for hard_digits
    hard_lr: float = 3e-3  # AdamW learning rate for hard_digits
    hard_curriculum_steps: int = 0  # steps on each smaller d first, same order (0: no curriculum)


def trained(source, cfg: Config, seed: int):
    model = GRU(source.vocab_size, cfg.hidden, seed=seed)
    train(model, source, steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=seed, progress=False)
    return model


def budget(cfg: Config, d: int) -> dict:
    """The training budget of learning by order at d: the default, or the hard_* one for hard_digits."""
    if d in cfg.hard_digits:
        return {
            "hidden": cfg.hard_hidden,
            "steps": cfg.hard_steps,
            "batch_size": cfg.hard_batch_size,
            "lr": cfg.hard_lr,
            "curriculum": [[c, cfg.hard_curriculum_steps] for c in range(1, d) if cfg.hard_curriculum_steps],
        }
    return {"hidden": cfg.hidden, "steps": cfg.steps, "batch_size": cfg.batch_size, "lr": cfg.lr, "curriculum": []}


def trained_on_order(d: int, order: str, b: dict, seed: int):
    """A GRU of the budget's width trained on Factorization(d, order), after the curriculum (each smaller d
    of the same order, in turn): the vocabulary is the same for every d, so one network reads all."""
    src = Factorization(d, order=order)
    model = GRU(src.vocab_size, b["hidden"], seed=seed)
    for i, (c, steps) in enumerate(b["curriculum"]):
        train(model, Factorization(c, order=order), steps=steps, batch_size=b["batch_size"], lr=b["lr"], seed=seed + i)
    train(model, src, steps=b["steps"], batch_size=b["batch_size"], lr=b["lr"], seed=seed, progress=False)
    return model


def product_digits(src: Factorization, x) -> dict:
    """Share of the digits of N that agree with p·q, position by position, over the samples that follow the
    template (a graded measure of the multiplication — or the factorisation — validity needs), with a
    normal 95% interval over those samples."""
    import re

    from nextk.stats import mean_estimate

    shape = {"{N}": r"(?P<N>\d+)", "{p}": r"(?P<p>\d+)", "{q}": r"(?P<q>\d+)"}
    pattern = re.escape(src.pattern)
    for key, group in shape.items():
        pattern = pattern.replace(re.escape(key), group)
    scores = []
    for text in src.decode(x):
        m = re.fullmatch(pattern, text)
        if m:
            want, got = str(int(m["p"]) * int(m["q"])), m["N"]
            scores.append(sum(a == b for a, b in zip(want, got)) / max(len(want), len(got)))
    if len(scores) < 2:
        return {"value": None, "stderr": None, "low": None, "high": None, "n": len(scores), "method": "too few parsed"}
    return mean_estimate(scores, "samples that follow the template: digits of N equal to those of p·q").to_dict()


def learning_by_order(cfg: Config, log) -> list[dict]:
    rows = []
    for d in sorted(set(cfg.learn_digits) | set(cfg.hard_digits)):
        b = budget(cfg, d)
        for order in ("product_first", "factors_first"):
            src = Factorization(d, order=order)
            t0 = time.perf_counter()
            model = trained_on_order(d, order, b, cfg.seed)
            seconds = time.perf_counter() - t0
            x = model.sample(cfg.eval_samples, src.length, generator=cfg.seed + 1)
            docs = b["batch_size"] * (b["steps"] + sum(steps for _, steps in b["curriculum"]))
            row = {
                "digits": d,
                "order": order,
                "excess_loss": excess_loss(src, model, num_docs=1000, seed=cfg.seed + 2).to_dict(),
                "validity": pass_rate(src.checks["arithmetic"], x).to_dict(),
                "product_digits": product_digits(src, x),
                "budget": {**b, "documents_seen": docs, "seconds": seconds},
            }
            rows.append(row)
            ex, ok, pd = row["excess_loss"]["value"], row["validity"], row["product_digits"]
            log(
                f"  d={d} {order:13s}: excess loss {ex:.4f}, valid {interval_text(ok)}, digits of N = p·q "
                f"{interval_text(pd)} (GRU-{b['hidden']}, {docs:,} documents, {seconds:.0f} s)"
            )
    return rows


def budget_sentences(res: dict) -> list[str]:
    """Per d, the budget used, whether it produced any valid sample in either order, and the graded
    agreement of N with p·q per order (each computed from the rows)."""
    out = []
    for d in sorted({r["digits"] for r in res.get("learning", [])}):
        rows = [r for r in res["learning"] if r["digits"] == d]
        b = rows[0].get("budget")
        if not b:
            continue
        cur = "".join(f", after {s} steps on d = {c}" for c, s in b["curriculum"])
        valid = {r["order"]: r["validity"] for r in rows}
        learned = [label(o) for o, v in valid.items() if v["value"] > 0]
        what = (
            f"valid samples in {', '.join(learned)}"
            if learned
            else "no valid sample in either order, so no order effect in validity can show at this budget"
        )
        digits = "; ".join(
            f"{label(r['order'])} digits of N = p·q {interval_text(r.get('product_digits') or {})}" for r in rows
        )
        out.append(
            f"d = {d}: GRU-{b['hidden']}, {b['steps']} steps × {b['batch_size']} documents at lr {b['lr']}{cur} "
            f"({b['documents_seen']:,} documents per model): {what}; {digits}."
        )
    return out


def hidden_comparison(cfg: Config, log) -> list[dict]:
    d = cfg.hidden_digits
    plain = Factorization(d)
    variants = {
        "plain (product first)": plain,
        "hidden stream": HiddenStream(d),
        "seed prefix": SeedPrefix(d, cfg.seed_bits),
    }
    rows = []
    for name, src in variants.items():
        model = trained(src, cfg, cfg.seed)
        x = model.sample(cfg.eval_samples, src.length, generator=cfg.seed + 1)
        row = {
            "variant": name,
            "length": src.length,
            "validity": pass_rate(src.checks["arithmetic"], x).to_dict(),
            "excess_loss_whole_string": excess_loss(src, model, num_docs=1000, seed=cfg.seed + 2).to_dict(),
        }
        if src is plain:
            from nextk.measure import batched_log_prob, support

            y, lp = support(plain)
            row["visible_tv"] = float((lp.exp() - batched_log_prob(model, y).exp()).clamp_min(0).sum())
            row["visible_tv_method"] = "exact: Σ_y max(0, p(y) − q(y)) over the true support"
        else:
            tv = visible_tv(src, model)
            row["visible_tv"] = tv["tv_upper"]
            row["visible_tv_method"] = (
                f"upper bound: q's visible marginal summed over {tv['hidden_strings']:,} well-formed hidden strings"
            )
            if isinstance(src, SeedPrefix):
                row["seed_bias_tv"] = src.seed_bias_tv
        rows.append(row)
        log(f"  {name:22s}: valid {row['validity']['value']:.3f}, visible TV {row['visible_tv']:.4f}")
    return rows


def randomized_task(cfg: Config, log) -> list[dict]:
    src = RandomNumber(3)
    rows = [{"model": "exact source", **uniformity_test(src.sample(20 * cfg.eval_samples, generator=cfg.seed), 3)}]
    for steps in (30, cfg.steps):
        model = GRU(src.vocab_size, cfg.hidden, seed=cfg.seed)
        train(model, src, steps=steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed, progress=False)
        rows.append(
            {
                "model": f"GRU-{cfg.hidden}, {steps} steps",
                **uniformity_test(model.sample(20 * cfg.eval_samples, 3, generator=cfg.seed + 1), 3),
            }
        )
    for r in rows:
        w, bad = r["cohens_w_corrected"], r["invalid_rate"]
        log(f"  {r['model']:22s}: χ² p-value {r['p_value']:.3g}, Cohen's w (corrected) {w:.3f}, invalid {bad:.3f}")
    return rows


def check(cfg: Config) -> None:
    """Every option, before the first stage runs (the stages take minutes)."""
    digits = {
        "sampling-digits": cfg.sampling_digits,
        "prime-digits": cfg.prime_digits,
        "learn-digits": cfg.learn_digits,
        "hard-digits": cfg.hard_digits,
        "hidden-digits": [cfg.hidden_digits],
    }
    for name, ds in digits.items():
        if any(not isinstance(d, int) or d < 1 for d in ds):
            raise InputError(f"--{name} must be digit counts ≥ 1, got {ds}")
    check_budget(steps=cfg.steps, batch_size=cfg.batch_size)
    check_budget(steps=cfg.hard_steps, batch_size=cfg.hard_batch_size)
    for name, v in (("hidden", cfg.hidden), ("hard-hidden", cfg.hard_hidden), ("eval-samples", cfg.eval_samples)):
        if v < 1:
            raise InputError(f"--{name} must be ≥ 1, got {v}")


def run(cfg: Config, out: Path, *, log=quiet, progress: bool = False, force_new: bool = False) -> dict:
    check(cfg)
    prepare(out, cfg, force_new=force_new, log=log)
    t0 = time.perf_counter()
    res: dict = {"sampling_requested_digits": list(cfg.sampling_digits)}
    stages = [
        ("sampling", lambda: sampling_cost(cfg.sampling_digits, cfg.sampling_budget_s, log=log, seed=cfg.seed)),
        ("primes", lambda: prime_costs(cfg.prime_digits, cfg.prime_budget_s, seed=cfg.seed, log=log)),
        ("learning", lambda: learning_by_order(cfg, log)),
        ("hidden", lambda: hidden_comparison(cfg, log)),
        ("uniformity", lambda: randomized_task(cfg, log)),
    ]
    for name, stage in stages:
        log(escape(f"[{name}]"))
        res[name] = stage()
        res.setdefault("seconds", {})[name] = time.perf_counter() - t0
        write_json(out / RESULTS, res)
    res["conclusions"] = conclusions(res, cfg.sampling_digits)
    write_json(out / RESULTS, res)
    (out / "summary.md").write_text(summary(res))
    return res


def report_conclusions(res: dict) -> dict:
    """The conclusions stored in results.json, or computed from it (plots and summary read only res)."""
    if "conclusions" not in res:
        requested = res.get("sampling_requested_digits") or sorted(
            {r["digits"] for v in res.get("sampling", {}).values() for r in v["rows"]}
        )
        res["conclusions"] = conclusions(res, requested)
    return res["conclusions"]


def draw(res: dict, out: Path) -> list[Path]:
    c = report_conclusions(res)
    paths = []
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, s in res["sampling"].items():
        rows = s["rows"]
        times = [
            {
                "value": r["seconds_per_sample"],
                "low": r["seconds_per_sample"] - Z95 * (r.get("stderr") or 0.0),
                "high": r["seconds_per_sample"] + Z95 * (r.get("stderr") or 0.0),
            }
            for r in rows
        ]
        g = c["sampling"]["growth"][name]
        errorbar(
            ax,
            [r["digits"] for r in rows],
            times,
            marker="o",
            label=f"{label(name)}: {interval_text(g, '.2f')} dec/digit",
        )
    ax.set_yscale("log")
    ax.set_xlabel("digits d of each prime")
    ax.set_ylabel("seconds per sample (95% interval)")
    ax.set_title(wrapped("Factorization: sampling cost by order. " + sampling_headline(c["sampling"]), 110), fontsize=9)
    ax.legend(fontsize=7)
    integer_ticks(ax)
    paths.append(save(fig, out / "sampling_cost.png"))

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    pr = res["primes"]
    tv = [r for r in pr if r.get("tv") is not None]
    a1.plot([r["digits"] for r in tv], [r["tv"] for r in tv], marker="o")
    a1.set_xlabel("digits d")
    a1.set_ylabel("TV(approximation, uniform prime), exact")
    a1.set_title(f"max exact TV {max((r['tv'] for r in tv), default=float('nan')):.4f}", fontsize=9)
    shown = []
    for key in ("exact", "approx"):
        pts = [(r["digits"], r[key]) for r in pr if r.get(key)]
        if pts:
            a2.plot(*zip(*pts), marker="o", label=key)
            shown += [{"value": s, "low": s, "high": s} for _, s in pts]
    log_y(a2, shown)
    a2.set_xlabel("digits d")
    a2.set_ylabel("mean seconds per prime")
    a2.legend()
    for ax in (a1, a2):
        count_ticks(ax, [r["digits"] for r in pr])
    fig.suptitle("Random primes: li-density approximation vs exact counts")
    paths.append(save(fig, out / "primes.png"))

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    for order, dx in (("product_first", -0.04), ("factors_first", 0.04)):  # apart, so equal values both show
        rows = [r for r in res["learning"] if r["order"] == order]
        ds = [r["digits"] + dx for r in rows]
        for ax, key in ((a1, "excess_loss"), (a2, "validity")):
            errorbar(ax, ds, [r[key] for r in rows], marker="o", label=label(order))
    a1.set_ylabel("excess loss (nats/token)")
    a2.set_ylabel("valid samples (N = p·q, p, q prime)")
    for ax, key, quantity in ((a1, "excess_loss", "excess loss"), (a2, "validity", "valid rate")):
        ax.set_title(order_headline(c["learning"][key], quantity), fontsize=8, wrap=True)
        ax.set_xlabel("digits d")
        ax.legend()
        count_ticks(ax, [r["digits"] for r in res["learning"]])
    fig.suptitle("Same GRU size and training budget, both orders (95% intervals)")
    paths.append(save(fig, out / "learning.png"))
    return paths


def summary(res: dict) -> str:
    c = report_conclusions(res)
    s = res["sampling"]
    lines = ["# Barrier report", "", "## Conclusions", ""]
    lines += [f"- {x['sentence']}" for x in c["sampling"]["versus"]]
    lines += [f"- {x['sentence']}" for x in c["sampling"]["stopped"].values()]
    lines += [f"- {c['primes']['sentence']}"]
    lines += [f"- {x['sentence']}" for key in ("validity", "excess_loss") for x in c["learning"][key]]
    lines += [f"- {x}" for x in budget_sentences(res)]
    lines += [f"- {x['sentence']}" for x in c["hidden"]]
    lines += [f"- {x['sentence']}" for x in c["uniformity"]]
    lines += [
        "",
        "## Sampling cost (seconds per sample; fitted growth)",
        "",
        "| sampler | d range | decades per digit | polynomial degree | last d: s/sample | sweep |",
        "|---|---|---|---|---|---|",
    ]
    for name, v in s.items():
        rows, key, g, p = v["rows"], label(name), c["sampling"]["growth"][name], c["sampling"]["degree"][name]
        if not rows:
            lines.append(f"| {key} | none | n/a | n/a | n/a | {c['sampling']['stopped'][name]['flag']} |")
            continue
        lines.append(
            f"| {key} | {rows[0]['digits']}–{rows[-1]['digits']} | {interval_text(g, '.3f')} "
            f"| {interval_text(p, '.2f')} "
            f"| {seconds_text(rows[-1]['seconds_per_sample'], rows[-1].get('stderr'))} "
            f"| {c['sampling']['stopped'][name]['flag']} |"
        )
    lines += [
        "",
        "Growth: least squares of log10 seconds on d (degree: on log10 d), 95% Student-t intervals; two points "
        "give no interval. Sweep: complete, or stopped by the time budget or by the sampler's own limit.",
        "",
        "## Random primes: li-density approximation",
        "",
        "| d | exact s/prime | approx s/prime | TV (exact, by enumeration) |",
        "|---|---|---|---|",
    ]
    for r in res["primes"]:
        ex = seconds_text(r["exact"], r.get("exact_stderr")) if r.get("exact") else "n/a (beyond the sieve)"
        ap = seconds_text(r["approx"], r.get("approx_stderr"))
        tv = f"{r['tv']:.4f}" if r.get("tv") is not None else "not enumerated"
        lines.append(f"| {r['digits']} | {ex} | {ap} | {tv} |")
    lines += [
        "",
        "## Learning by order (same GRU size and budget for both orders at each d)",
        "",
        "| d | order | excess loss (nats/token) | valid samples | digits of N = p·q | budget |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["learning"]:
        b = r.get("budget") or {}
        shown = f"GRU-{b['hidden']}, {b['documents_seen']:,} documents" if b else "n/a"
        lines.append(
            f"| {r['digits']} | {label(r['order'])} | {interval_text(r['excess_loss'], '.4f')} "
            f"| {interval_text(r['validity'])} | {interval_text(r.get('product_digits') or {})} | {shown} |"
        )
    lines += [
        "",
        "## Ways around: hidden stream and seed prefix",
        "",
        "| variant | valid samples | visible TV | how |",
        "|---|---|---|---|",
    ]
    for r in res["hidden"]:
        lines.append(
            f"| {r['variant']} | {interval_text(r['validity'])} | {r['visible_tv']:.4f} | {r['visible_tv_method']} |"
        )
    lines += [
        "",
        "## Randomized task: a uniform 3-digit number",
        "",
        "| samples from | χ² (dof) | p-value | Cohen's w, noise floor removed | invalid rate |",
        "|---|---|---|---|---|",
    ]
    for r in res["uniformity"]:
        lines.append(
            f"| {r['model']} | {r['chi2']:.1f} ({r['dof']}) | {r['p_value']:.3g} "
            f"| {interval_text(cohens_w_interval(r))} | {interval_text(invalid_rate(r))} |"
        )
    lines += [
        "",
        f"Total time: {max(res['seconds'].values()):.0f} s. Intervals are 95%: Wilson for rates, normal for means, "
        "Student-t for fitted growth, noncentral χ² inversion for Cohen's w. Two estimates differ only where "
        "their intervals do not overlap.",
    ]
    return "\n".join(lines) + "\n"


def show(res: dict) -> list:
    return [summary(res)]
