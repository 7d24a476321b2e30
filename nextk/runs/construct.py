"""`nextk construct`: the paper's boosting construction built node by node (docs/theory.md §9), checked
equal to `boost`'s exact conditionals; sizes per round against the lemmas; the fixed-point error against
Lemma 12's bound (about 30 seconds).

q is a random HMM compiled into a graph RNN (its forward recursion); p is a source whose checker is
compiled into a distinguisher RNN. Round t boosts the round t − 1 RNN (Lemma 3) with, in round 1,
p's checker and, later, the single-window indicator with the largest exact advantage of p over the
round t − 1 model; (r, η) come from nextk.boost.boost on samples of p (η clipped to ±eta_max). Per
round: size, hidden set, RNN-time and bit size of the efficient and the two-copy constructions,
measured on the graphs and given by the formulas of §9.6–9.7; for the first `execute_rounds` rounds
the RNN runs on every string and is compared with Boosted; round 1 also runs in fixed point.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from rich.markup import escape
from rich.table import Table

from nextk.boost import boost
from nextk.console import quiet
from nextk.construct import (
    GraphLM,
    boost_rnn,
    check_sufficiency,
    checker_rnn,
    claim9_int_bits,
    claim10_bound,
    gamma_for_gain,
    hmm_rnn,
    lemma3_formula,
    lemma12_bits,
    rho_prime,
    table_rnn,
    window_indicator,
)
from nextk.construct.bits import measured_int_bits
from nextk.construct.distinguishers import best_window_indicator
from nextk.construct.execute import run as run_graph
from nextk.errors import MAX_ENUMERATION, InputError, TooLargeError
from nextk.measure import all_strings, kl
from nextk.runs.common import RESULTS, prepare, write_json
from nextk.sources import HMM, make_source


@dataclass
class Config:
    source: str = "parity"  # the truth p: parity or dyck (sources with a compiled checker)
    source_params: dict = field(default_factory=lambda: {"block": 3, "length": 8})  # its parameters
    hmm_states: int = 3  # q: a random HMM with this many hidden states, compiled as a graph RNN
    hmm_stay: float = 0.5  # its self-transition probability (slow mixing when near 1)
    k: int = 2  # window of every distinguisher
    rounds: int = 4  # boosting rounds whose sizes are counted (Lemma 3 applied t = 1 … rounds)
    execute_rounds: int = 2  # rounds whose RNNs run on every string (RNN-time grows ~18× per round)
    eta_max: float = 6.0  # |η| cap: the construction and Lemma 12 need a finite step
    q_frac_bits: int = 10  # q's own fixed-point format (1, F_q) in the bit-size experiment
    frac_bits: list = field(default_factory=lambda: [12, 14, 16, 20, 24, 28, 32])  # F' swept for round 1
    gamma: float | None = None  # target relative output error (default: Lemma 16's γ from round 1's exact gain)
    check_strings: int = 32  # strings on which hidden-set property (ii) is checked (taint analysis)
    num_docs: int = 512  # p documents for choosing (r, η)
    seed: int = 0  # every random draw derives from this


def _gathered(lp: torch.Tensor, x: torch.Tensor) -> np.ndarray:
    return lp.exp().gather(-1, x[..., None]).squeeze(-1).numpy()


def _stats(b) -> dict:
    st = b.graph.stats().to_dict()
    return {key: st[key] for key in ("size", "hidden", "tau", "max_ops_per_node", "total_ops", "max_depth")}


def run(cfg: Config, out: Path, *, log=quiet, progress: bool = False, force_new: bool = False) -> dict:
    if cfg.source not in ("parity", "dyck"):  # the sources whose checker is compiled into an RNN
        raise InputError(f"construct runs on parity or dyck (a compiled checker), not {cfg.source!r}")
    source = make_source(cfg.source, **cfg.source_params)
    n, v, k = source.length, source.vocab_size, cfg.k
    if not 1 <= cfg.execute_rounds <= cfg.rounds:
        raise InputError(f"need 1 ≤ execute_rounds ≤ rounds, got {cfg.execute_rounds}, {cfg.rounds}")
    if cfg.eta_max <= 0:
        raise InputError(f"eta_max must be positive, got {cfg.eta_max}")
    if not 1 <= k <= n:
        raise InputError(f"need 1 ≤ k ≤ length, got k={k}, length={n}")
    if any(int(f) != f or f < 0 for f in cfg.frac_bits) or cfg.q_frac_bits < 1:
        raise InputError(f"frac_bits must be non-negative integers and q_frac_bits ≥ 1, got {cfg.frac_bits}")
    checker = checker_rnn(source, k)  # refuses sources without a compiled checker, before any work
    for count, what in ((v**n, f"every string of {v}^{n}"), (v**k, f"{v}^{k} continuations per token")):
        if count > MAX_ENUMERATION:  # the construction is exact: no sampling estimator applies here
            raise TooLargeError(
                f"construct enumerates {what} ({count:,}, over the budget of {MAX_ENUMERATION:,}); "
                f"give the source a shorter --length or a smaller --k"
            )
    q = HMM.random(cfg.hmm_states, v, n, seed=cfg.seed, stay=cfg.hmm_stay)
    prepare(out, cfg, force_new=force_new, log=log)
    x = all_strings(v, n)
    p_bar = source.log_prob(x).exp().numpy()
    res: dict = {
        "source": repr(source),
        "source_params": source.params,
        "q": f"HMM.random({cfg.hmm_states}, {v}, {n}, seed={cfg.seed}, stay={cfg.hmm_stay})",
        "k": k,
        "length": n,
        "vocab": v,
        "rounds": [],
    }
    R = hmm_rnn(q)
    res["base"] = {"size": R.size, "hidden": len(R.hidden), "tau": R.tau}
    model, graphs = q, {"efficient": R, "two_copy": R}
    formula = {c: dict(res["base"]) for c in graphs}
    bits = {c: {"int_bits": 1, "bit_size": 0} for c in graphs}  # q's nodes: in [0, 1] (float64 here)
    kl_prev = kl(source, q, estimator="exact").value
    res["kl_q"] = kl_prev
    rho = float(q.log_probs(x).exp().min())
    for t in range(1, cfg.rounds + 1):
        t0 = time.time()
        if t == 1:
            D, d, dname = checker, checker.meta["python"], f"checker of {source!r}"
        else:
            w, adv = best_window_indicator(source, model, k)
            d = window_indicator(w, v)
            D, dname = table_rnn(d, v, k), f"1[window = {''.join(map(str, w))}] (advantage {adv:+.4f})"
        chosen = boost(model, d, k, p=source, num_docs=cfg.num_docs, seed=cfg.seed + t)
        eta = float(np.clip(chosen.eta, -cfg.eta_max, cfg.eta_max))
        ref = boost(model, d, k, offset=chosen.offset, eta=eta, length=n)
        kl_t = kl(source, ref, estimator="exact").value
        row = {
            "round": t,
            "distinguisher": dname,
            "offset": chosen.offset,
            "eta": eta,
            "eta_search": chosen.eta if math.isfinite(chosen.eta) else None,
            "kl": kl_t,
            "gain": kl_prev - kl_t,
            "D": {"size": D.size, "hidden": len(D.hidden), "tau": D.tau},
        }
        gamma = cfg.gamma if cfg.gamma else (gamma_for_gain(row["gain"], n) if row["gain"] > 0 else 1e-3)
        row["rho_in"], row["gamma"] = rho, gamma  # Lemma 12's ρ of the model being boosted, and γ
        for c in graphs:
            b = boost_rnn(graphs[c], D, k, chosen.offset, eta, n, c)
            f = lemma3_formula(
                construction=c,
                vocab=v,
                k=k,
                s_R=formula[c]["size"],
                h_R=formula[c]["hidden"],
                tau_R=formula[c]["tau"],
                s_D=D.size,
                h_D=len(D.hidden),
                tau_D=D.tau,
            )
            formula[c] = f
            ib = claim9_int_bits(v, k, b.layout.tau_c, n, eta)
            fb = lemma12_bits(v, k, eta, rho, gamma, tau_c=b.layout.tau_c, length=n)["frac_bits"]
            # new nodes in (I', F'); copies keep the formats of the round before, so the graph's bit size
            # (Definition 4, max over nodes) is the larger of the two
            prev = bits[c]
            bits[c] = {"int_bits": max(prev["int_bits"], ib), "bit_size": max(prev["bit_size"], 1 + ib + fb)}
            row[c] = {
                "measured": _stats(b),
                "formula": f,
                "int_bits": ib,
                "frac_bits": fb,
                "bit_size": 1 + ib + fb,
                "graph_int_bits": bits[c]["int_bits"],
                "graph_bit_size": bits[c]["bit_size"],
            }
            if t <= cfg.execute_rounds:
                ran = run_graph(b.graph, x, track_max=True, keep_states=True)
                row[c]["max_abs_error_vs_boosted"] = float(np.abs(ran.outputs - _gathered(ref.log_probs(x), x)).max())
                row[c]["measured_int_bits"] = measured_int_bits(ran.max_abs)
                some = np.arange(0, len(x), max(1, len(x) // cfg.check_strings))
                check_sufficiency(b.graph, x[some], states=ran.states[:, :, some])  # raises if not sufficient
                row[c]["hidden_set_checked_on"] = len(some)
            graphs[c] = b.graph
        row["seconds"] = time.time() - t0
        log(
            f"round {t}: {escape(dname)}, r={chosen.offset}, η={eta:.3f}, KL {kl_prev:.4f} → {kl_t:.4f}; sizes "
            f"{row['efficient']['measured']['size']} vs two-copy {row['two_copy']['measured']['size']}"
        )
        res["rounds"].append(row)
        write_json(out / RESULTS, res)
        model, kl_prev, rho = ref, kl_t, rho_prime(rho, eta)  # Lemma 15: the next round's ρ
        if t == 1:
            res["fixed_point"] = fixed_point_experiment(cfg, q, checker, res["rounds"][0], x, p_bar, log)
            write_json(out / RESULTS, res)
    return res


def fixed_point_experiment(cfg: Config, q, D, row: dict, x: torch.Tensor, p_bar: np.ndarray, log) -> dict:
    """Round 1 in fixed point (Lemma 12): q is the HMM graph in its own format (1, F_q); the boosted RNN
    keeps that format on q's copies and stores every new node in (I', F'). Error against Boosted of
    that q (exact), Claim 10's bound, and the per-document loss it costs (Lemma 16) vs half the gain."""
    n, v, k, r, eta = q.length, q.vocab_size, cfg.k, row["offset"], row["eta"]
    R = hmm_rnn(q, fmt=(1, cfg.q_frac_bits))
    q_fixed = GraphLM(R, fixed=True, length=n)
    rows = q_fixed.log_probs(x).exp()
    rho, sigma = float(rows.min()), float(rows.sum(-1).min())  # σ < 1: the fixed-point q is not normalised
    want = _gathered(boost(q_fixed, D.meta["python"], k, offset=r, eta=eta, length=n).log_probs(x), x)
    b = boost_rnn(R, D, k, r, eta, n)
    ib = claim9_int_bits(v, k, b.layout.tau_c, n, eta)
    gain = row["gain"]
    gamma = cfg.gamma if cfg.gamma else (gamma_for_gain(gain, n) if gain > 0 else 1e-3)
    budget = lemma12_bits(v, k, eta, rho, gamma, tau_c=b.layout.tau_c, length=n, min_frac=cfg.q_frac_bits)
    sweep = []
    for fb in sorted(set(cfg.frac_bits) | {budget["frac_bits"]}):
        if fb < cfg.q_frac_bits:
            continue
        ran = run_graph(b.graph, x, fixed=(ib, fb), track_max=True)
        err = np.abs(ran.outputs - want)
        loss = float((p_bar * np.log(want / ran.outputs).sum(1)).sum())  # E_p Σ_t log(q'_t / õ_t)
        bound = claim10_bound(fb, k, eta, rho)
        sweep.append(
            {
                "frac_bits": fb,
                "int_bits": ib,
                "bit_size": 1 + ib + fb,
                "max_abs_error": float(err.max()),
                "max_rel_error": float((err / want).max()),
                "bound": bound if math.isfinite(bound) else None,
                "loss_increase": loss,
                "measured_int_bits": measured_int_bits(ran.max_abs),
            }
        )
        log(f"  fixed point F'={fb}: max |õ − q'| {err.max():.3g} (Claim 10 bound {bound:.3g})")
    return {
        "q_format": [1, cfg.q_frac_bits],
        "rho": rho,
        "sigma": sigma,
        "rho_prime": rho_prime(rho, eta),
        "gamma": gamma,
        "gain": gain,
        "budget": budget,
        "sweep": sweep,
    }


def table(res: dict) -> Table:
    """Sizes per round, measured on the graphs with the formula's value beneath, bit size and the error
    against Boosted (the distinguishers of each round: `rounds_table`); fits 80 columns."""
    t = Table(
        title=escape(f"Lemma 3 construction, q = {res['q']}, p = {res['source']}, k = {res['k']}"),
        caption="s / h / T: size / hidden set / RNN-time measured on the graph, in brackets the formula of "
        "docs/theory.md §9.6; bits = 1 + I' + F' of the new nodes (Claims 9–10 as re-derived in §9.7), in "
        "brackets the graph's bit size (max over nodes; copies keep the formats of the round before); "
        "error = max over all strings of |RNN output − Boosted conditional| (float64)",
    )
    for c in ("round", "efficient s / h / T", "two-copy s / h / T", "bits", "error"):
        t.add_column(c, no_wrap=c != "round")
    b = res["base"]
    t.add_row("0 (q)", f"{b['size']} / {b['hidden']} / {b['tau']}", "same", "", "", end_section=True)
    for row in res["rounds"]:
        cells = []
        for c in ("efficient", "two_copy"):
            m, f = row[c]["measured"], row[c]["formula"]
            cells.append(f"{m['size']} / {m['hidden']} / {m['tau']}\n\\[{f['size']} / {f['hidden']} / {f['tau']}]")
        err = row["efficient"].get("max_abs_error_vs_boosted")
        t.add_row(
            str(row["round"]),
            *cells,
            f"{row['efficient']['bit_size']} ({row['efficient']['graph_bit_size']})",
            "not run" if err is None else f"{err:.1e}",
        )
    return t


def rounds_table(res: dict) -> Table:
    """Each round's distinguisher, offset r and step η, and the exact KL it leaves."""
    t = Table(title=f"boosting rounds: KL(p̄‖q̄) = {res['kl_q']:.4f} before" if "kl_q" in res else "boosting rounds")
    for c in ("round", "distinguisher", "r", "η", "KL after"):
        t.add_column(c)
    for row in res["rounds"]:
        kl = row.get("kl")
        t.add_row(
            str(row["round"]),
            escape(row["distinguisher"]),
            str(row["offset"]),
            f"{row['eta']:.3f}",
            "" if kl is None else f"{kl:.4f}",
        )
    return t


def draw(res: dict, out: Path) -> list[Path]:
    from nextk.runs.plots import BOUND, log_y, plt, save, wrapped

    rounds = [0] + [r["round"] for r in res["rounds"]]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.4))
    # one colour per construction; measured: filled markers, formula: hollow markers on a dashed or dotted
    # line; the two constructions drawn a little left and right of each round so equal values stay visible
    styles = {"efficient": ("C0", "o", "--", -0.08), "two_copy": ("C1", "s", ":", 0.08)}
    for ax, key, label in zip(axes, ("size", "hidden", "tau"), ("size s (nodes)", "hidden set h", "RNN-time T")):
        drawn = []
        for c, (colour, marker, ls, dx) in styles.items():
            xs = [t + dx for t in rounds]
            meas = [res["base"][key]] + [r[c]["measured"][key] for r in res["rounds"]]
            form = [res["base"][key]] + [r[c]["formula"][key] for r in res["rounds"]]
            name, drawn = c.replace("_", "-"), drawn + meas + form
            ax.plot(xs, meas, marker, color=colour, ms=7, ls="none", label=f"{name}, measured")
            ax.plot(
                xs, form, ls=ls, marker=marker, mfc="none", ms=11, color=colour, lw=1, label=f"{name}, formula §9.6"
            )
        log_y(ax, [{"value": v, "low": v, "high": v} for v in drawn])
        ax.set_xlabel("boosting round t")
        ax.set_ylabel(label)
        ax.set_title(f"{label}: measured vs formula", fontsize=9)
        ax.set_xticks(rounds)
        ax.legend(fontsize=7)
    title = f"Lemma 3 vs §2.1's two copies: q = {res['q']}, p = {res['source']}, k = {res['k']}"
    fig.suptitle(wrapped(title, 150), fontsize=9)
    paths = [save(fig, out / "sizes.png")]
    fp = res.get("fixed_point")
    if fp:
        fig, ax = plt.subplots(figsize=(6, 4))
        fb = [s["frac_bits"] for s in fp["sweep"]]
        ax.semilogy(fb, [max(s["max_abs_error"], 1e-17) for s in fp["sweep"]], "o-", label="measured max |õ − q'|")
        ax.semilogy(fb, [s["bound"] or np.nan for s in fp["sweep"]], **BOUND, label="Claim 10 bound (§9.7)")
        ax.axvline(fp["budget"]["frac_bits"], color="grey", lw=0.8, label=f"Lemma 12 budget F' (γ={fp['gamma']:.2g})")
        ax.set_xlabel("fractional bits F' of the new nodes")
        ax.set_ylabel("output error")
        ax.legend(fontsize=8)
        ax.set_xticks(fb)  # the F' swept
        ax.set_title(f"round 1 in fixed point; q in (1, {fp['q_format'][1]}) bits", fontsize=9)
        paths.append(save(fig, out / "bits.png"))
    return paths


def show(res: dict) -> list:
    return [rounds_table(res), table(res)]
