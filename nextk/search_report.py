"""Plots and tables for `nextk search` and `nextk bits`, drawn from their JSON alone."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from rich.table import Table  # noqa: E402

from nextk.report import errorbar  # noqa: E402

SHORT_KEYS = {
    "hidden": "h",
    "size": "s",
    "steps_per_token": "τ",
    "d_model": "d",
    "layers": "L",
    "heads": "H",
    "bits": "bits",
}


def compact(cfg: dict) -> str:
    return " ".join(f"{SHORT_KEYS.get(k, k)}={v}" for k, v in cfg.items())


def search_table(res: dict) -> Table:
    t = Table(
        title=f"size search: ε={res['eps']}, k={res['k']}, δ={res['delta']:.5f} nats/token; j₀={res['j0']} "
        f"from 1..{res['max_start']} (theory: 1..{res['theoretical_max_start']}); output j={res['stop_index']}"
    )
    for c in ("j", "config", "params", "held-out loss", "excess loss", "decrease vs δ", "TV at k"):
        t.add_column(c)
    for j in res["tried"]:
        js = str(j)
        loss, ex = res["losses"][js], res["excess"].get(js)
        dec = res["decreases"].get(js)
        tv = res["measurement"].get(js, {}).get("windows", [{}])[0].get("tv")
        t.add_row(
            js + (" ←" if j == res["stop_index"] else ""),
            compact(res["configs"][js]),
            str(res["parameters"][js]),
            f"{loss['value']:.5f} ± {loss['high'] - loss['value']:.5f}",
            "n/a" if ex is None else f"{ex['value']:.5f} ± {ex['high'] - ex['value']:.5f}",
            "" if dec is None else f"{dec:+.5f} {'>' if dec > res['delta'] else '≤'} δ",
            "n/a" if tv is None else f"{tv['value']:.4f} ± {tv['high'] - tv['value']:.4f}",
        )
    t.caption = res["departs"]
    return t


def plot_search(res: dict, path: Path) -> Path:
    js = res["tried"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    loss = [res["losses"][str(j)] for j in js]
    errorbar(a1, js, loss, marker="o", label="held-out loss")
    for j, e in zip(js, loss):
        a1.hlines(e["value"] - res["delta"], j + 0.6, j + 1.4, colors="r", label="L(q_j) − δ" if j == js[0] else None)
    a1.axvline(res["stop_index"], color="g", ls="--", label=f"output j={res['stop_index']}")
    a1.xaxis.set_major_locator(MaxNLocator(integer=True))
    a2.xaxis.set_major_locator(MaxNLocator(integer=True))
    a1.set_xlabel("size index j")
    a1.set_ylabel("loss (nats/token)")
    a1.legend(fontsize=8)
    a1.set_title(f"Algorithm 1: δ = {res['delta']:.4g}")
    meas = res["measurement"]
    if meas:
        for key, label in (("tv", "TV ceiling"), ("learned", "learned"), ("theorem3", "Theorem 3 bound")):
            vals = [meas[str(j)]["windows"][0].get(key) for j in js]
            if all(v is not None for v in vals):
                errorbar(a2, js, vals, marker="o", label=label)
        a2.axhline(res["eps"], color="k", ls=":", label=f"ε = {res['eps']}")
        a2.set_xlabel("size index j")
        a2.set_ylabel(f"advantage at k={res['k']}")
        a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def bits_table(rows: list[dict]) -> Table:
    from nextk.quantize import MIN_PROB

    t = Table(
        title="bit size sweep (every node value in fixed point)",
        caption=(
            f"nextk's own devices, not the paper's: probabilities floored at {MIN_PROB:g} and renormalised "
            "(the paper bounds them by construction, Lemma 15); node values saturate at ±(2^I − 2^−F) "
            "(the paper takes I large enough that nothing overflows)"
        ),
    )
    for c in ("bits b = 1+I+F", "(I, F)", "loss", "excess loss", "checkers", "TV"):
        t.add_column(c)
    for r in rows:
        f = lambda e: f"{e['value']:.5f} ± {e['high'] - e['value']:.5f}"  # noqa: E731
        t.add_row(
            str(r["bit_size"] or "float"),
            "" if r["int_bits"] is None else f"({r['int_bits']}, {r['frac_bits']})",
            f(r["loss"]),
            f(r["excess_loss"]),
            ", ".join(f"{k} {f(v)}" for k, v in r["checkers"].items()),
            f(r["tv"]) if "tv" in r else "n/a",
        )
    return t


def plot_bits(rows: list[dict], path: Path) -> Path:
    q = [r for r in rows if r["bit_size"] is not None]
    ref = next(r for r in rows if r["bit_size"] is None)
    b = [r["bit_size"] for r in q]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    ex = [r["excess_loss"] for r in q]
    errorbar(a1, b, ex, marker="o", label="quantised")
    a1.axhline(ref["excess_loss"]["value"], color="k", ls="--", label="float")
    a1.set_yscale("symlog", linthresh=1e-3)
    a1.set_xlabel("bit size b")
    a1.set_ylabel("excess loss (nats/token)")
    a1.legend()
    for name in q[0]["checkers"]:
        a2.plot(b, [r["checkers"][name]["value"] for r in q], marker="o", label=f"checker {name}")
    if "tv" in q[0]:
        a2.plot(b, [r["tv"]["value"] for r in q], marker="s", label="TV ceiling")
        a2.axhline(ref["tv"]["value"], color="k", ls="--", label="TV, float")
    a2.set_xlabel("bit size b")
    a2.set_ylabel("advantage")
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
