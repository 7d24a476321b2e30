"""`nextk bits`: a trained graph RNN with every node value in fixed point (docs/theory.md §6): loss,
excess loss and advantages at window k per bit size, against the unquantised model. The probability floor
and the saturation at 2^I − 2^−F are nextk's own devices (the paper bounds probabilities by construction,
Lemma 15)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.markup import escape
from rich.table import Table

from nextk.checkpoint import load_model
from nextk.console import quiet
from nextk.errors import InputError
from nextk.quantize import MIN_PROB, NodeModel, bits_sweep, fixed_point
from nextk.runs.common import RESULTS, prepare, write_json
from nextk.sources import make_source
from nextk.stats import fmt


@dataclass
class Config:
    checkpoint: str  # model.safetensors or a run folder (PaperRNN, GRU or LSTM)
    source: str  # registry name of the truth
    source_params: dict = field(default_factory=dict)  # its parameters
    int_bits: int = 3  # integer bits I of every node value
    frac_bits: list = field(default_factory=lambda: [1, 2, 3, 4, 6, 8, 12])  # fractional bits F swept
    k: int = 2  # window size of the advantages
    num_docs: int = 200  # p documents per estimate
    seed: int = 0  # every random draw derives from this


def run(cfg: Config, out: Path, *, log=quiet, progress: bool = False, force_new: bool = False) -> dict:
    source = make_source(cfg.source, **cfg.source_params)
    for f in cfg.frac_bits:  # everything is validated before any work is done
        fixed_point(torch.zeros(1), cfg.int_bits, f)
    model = load_model(cfg.checkpoint, vocab_size=source.vocab_size)
    if not isinstance(model, NodeModel):
        raise InputError(f"bits quantises graph RNNs (paper_rnn, gru, lstm); {cfg.checkpoint} holds a {model.family}")
    prepare(out, cfg, force_new=force_new, log=log)
    bits = [(cfg.int_bits, f) for f in cfg.frac_bits]
    rows = bits_sweep(model, source, bits, k=cfg.k, num_docs=cfg.num_docs, seed=cfg.seed, log=log)
    results = {"source": repr(source), "source_params": source.params, "model": model.name, "k": cfg.k, "rows": rows}
    write_json(out / RESULTS, results)
    return results


def table(results: dict) -> Table:
    t = Table(
        title=escape(f"bit size sweep of {results['model']} on {results['source']} (every node value in fixed point)"),
        caption=(
            f"nextk's own devices, not the paper's: probabilities floored at {MIN_PROB:g} and renormalised "
            "(the paper bounds them by construction, Lemma 15); node values saturate at ±(2^I − 2^−F) "
            "(the paper takes I large enough that nothing overflows). Intervals are 95%."
        ),
    )
    for c in ("bits b = 1+I+F", "(I, F)", "quantity"):
        t.add_column(c)
    t.add_column("estimate [95% interval]", no_wrap=True)  # one row per quantity: intervals fit 80 columns
    for r in results["rows"]:
        w = r["windows"][0]
        rows = [("loss", fmt(r["loss"], 5)), ("excess loss", fmt(r["excess_loss"], 5))]
        rows += [(escape(f"checker '{k}'"), fmt(v, signed=True)) for k, v in w["checkers"].items()]
        if w.get("tv") is not None:
            rows.append(("TV ceiling", fmt(w["tv"])))
        for i, (name, cell) in enumerate(rows):
            first = i == 0
            t.add_row(
                str(r["bit_size"] or "float") if first else "",
                "" if r["int_bits"] is None or not first else f"({r['int_bits']}, {r['frac_bits']})",
                name,
                cell,
                end_section=i == len(rows) - 1,
            )
    return t


def draw(results: dict, out: Path) -> list[Path]:

    from nextk.runs.plots import BOUND, errorbar, integer_ticks, log_y, plt, save, wrapped

    rows = results["rows"]
    q = [r for r in rows if r["bit_size"] is not None]
    ref = next(r for r in rows if r["bit_size"] is None)
    b = [r["bit_size"] for r in q]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    errorbar(a1, b, [r["excess_loss"] for r in q], marker="o", label="quantised")
    a1.axhline(ref["excess_loss"]["value"], color="gray", ls=":", label="float")
    log_y(a1, [r["excess_loss"] for r in rows])
    a1.set_ylabel("excess loss (nats/token)")
    windows = [r["windows"][0] for r in q]
    for name in windows[0]["checkers"]:
        errorbar(a2, b, [w["checkers"][name] for w in windows], marker="o", label=f"checker {name}")
    if "tv" in windows[0]:
        errorbar(a2, b, [w["tv"] for w in windows], marker="s", label="TV ceiling")
        a2.axhline(ref["windows"][0]["tv"]["value"], color="gray", ls=":", label="TV, float")
    a2.plot(b, [w["theorem3"]["value"] for w in windows], **BOUND, label="Theorem 3 bound")
    a2.set_ylabel(f"advantage at k={results['k']}")
    for ax in (a1, a2):
        ax.set_xlabel("bit size b")
        ax.legend(fontsize=8)
    integer_ticks(a1, a2)
    fig.suptitle(wrapped(f"{results['model']} on {results['source']}", 130), fontsize=10)
    return [save(fig, out / "bits.png")]


def show(results: dict) -> list:
    return [table(results)]
