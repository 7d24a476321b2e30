"""The `nextk` command line: sources, sample, train, eval, demo."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from nextk.errors import InputError
from nextk.sources import SOURCES

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Exact tests of what next-token prediction can and cannot do (Cao & Vempala).",
)
console = Console()
EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


def source_params(name: str) -> dict[str, inspect.Parameter]:
    return {k: v for k, v in inspect.signature(SOURCES[name]).parameters.items() if k not in ("self",)}


def parse_params(name: str, args: list[str]) -> dict:
    """`--digits 3 --order factors_first` → {"digits": 3, "order": "factors_first"} typed by defaults."""
    if name not in SOURCES:
        raise InputError(f"unknown source {name!r}; choose one of {sorted(SOURCES)}")
    params = source_params(name)
    out, i = {}, 0
    while i < len(args):
        key = args[i]
        if not key.startswith("--") or i + 1 >= len(args):
            raise InputError(f"expected '--param value' pairs after the source name, got {args[i:]}")
        key = key[2:].replace("-", "_")
        if key not in params:
            raise InputError(f"source {name!r} has no parameter {key!r}; it takes {list(params)}")
        default = params[key].default
        raw = args[i + 1]
        out[key] = type(default)(raw) if default not in (inspect.Parameter.empty, None) else _auto(raw)
        i += 2
    return out


def _auto(raw: str):
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def build_source(name: str, params: dict):
    parse_params(name, [])  # validates the name
    return SOURCES[name](**params)


def fail(err: Exception) -> None:
    console.print(f"[red]error:[/red] {err}")
    raise typer.Exit(2)


@app.command()
def sources():
    """List the sources and their parameters."""
    table = Table(title="nextk sources")
    table.add_column("source")
    table.add_column("parameters (defaults)")
    table.add_column("exact")
    for name in SOURCES:
        params = ", ".join(
            f"{k}={v.default!r}" if v.default is not inspect.Parameter.empty else k
            for k, v in source_params(name).items()
        )
        table.add_row(name, params, "no" if name == "text" else "yes")
    console.print(table)


@app.command(context_settings=EXTRA)
def sample(
    ctx: typer.Context,
    source: str = typer.Argument("dyck", help="source name (see `nextk sources`)"),
    num: int = typer.Option(5, help="number of documents"),
    seed: int = typer.Option(0, help="random seed"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
):
    """Print decoded samples of SOURCE with their exact log-probabilities. Extra `--param value`
    pairs set the source's parameters, e.g. `nextk sample factorization --digits 3`."""
    try:
        params = parse_params(source, ctx.args)
        src = build_source(source, params)
        x = src.sample(num, generator=seed)
        lps = src.log_prob(x).tolist() if src.exact else [None] * num
    except ValueError as e:
        fail(e)
    rows = [{"text": t, "log_prob": lp} for t, lp in zip(src.decode(x), lps)]
    if as_json:
        print(json.dumps({"source": source, "params": params, "samples": rows}, indent=2))
        return
    table = Table(title=f"{num} samples of {src!r}")
    table.add_column("document")
    table.add_column("log p̄ (nats)", justify="right")
    for r in rows:
        table.add_row(repr(r["text"]), "n/a" if r["log_prob"] is None else f"{r['log_prob']:.6f}")
    console.print(table)


def out_dir(out: Path | None, name: str) -> Path:
    from datetime import datetime

    if out is not None:
        return out
    return Path("nextk-runs") / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


@app.command()
def demo(
    out: Path = typer.Option(None, help="output folder (default: ./nextk-runs/demo-…)"),
    seed: int = typer.Option(0, help="random seed"),
    steps: int = typer.Option(None, help="training steps per model (default 500)"),
    num_docs: int = typer.Option(None, help="documents per advantage estimate (default 200)"),
    progress: bool = typer.Option(True, help="show progress bars"),
):
    """The main job: train two GRU sizes on a Dyck language; per model print the excess loss and, for
    k = 1, 2, 4, 8, checker / learned / TV advantages against the Theorem 3 bound. Writes
    config.json, results.json and plots."""
    from nextk.experiment import DemoConfig, run_demo
    from nextk.report import draw, model_table

    cfg = DemoConfig(seed=seed)
    if steps is not None:
        cfg.steps = steps
    if num_docs is not None:
        cfg.num_docs = num_docs
    folder = out_dir(out, cfg.run_name())
    console.print(f"nextk demo → [bold]{folder}[/bold]")
    results = run_demo(cfg, folder, log=console.print, progress=progress)
    for m in results["models"]:
        console.print(model_table(m))
    plots = draw(folder)
    console.print(
        f"finished in {results['seconds']:.0f} s; wrote {folder}/config.json, results.json, "
        + ", ".join(p.name for p in plots)
    )


@app.command("train", context_settings=EXTRA)
def train_cmd(
    ctx: typer.Context,
    source: str = typer.Argument(..., help="source name"),
    model: str = typer.Option("gru", help="gru | lstm | paper_rnn | transformer"),
    hidden: int = typer.Option(32, help="hidden width (gru/lstm/paper_rnn) or d_model (transformer)"),
    layers: int = typer.Option(1, help="layers (gru/lstm/transformer)"),
    size: int = typer.Option(0, help="paper_rnn: total nodes (default 2·hidden)"),
    steps_per_token: int = typer.Option(1, help="paper_rnn: internal steps per token"),
    heads: int = typer.Option(4, help="transformer: attention heads"),
    steps: int = typer.Option(500, help="optimiser steps"),
    batch_size: int = typer.Option(64),
    lr: float = typer.Option(3e-3),
    data: int = typer.Option(None, help="fixed dataset of this many documents (default: fresh samples)"),
    eval_every: int = typer.Option(50),
    patience: int = typer.Option(None, help="early stop after this many flat evals"),
    seed: int = typer.Option(0),
    out: Path = typer.Option(None, help="run folder (checkpoint, results.json)"),
    as_json: bool = typer.Option(False, "--json", help="print results as JSON"),
):
    """Train a model on SOURCE (extra `--param value` pairs set the source); resumes if OUT holds a checkpoint."""
    from nextk.models import MODELS
    from nextk.train import train

    try:
        src = build_source(source, parse_params(source, ctx.args))
        if model not in MODELS or model == "ngram":
            raise InputError(f"unknown model {model!r}; choose gru, lstm, paper_rnn or transformer")
        kwargs = {
            "gru": dict(hidden=hidden, layers=layers),
            "lstm": dict(hidden=hidden, layers=layers),
            "paper_rnn": dict(size=size or 2 * hidden, hidden=hidden, steps_per_token=steps_per_token),
            "transformer": dict(d_model=hidden, layers=layers, heads=heads, max_len=src.length),
        }[model]
        net = MODELS[model](src.vocab_size, **kwargs, seed=seed)
        folder = out_dir(out, f"train-{source}-{model}-seed{seed}")
        res = train(
            net,
            src,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            data=data,
            eval_every=eval_every,
            patience=patience,
            checkpoint=folder,
            progress=not as_json,
        )
    except ValueError as e:
        fail(e)
    summary = {
        "source": source,
        "source_params": parse_params(source, ctx.args),
        "model": model,
        "config": net.config,
        "parameters": net.num_parameters,
        "checkpoint": str(folder / "model.safetensors"),
        **res.to_dict(),
    }
    (folder / "results.json").write_text(json.dumps(summary, indent=2))
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    last = res.history[-1] if res.history else {}
    console.print(f"trained {res.steps} steps ({res.stopped}) in {res.seconds:.1f} s → {folder}")
    if "excess_loss" in last:
        e = last["excess_loss"]
        console.print(f"excess loss {e['value']:.5f} [{e['low']:.5f}, {e['high']:.5f}] nats/token")


@app.command("eval", context_settings=EXTRA)
def eval_cmd(
    ctx: typer.Context,
    checkpoint: Path = typer.Argument(..., help="model.safetensors (or its run folder)"),
    source: str = typer.Argument(..., help="source name"),
    k: str = typer.Option("1,2,4,8", help="window sizes, comma separated"),
    num_docs: int = typer.Option(200),
    learned_steps: int = typer.Option(200, help="optimiser steps of the learned distinguisher, per k"),
    learned_docs: int = typer.Option(1024, help="documents the learned distinguisher is fitted on, per k"),
    seed: int = typer.Option(0),
    as_json: bool = typer.Option(False, "--json", help="print results as JSON"),
):
    """Measure a trained model: excess loss, checker / learned / TV advantages, Theorem 3 bound."""
    from nextk.checkpoint import load_model
    from nextk.experiment import measure_model
    from nextk.report import model_table

    try:
        src = build_source(source, parse_params(source, ctx.args))
        net = load_model(checkpoint, vocab_size=src.vocab_size)
        ks = [int(v) for v in k.split(",")]
        for kk in ks:
            if not 1 <= kk <= src.length:
                raise InputError(f"window size k={kk} must be between 1 and the document length {src.length}")
        res = measure_model(
            src,
            net,
            ks,
            num_docs=num_docs,
            seed=seed,
            learned_steps=learned_steps,
            learned_docs=learned_docs,
            log=(lambda *a: None) if as_json else console.print,
        )
    except ValueError as e:
        fail(e)
    res = {"name": net.family, "parameters": net.num_parameters, **res}
    if as_json:
        print(json.dumps(res, indent=2))
    else:
        console.print(model_table(res))


@app.command("boost", context_settings=EXTRA)
def boost_cmd(
    ctx: typer.Context,
    checkpoint: Path = typer.Argument(..., help="model.safetensors (or its run folder)"),
    source: str = typer.Argument(..., help="source name"),
    k: int = typer.Option(4, help="window size"),
    distinguisher: str = typer.Option("check", help="check | check:NAME | learned | optimal"),
    num_docs: int = typer.Option(256, help="p documents for choosing (r, η) and as many for reporting Δ"),
    distill_steps: int = typer.Option(0, help="also distill the boosted model into a fresh network"),
    seed: int = typer.Option(0),
    out: Path = typer.Option(None, help="output folder"),
    as_json: bool = typer.Option(False, "--json", help="print results as JSON"),
):
    """Boost a trained model with a distinguisher (Lemmas 1–2): KL and checker pass rate before and
    after, the gain Δ per offset against Lemma 1's guarantee; optionally distill. Table, JSON, plot."""
    from nextk.boost_report import run_boost

    try:
        src = build_source(source, parse_params(source, ctx.args))
        folder = out_dir(out, f"boost-{source}-k{k}-seed{seed}")
        res = run_boost(
            src,
            checkpoint,
            k,
            distinguisher,
            num_docs=num_docs,
            seed=seed,
            distill_steps=distill_steps,
            out=folder,
            log=(lambda *a: None) if as_json else console.print,
        )
    except ValueError as e:
        fail(e)
    if as_json:
        print(json.dumps(res, indent=2))


@app.command("search", context_settings=EXTRA)
def search_cmd(
    ctx: typer.Context,
    source: str = typer.Argument(..., help="source name"),
    eps: float = typer.Option(0.1, help="target advantage ε"),
    k: int = typer.Option(2, help="window size"),
    family: str = typer.Option("paper_rnn", help="paper_rnn | gru | lstm | transformer"),
    bits: bool = typer.Option(False, help="Algorithm 2: bit size in the schedule (quantisation-aware)"),
    max_start: int = typer.Option(None, help="j₀ drawn from 1..max_start (default min(N, 3))"),
    max_sizes: int = typer.Option(6, help="cap on sizes tried per run"),
    steps: int = typer.Option(300, help="training steps per size"),
    lr: float = typer.Option(5e-3),
    repeats: int = typer.Option(1, help="runs with consecutive seeds: how often two sizes sufficed"),
    num_docs: int = typer.Option(200),
    seed: int = typer.Option(0),
    out: Path = typer.Option(None, help="output folder"),
    as_json: bool = typer.Option(False, "--json", help="print results as JSON"),
):
    """Algorithm 1 (with --bits, Algorithm 2): minimise loss over a random size schedule, stop when one
    more size lowers the held-out loss by ≤ δ(ε, k, n); then measure the output's advantage at k."""
    from nextk.search import default_schedule, search_repeats
    from nextk.search_report import plot_search, search_table

    log = (lambda *a: None) if as_json else console.print
    try:
        src = build_source(source, parse_params(source, ctx.args))
        res = search_repeats(
            src,
            repeats,
            eps=eps,
            k=k,
            family=family,
            schedule=default_schedule(family, bits),
            max_start=max_start,
            max_sizes=max_sizes,
            seed=seed,
            num_docs=num_docs,
            log=log,
            train_kwargs={"steps": steps, "lr": lr, "eval_every": max(steps // 3, 1)},
        )
    except ValueError as e:
        fail(e)
    folder = out_dir(out, f"search-{source}-{family}-seed{seed}")
    folder.mkdir(parents=True, exist_ok=True)
    res = json.loads(json.dumps(res))  # int keys → str, as read back from disk
    (folder / "results.json").write_text(json.dumps(res, indent=2))
    for i, run in enumerate(res["runs"]):
        plot_search(run, folder / f"search-{i}.png")
    if as_json:
        print(json.dumps(res, indent=2))
        return
    for run in res["runs"]:
        console.print(search_table(run))
    two = res["two_sizes"]
    console.print(
        f"two sizes sufficed in {two['value']:.0%} of {repeats} runs [{two['low']:.2f}, {two['high']:.2f}] "
        f"(Lemma 4 promises ≥ 90% under exact minimisation); wrote {folder}"
    )


@app.command("bits", context_settings=EXTRA)
def bits_cmd(
    ctx: typer.Context,
    checkpoint: Path = typer.Argument(..., help="model.safetensors (or its run folder)"),
    source: str = typer.Argument(..., help="source name"),
    int_bits: int = typer.Option(3, help="integer bits I"),
    frac_bits: str = typer.Option("1,2,3,4,6,8,12", help="fractional bits F to sweep, comma separated"),
    k: int = typer.Option(2),
    num_docs: int = typer.Option(200),
    seed: int = typer.Option(0),
    out: Path = typer.Option(None, help="output folder"),
    as_json: bool = typer.Option(False, "--json", help="print results as JSON"),
):
    """Loss, excess loss and advantage of a trained PaperRNN/GRU/LSTM with every node value in fixed point.
    nextk's own devices, not the paper's: probabilities floored at 1e-6 and renormalised (the paper bounds
    them by construction, Lemma 15); values saturate at ±(2^I − 2^−F) (the paper takes I large enough)."""
    from nextk.checkpoint import load_model
    from nextk.quantize import bits_sweep
    from nextk.search_report import bits_table, plot_bits

    try:
        src = build_source(source, parse_params(source, ctx.args))
        net = load_model(checkpoint, vocab_size=src.vocab_size)
        rows = bits_sweep(
            net,
            src,
            [(int_bits, int(f)) for f in frac_bits.split(",")],
            k=k,
            num_docs=num_docs,
            seed=seed,
            log=(lambda *a: None) if as_json else console.print,
        )
    except ValueError as e:
        fail(e)
    folder = out_dir(out, f"bits-{source}-seed{seed}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps({"rows": rows}, indent=2))
    plot_bits(rows, folder / "bits.png")
    if as_json:
        print(json.dumps({"rows": rows}, indent=2))
    else:
        console.print(bits_table(rows))
        console.print(f"wrote {folder}/results.json and bits.png")


@app.command()
def plot(folder: Path = typer.Argument(..., help="a run folder holding results.json")):
    """Redraw a run's plots from its results.json (no retraining)."""
    from nextk.report import draw

    for p in draw(folder):
        console.print(f"wrote {p}")


barrier_app = typer.Typer(no_args_is_help=True, help="The autoregressive barrier lab (THEORY.md §7).")
app.add_typer(barrier_app, name="barrier")


@barrier_app.command("report")
def barrier_report(
    out: Path = typer.Option(None, help="output folder (default: ./nextk-runs/barrier-…)"),
    steps: int = typer.Option(None, help="training steps per model (default 1500)"),
    sampling_budget: float = typer.Option(None, help="seconds for the sampling-cost sweep (default 120)"),
    seed: int = typer.Option(0),
):
    """Sampling cost by order, learning by order, hidden stream / seed prefix, random primes,
    uniformity: JSON, plots and summary.md (about 6 minutes on 2 cores)."""
    from nextk.barrier.report import BarrierConfig, run_report

    cfg = BarrierConfig(seed=seed)
    if steps is not None:
        cfg.steps = steps
    if sampling_budget is not None:
        cfg.sampling_budget_s = sampling_budget
    folder = out_dir(out, f"barrier-seed{seed}")
    console.print(f"nextk barrier report → [bold]{folder}[/bold]")
    res = run_report(cfg, folder, log=console.print)
    console.print((folder / "summary.md").read_text())
    console.print(f"finished in {max(res['seconds'].values()):.0f} s; wrote {folder}")


@barrier_app.command("sampling")
def barrier_sampling(
    digits: str = typer.Option("2,4,6,8,10,12,14,16", help="d values, comma separated"),
    budget: float = typer.Option(60.0, help="seconds shared by the samplers"),
    seed: int = typer.Option(0),
    as_json: bool = typer.Option(False, "--json"),
):
    """Seconds per sample of each factorization sampler vs d, with fitted growth."""
    from nextk.barrier.sampling import sampling_cost

    res = sampling_cost(
        [int(d) for d in digits.split(",")], budget, log=(lambda *a: None) if as_json else console.print, seed=seed
    )
    if as_json:
        print(json.dumps(res, indent=2))
    else:
        for name, v in res.items():
            console.print(f"{name}: {v['fit']}")


@barrier_app.command("primes")
def barrier_primes(
    digits: str = typer.Option("2,3,4,5,6,7", help="d values"),
    last: int = typer.Option(2),
    budget: float = typer.Option(20.0),
    as_json: bool = typer.Option(False, "--json"),
):
    """Exact vs approximate autoregressive random primes: cost per sample and exact TV."""
    from nextk.barrier.primes import prime_costs

    rows = prime_costs(
        [int(d) for d in digits.split(",")], budget, last=last, log=(lambda *a: None) if as_json else console.print
    )
    if as_json:
        print(json.dumps(rows, indent=2))


def main():
    app()


if __name__ == "__main__":
    main()
