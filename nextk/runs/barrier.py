"""`nextk barrier report`: every barrier experiment within a time budget → JSON, plots, summary.md. Every
conclusion it prints (summary, plot titles, results.json "conclusions") is computed from the measured numbers
and their intervals by `nextk.barrier.conclusions`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

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
from nextk.measure import excess_loss
from nextk.models import GRU
from nextk.runs.common import RESULTS, prepare, write_json
from nextk.runs.plots import errorbar, plt, save
from nextk.sources import Factorization, RandomNumber
from nextk.stats import Z95
from nextk.train import train


@dataclass
class Config:
    """The barrier report's experiments; the defaults finish in about 6 minutes on 2 CPU cores."""

    sampling_digits: list = field(default_factory=lambda: list(range(2, 25, 2)))  # d for sampling cost
    sampling_budget_s: float = 120.0  # seconds shared by the four samplers
    prime_digits: list = field(default_factory=lambda: [2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24])  # random primes
    prime_budget_s: float = 30.0  # seconds for the prime oracle timings
    learn_digits: list = field(default_factory=lambda: [1, 2, 3])  # d for learning by order
    hidden: int = 64  # GRU width of every trained model (equal size across orders)
    steps: int = 1500  # optimiser steps of every trained model (equal budget across orders)
    batch_size: int = 64  # documents per step
    lr: float = 5e-3  # AdamW learning rate
    hidden_digits: int = 2  # d for the hidden-stream / seed-prefix comparison
    seed_bits: int = 12  # bits of the hidden seed
    eval_samples: int = 1000  # model samples judged for validity / uniformity
    seed: int = 0  # every random draw derives from this


def trained(source, cfg: Config, seed: int):
    model = GRU(source.vocab_size, cfg.hidden, seed=seed)
    train(model, source, steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=seed, progress=False)
    return model


def learning_by_order(cfg: Config, log) -> list[dict]:
    rows = []
    for d in cfg.learn_digits:
        for order in ("product_first", "factors_first"):
            src = Factorization(d, order=order)
            model = trained(src, cfg, cfg.seed)
            x = model.sample(cfg.eval_samples, src.length, generator=cfg.seed + 1)
            row = {
                "digits": d,
                "order": order,
                "excess_loss": excess_loss(src, model, num_docs=1000, seed=cfg.seed + 2).to_dict(),
                "validity": pass_rate(src.checks["arithmetic"], x).to_dict(),
            }
            rows.append(row)
            ex, ok = row["excess_loss"]["value"], row["validity"]["value"]
            log(f"  d={d} {order:13s}: excess loss {ex:.4f}, valid {ok:.3f}")
    return rows


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


def run(cfg: Config, out: Path, *, log=quiet, progress: bool = False, force_new: bool = False) -> dict:
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
        log(f"[{name}]")
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
    ax.set_title("Factorization: sampling cost by order\n" + sampling_headline(c["sampling"]), fontsize=9)
    ax.legend(fontsize=7)
    paths.append(save(fig, out / "sampling_cost.png"))

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    pr = res["primes"]
    tv = [r for r in pr if r.get("tv") is not None]
    a1.plot([r["digits"] for r in tv], [r["tv"] for r in tv], marker="o")
    a1.set_xlabel("digits d")
    a1.set_ylabel("TV(approximation, uniform prime), exact")
    a1.set_title(f"max exact TV {max((r['tv'] for r in tv), default=float('nan')):.4f}", fontsize=9)
    for key in ("exact", "approx"):
        pts = [(r["digits"], r[key]) for r in pr if r.get(key)]
        if pts:
            a2.plot(*zip(*pts), marker="o", label=key)
    a2.set_yscale("log")
    a2.set_xlabel("digits d")
    a2.set_ylabel("mean seconds per prime")
    a2.legend()
    fig.suptitle("Random primes: li-density approximation vs exact counts")
    paths.append(save(fig, out / "primes.png"))

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    for order in ("product_first", "factors_first"):
        rows = [r for r in res["learning"] if r["order"] == order]
        ds = [r["digits"] for r in rows]
        for ax, key in ((a1, "excess_loss"), (a2, "validity")):
            errorbar(ax, ds, [r[key] for r in rows], marker="o", label=label(order))
    a1.set_ylabel("excess loss (nats/token)")
    a2.set_ylabel("valid samples (N = p·q, p, q prime)")
    for ax, key, quantity in ((a1, "excess_loss", "excess loss"), (a2, "validity", "valid rate")):
        ax.set_title(order_headline(c["learning"][key], quantity), fontsize=8, wrap=True)
        ax.set_xlabel("digits d")
        ax.legend()
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
        "## Learning by order (same GRU size and budget)",
        "",
        "| d | order | excess loss (nats/token) | valid samples |",
        "|---|---|---|---|",
    ]
    for r in res["learning"]:
        lines.append(
            f"| {r['digits']} | {label(r['order'])} | {interval_text(r['excess_loss'], '.4f')} "
            f"| {interval_text(r['validity'])} |"
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
