"""`nextk eval`: measure a model (docs/theory.md §1–3). Against a nextk source: excess loss, checker /
learned / TV advantages and the Theorem 3 bound; an hf:PATH model on real text (--text): per-token loss
and the advantage of text distinguishers per k.

Two kinds of truth:

- a nextk source (exact probabilities): the checkpoint's run folder records the source it was trained
  on; evaluating on another source or other parameters is refused unless `allow_other_source`, and
  results.json records both. The panel is `nextk.evaluation.measure_model` (excess loss, checker /
  learned / TV advantages, Theorem 3 bound);
- real text, for a Hugging Face causal LM (`checkpoint` "hf:PATH"): the truth is a `Corpus` of token
  windows of `text`, which can only be sampled, so KL, excess loss, TV and the Theorem 3 bound do not
  exist. The panel is the per-token loss (cross-entropy on held-out documents of the corpus's measure
  part) and, per k, the paired advantage (p = the corpus's windows) of every text distinguisher and of
  a learned one fitted on the corpus's fit part, all judged on the same q windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.markup import escape

from nextk.checkpoint import load_model
from nextk.console import progress_bar, quiet, working
from nextk.errors import InputError
from nextk.runs.common import RESULTS, check_config, check_documents, check_trained_on, pick, prepare, write_json

HF = "hf:"
TEXT_UNITS = {
    "loss": "nats per token: −log q̄(x)/n on measure documents (cross-entropy against the text)",
    "advantage": "probability difference in [−1, 1], averaged over the m = n − k + 1 starts",
}
NOT_AVAILABLE = (
    "real text has no exact probabilities: KL, excess loss, the TV ceiling and the Theorem 3 bound are not "
    "computed; the loss is the cross-entropy H(p̄)/n + KL/n with H unknown"
)


@dataclass
class Config:
    checkpoint: str  # model.safetensors or its run folder; "hf:PATH" for a Hugging Face causal LM
    source: str = ""  # registry name of the truth (not used with hf:, whose truth is `text`)
    source_params: dict = field(default_factory=dict)  # its parameters
    ks: list = field(default_factory=lambda: [1, 2, 4, 8])  # window sizes
    num_docs: int = 200  # p documents per estimate (hf: measure documents, at most the part's count)
    learned_steps: int = 200  # optimiser steps of the learned distinguisher, per k
    learned_docs: int = 1024  # documents it is fitted on, per k
    allow_other_source: bool = False  # evaluate on a source other than the one trained on
    seed: int = 0  # every random draw derives from this
    text: str | None = (
        None  # hf: the text, plain (one document per line) or .jsonl with a "text" field (default: nextk's tales)
    )
    distinguishers: list[str] = field(
        default_factory=list
    )  # hf: text statistics or module:function, repeatable or comma list (default: all built-ins)
    length: int = 64  # hf: tokens per document (a window of the text)
    stride: int | None = None  # hf: tokens between document starts inside a text (default: the document length)
    pack: bool | None = None  # hf: pack texts into one stream cut into documents (default: when lines are short)
    device: str = "cpu"  # hf: cpu | cuda | cuda:N, where the model lives (documents and estimators stay on the CPU)
    dtype: str | None = None  # hf: float32 (default) | bfloat16 | float16 | auto
    learned: bool = True  # also fit and measure the learned distinguisher

    def run_name(self) -> str:
        if self.checkpoint.startswith(HF):
            return "eval-" + (Path(self.checkpoint[len(HF) :].rstrip("/")).name or "hf")
        return "eval"


def run(cfg: Config, out: Path | None = None, *, log=quiet, progress: bool = False, force_new: bool = False) -> dict:
    check_config(cfg)
    if cfg.checkpoint.startswith(HF):
        if out is not None:
            prepare(out, cfg, force_new=force_new)
        res = run_text(cfg, log=log, progress=progress)
    else:
        inputs = source_inputs(cfg, log=log)  # source, checkpoint and the trained-on check before any folder
        if out is not None:
            prepare(out, cfg, force_new=force_new)
        res = run_source(cfg, *inputs, log=log, progress=progress)
    if out is not None:
        write_json(Path(out) / RESULTS, res)
    return res


def source_inputs(cfg: Config, *, log=quiet):
    """(source, model, what the checkpoint was trained on), every one checked."""
    from nextk.sources import make_source

    if not cfg.source:
        raise InputError("give the source to evaluate on (see `nextk sources`), or an hf: model with --text")
    source = make_source(cfg.source, **cfg.source_params)
    model = load_model(cfg.checkpoint, vocab_size=source.vocab_size)
    for k in cfg.ks:
        if not isinstance(k, int) or not 1 <= k <= source.length:
            raise InputError(f"window size k={k} must be between 1 and the document length {source.length}")
    origin = check_trained_on(cfg.checkpoint, cfg.source, source, cfg.allow_other_source, log)
    check_documents(4 * cfg.num_docs + cfg.learned_docs, source.length, "eval")  # excess loss: 4 × num_docs
    return source, model, origin


def run_source(cfg: Config, source, model, origin, *, log=quiet, progress: bool = False) -> dict:
    from nextk.evaluation import measure_model

    panel = pick(cfg, "num_docs", "seed", "learned", "learned_steps", "learned_docs")
    log(
        escape(f"measuring {model.name} on {source!r} (documents of {source.length} tokens): excess loss, then ")
        + f"advantages at k = {', '.join(map(str, cfg.ks))}, {cfg.num_docs} documents per estimate"
    )
    with working(f"measuring {model.name}", enabled=progress):
        res = measure_model(source, model, cfg.ks, log=log, **panel)
    return {
        "name": model.name,
        "parameters": model.num_parameters,
        "source": repr(source),
        "source_params": source.params,
        "trained_on": origin,
        **res,
    }


# ---- real text, a Hugging Face model -------------------------------------------------------------------


def check_windows(ks, length: int, context: int | None) -> None:
    """Window sizes against the model's context and the document length: one clear error each."""
    for k in ks:
        if not isinstance(k, int) or k < 1:
            raise InputError(f"window size k must be a positive integer, got {k!r}")
        if context is not None and k > context:
            raise InputError(f"window size k={k} is longer than the model's context of {context} tokens")
    if context is not None and length > context:
        raise InputError(f"documents of --doc-length {length} tokens exceed the model's context of {context} tokens")
    for k in ks:
        if k > length:
            raise InputError(f"window size k={k} is longer than the documents (--doc-length {length} tokens)")


def distinguishers_for(cfg: Config, vocab_size: int, k: int, fit_docs) -> dict:
    """Fresh text distinguishers for window size k: built-ins calibrated on the fit part, users'
    callables checked for the calling convention."""
    from nextk.distinguishers.text import BUILTIN, resolve, validate

    specs = [s for spec in (cfg.distinguishers or list(BUILTIN)) for s in str(spec).split(",") if s.strip()]
    out = {}
    for spec in specs:
        name, d = resolve(spec.strip(), vocab_size)
        if hasattr(d, "calibrate"):
            d.calibrate(fit_docs, k)
        out[name] = validate(d, k, vocab_size, f"distinguisher {name!r}")
    return out


@torch.no_grad()
def per_token_loss(model, docs, *, batch: int, progress: bool):
    """−log q̄(x)/n per document, mean and 95% interval over documents."""
    from nextk.stats import mean_estimate

    out = []
    with progress_bar(f"{model.name}: loss", len(docs), enabled=progress) as bar:
        for i in range(0, len(docs), batch):
            out.append(model.log_prob(docs[i : i + batch]).double().cpu())
            bar.update(advance=len(out[-1]))
    lq = torch.cat(out)
    return mean_estimate(-lq / docs.shape[1], "held-out corpus documents (measure part)")


def run_text(cfg: Config, *, log=quiet, progress: bool = False) -> dict:
    from nextk.distinguishers.learned import LearnedDistinguisher
    from nextk.models.hf import HuggingFace, paired_advantages
    from nextk.sources.corpus import DEFAULT_TEXT, Corpus
    from nextk.stats import fmt

    model = HuggingFace.from_pretrained(cfg.checkpoint[len(HF) :], device=cfg.device, dtype=cfg.dtype)
    v = model.vocab_size
    check_windows(cfg.ks, cfg.length, model.context)
    corpus = Corpus(cfg.text or DEFAULT_TEXT, model, cfg.length, stride=cfg.stride, seed=cfg.seed, pack=cfg.pack)
    measure, fit = corpus.measure, corpus.fit
    if measure.num_documents == 0 or fit.num_documents == 0:
        raise InputError(
            f"{corpus.path}: too little text to split into fit and measure parts of documents of {cfg.length} tokens "
            f"({corpus.num_documents} documents in all): give more text or a shorter --doc-length"
        )
    docs = measure.documents(min(cfg.num_docs, measure.num_documents), seed=cfg.seed + 1)
    fit_docs = fit.documents(min(4096, fit.num_documents), seed=cfg.seed + 2)
    log(escape(f"{model!r}\n{corpus!r}") + f": measuring on {len(docs)} documents, fitting on the fit part")
    batch = max(1, 2**14 // cfg.length)
    loss = per_token_loss(model, docs, batch=batch, progress=progress)
    log(f"  per-token loss {fmt(loss)} nats (n={loss.n})")
    windows = []
    for k in cfg.ks:
        ds = distinguishers_for(cfg, v, k, fit_docs)
        row = {"k": k, "estimator": "paired", "distinguishers": {}}
        learned = None
        if cfg.learned:
            learned = LearnedDistinguisher(v, steps=cfg.learned_steps, seed=cfg.seed + 200 + k)
            learned.fit(fit, model, k, num_docs=cfg.learned_docs, seed=cfg.seed + 200 + k)
            ds["learned"] = learned
        with progress_bar(f"{model.name}: k={k}", len(docs), enabled=progress) as bar:
            est = paired_advantages(
                ds, model, docs, k, seed=cfg.seed + 300 + k, progress=lambda b, bar=bar: bar.update(advance=b)
            )
        for name, e in est.items():
            if name == "learned":
                row["learned"] = {**e.to_dict(), "train_accuracy": learned.train_accuracy_}
                row["learned_fit"] = learned.summary()
            else:
                row["distinguishers"][name] = e.to_dict()
        windows.append(row)
        parts = [f"{name} {fmt(e, signed=True)}" for name, e in est.items()]
        log(f"  k={k}: " + ", ".join(parts))
    return {
        "kind": "text",
        "name": model.name,
        "model": repr(model),
        "parameters": model.num_parameters,
        "vocab_size": v,
        "context": model.context,
        "bos_token_id": model.bos_token_id,
        "device": str(model.device),
        "dtype": str(model.dtype).replace("torch.", ""),
        "text": corpus.info(),
        "measured_documents": len(docs),
        "loss": loss.to_dict(),
        "units": TEXT_UNITS,
        "not_available": NOT_AVAILABLE,
        "windows": windows,
    }


# ---- display ----------------------------------------------------------------------------------------------


def show(results: dict) -> list:
    """What `nextk eval` prints: the panel as a table (a source's: nextk.runs.plots.model_table)."""
    if results.get("kind") != "text":
        from nextk.runs.plots import model_table

        return [model_table(results, results["source"])]
    from rich.table import Table

    from nextk.stats import fmt

    ws = results["windows"]
    t = Table(
        title=f"{escape(results['name'])} ({results['parameters']:,} params) on {escape(results['text']['path'])}"
    )
    t.add_column("k", justify="right")
    t.add_column("quantity")
    t.add_column("estimate [95% interval]", no_wrap=True)  # one row per quantity: intervals fit 80 columns
    t.add_row("", f"per-token loss, nats (n={results['loss']['n']})", fmt(results["loss"]), end_section=True)
    for w in ws:
        rows = [(escape(name), fmt(e, signed=True)) for name, e in w["distinguishers"].items()]
        rows += [("learned d", fmt(w["learned"], signed=True))] if "learned" in w else []
        for i, (name, cell) in enumerate(rows):
            t.add_row(str(w["k"]) if i == 0 else "", name, cell, end_section=i == len(rows) - 1)
    t.caption = "paired advantage [95% interval] over measure documents; " + escape(results["not_available"])
    return [t]


def draw(results: dict, out: Path) -> list[Path]:
    if results.get("kind") == "text":
        return [plot_text_advantage(results, Path(out) / "advantage_vs_k.png")]
    from nextk.runs.plots import plot_advantage

    return [plot_advantage([results], out / "advantage_vs_k.png", results["source"])]


def plot_text_advantage(results: dict, path: Path) -> Path:
    """Every distinguisher's paired advantage against k with its 95% interval (no bound: the KL of
    real text is unknown)."""
    from nextk.runs.plots import errorbar, plt, save  # plots sets the file-only backend first
    from nextk.stats import fmt

    ws = results["windows"]
    ks = [w["k"] for w in ws]
    series = {name: [w["distinguishers"][name] for w in ws] for name in (ws[0]["distinguishers"] if ws else {})}
    if ws and all("learned" in w for w in ws):
        series["learned"] = [w["learned"] for w in ws]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, es in series.items():
        errorbar(ax, ks, es, marker="o", label=name)
    ax.axhline(0, color="gray", lw=0.5)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("window size k")
    ax.set_ylabel("advantage (95% interval)")
    ax.set_title(
        f"{results['name']} on {Path(results['text']['path']).name}: loss {fmt(results['loss'])} nats/token", fontsize=9
    )
    ax.legend(fontsize=7)
    return save(fig, path)
