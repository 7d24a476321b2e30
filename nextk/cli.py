"""The `nextk` command line. Commands: sources, sample, demo, train, eval, boost, search, bits, plot,
barrier report | sampling | primes. Each parses its options into a run config (nextk/runs/) and calls
the run; errors are one line (exit 2), Ctrl-C says where the run stopped (exit 130)."""

from __future__ import annotations

import importlib
from pathlib import Path

import typer

from nextk import __version__
from nextk.cli_support import console, execute, fail, ks_option, source_args

app = typer.Typer(
    rich_markup_mode=None,  # plain click help: no "<bool>" beside flags
    add_completion=False,
    no_args_is_help=True,
    help="Exact tests of what next-token prediction can "
    "and cannot do (Cao & Vempala). Extra `--param value` pairs after a source name set its parameters.",
)
EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}
OUT = typer.Option(None, help="run folder (default ./nextk-runs/NAME-TIME)")
SEED = typer.Option(0, help="random seed: every draw of the run derives from it")
NUM_DOCS = typer.Option(200, help="documents of the source per estimate (intervals are over documents)")
JSON = typer.Option(False, "--json", help="print the results as JSON instead of tables")
FORCE = typer.Option(False, "--force-new", help="reuse an --out folder that holds a run of another config")


def version(value: bool):
    if value:
        print(f"nextk {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(_: bool = typer.Option(False, "--version", callback=version, is_eager=True, help="print the version")):
    pass


@app.command()
def sources():
    """List the sources and their parameters (defaults)."""
    from nextk.cli_support import sources_table

    console.print(sources_table())


@app.command(context_settings=EXTRA)
def sample(
    ctx: typer.Context,
    source: str = typer.Argument("dyck", help="source name (see `nextk sources`)"),
    num: int = typer.Option(5, help="number of documents"),
    seed: int = SEED,
    as_json: bool = JSON,
):
    """Decoded samples of SOURCE with their exact log-probabilities."""
    from nextk.cli_support import show_samples

    show_samples(source, source_args(source, ctx.args), num, seed, as_json)


@app.command()
def demo(
    out: Path = OUT,
    seed: int = SEED,
    steps: int = typer.Option(None, help="training steps per model (500)"),
    num_docs: int = typer.Option(None, help="documents per advantage estimate (200)"),
    progress: bool = typer.Option(True, help="show progress bars"),
    force_new: bool = FORCE,
):
    """The main job (about 2 minutes): GRU-2 and GRU-32 on Dyck; excess loss and, for k = 1, 2, 4, 8, checker /
    learned / TV advantages against the Theorem 3 bound. Resumes an interrupted --out folder."""
    from nextk.runs.demo import Config

    cfg = Config(seed=seed, **{k: v for k, v in (("steps", steps), ("num_docs", num_docs)) if v is not None})
    execute("demo", cfg, out, progress=progress, force_new=force_new)


@app.command("train", context_settings=EXTRA)
def train_cmd(
    ctx: typer.Context,
    source: str = typer.Argument(..., help="source name"),
    model: str = typer.Option("gru", help="family: gru | lstm | paper_rnn | transformer"),
    hidden: int = typer.Option(32, help="width: hidden units (gru/lstm), hidden nodes (paper_rnn), d_model"),
    layers: int = typer.Option(1, help="layers (gru/lstm/transformer)"),
    size: int = typer.Option(0, help="paper_rnn: total nodes (0: 2·hidden)"),
    steps_per_token: int = typer.Option(1, help="paper_rnn: internal steps per token (RNN-time τ)"),
    heads: int = typer.Option(4, help="transformer: attention heads"),
    steps: int = typer.Option(500, help="optimiser steps; a larger value extends a finished run"),
    batch_size: int = typer.Option(64, help="documents per optimiser step"),
    lr: float = typer.Option(3e-3, help="AdamW learning rate"),
    data: int = typer.Option(None, help="fixed dataset of this many documents (default: fresh samples)"),
    eval_every: int = typer.Option(50, help="steps between held-out evaluations and checkpoints"),
    patience: int = typer.Option(None, help="stop after this many evaluations without improvement"),
    seed: int = SEED,
    out: Path = OUT,
    as_json: bool = JSON,
    force_new: bool = FORCE,
):
    """Train a model on SOURCE into a run folder; resumes it if OUT holds a checkpoint of the same config."""
    from nextk.runs.train import Config

    cfg = Config(
        source,
        source_args(source, ctx.args),
        model,
        hidden,
        layers,
        size,
        steps_per_token,
        heads,
        steps,
        batch_size,
        lr,
        data,
        eval_every,
        patience,
        seed,
    )
    execute("train", cfg, out, as_json=as_json, force_new=force_new, progress=not as_json)


@app.command("eval", context_settings=EXTRA)
def eval_cmd(
    ctx: typer.Context,
    checkpoint: str = typer.Argument(..., help="model.safetensors or its run folder; hf:PATH: a Hugging Face model"),
    source: str = typer.Argument(None, help="source name (not with hf:, which is measured on --text)"),
    k: str = ks_option("1,2,4,8"),
    num_docs: int = NUM_DOCS,
    learned_steps: int = typer.Option(200, help="learned distinguisher: steps"),
    learned_docs: int = typer.Option(1024, help="learned distinguisher: documents it is fitted on"),
    learned: bool = typer.Option(True, help="fit and measure the learned distinguisher"),
    allow_other_source: bool = typer.Option(False, help="evaluate on a source other than the trained one"),
    text: str = typer.Option(
        None, help="hf: the text, plain (one document per line) or .jsonl with a 'text' field (default: nextk's tales)"
    ),
    distinguisher: list[str] = typer.Option(
        None, help="hf: a built-in text statistic or module:function; repeatable or comma list (default: built-ins)"
    ),
    doc_length: int = typer.Option(64, help="hf: tokens per document (a window of the text)"),
    stride: int = typer.Option(None, help="hf: tokens between document starts (default: --doc-length)"),
    device: str = typer.Option("cpu", help="hf: cpu | cuda | cuda:N (the model and the estimators' tensors)"),
    dtype: str = typer.Option(None, help="hf: float32 (default) | bfloat16 | float16 | auto"),
    seed: int = SEED,
    out: Path = typer.Option(None, help="also write results.json and plots here"),
    as_json: bool = JSON,
):
    """Measure a model: against a source, excess loss, checker / learned / TV advantages and the Theorem 3 bound;
    an hf: model on real text (--text), per-token loss and the advantage of text distinguishers per k."""
    from nextk.runs.eval import HF, Config

    common = dict(ks=k, num_docs=num_docs, learned_steps=learned_steps, learned_docs=learned_docs, seed=seed)
    if checkpoint.startswith(HF):
        if source is not None or ctx.args:
            fail(f"{checkpoint} is measured on --text, not on a source: drop {' '.join([source or '', *ctx.args])}")
        specs = [s.strip() for spec in distinguisher or [] for s in spec.split(",") if s.strip()]
        cfg = Config(
            checkpoint,
            text=text,
            distinguishers=specs,
            length=doc_length,
            stride=stride,
            device=device,
            dtype=dtype,
            learned=learned,
            **common,
        )
    else:
        if source is None:
            fail("give the source to evaluate on (see `nextk sources`), or an hf:PATH model with --text")
        given = [name for name, v in (("--text", text), ("--distinguisher", distinguisher)) if v]
        if given:
            fail(f"{', '.join(given)} apply to hf: models; a checkpoint is measured on its source")
        cfg = Config(
            str(Path(checkpoint)),
            source,
            source_args(source, ctx.args),
            allow_other_source=allow_other_source,
            learned=learned,
            **common,
        )
    execute("eval", cfg, out, as_json=as_json, write=out is not None)


@app.command("boost", context_settings=EXTRA)
def boost_cmd(
    ctx: typer.Context,
    checkpoint: Path = typer.Argument(..., help="model.safetensors or its run folder"),
    source: str = typer.Argument(..., help="source name"),
    k: int = typer.Option(4, help="window size"),
    distinguisher: str = typer.Option("check", help="check | check:NAME | learned | optimal"),
    num_docs: int = typer.Option(256, help="documents for choosing (r, η), as many for reporting Δ"),
    distill_steps: int = typer.Option(0, help="also distill the boosted model (training steps)"),
    seed: int = SEED,
    out: Path = OUT,
    as_json: bool = JSON,
    force_new: bool = FORCE,
):
    """Boost a trained model with a distinguisher (Lemmas 1–2): KL and pass rate before and after, the gain Δ per
    offset against Lemma 1's guarantee; optionally distill."""
    from nextk.runs.boost import Config

    cfg = Config(
        str(checkpoint), source, source_args(source, ctx.args), k, distinguisher, num_docs, distill_steps, seed
    )
    execute("boost", cfg, out, as_json=as_json, force_new=force_new)


@app.command("search", context_settings=EXTRA)
def search_cmd(
    ctx: typer.Context,
    source: str = typer.Argument(..., help="source name"),
    eps: float = typer.Option(0.1, help="target advantage ε"),
    k: int = typer.Option(2, help="window size"),
    family: str = typer.Option("paper_rnn", help="paper_rnn | gru | lstm | transformer"),
    bits: bool = typer.Option(False, help="Algorithm 2: bit size in the schedule"),
    max_start: int = typer.Option(None, help="j₀ drawn from 1..max_start (default min(N, 3))"),
    max_sizes: int = typer.Option(6, help="cap on sizes tried per run"),
    steps: int = typer.Option(300, help="training steps per size"),
    lr: float = typer.Option(5e-3),
    repeats: int = typer.Option(1, help="runs with consecutive seeds (about 1 min per run at defaults)"),
    num_docs: int = NUM_DOCS,
    seed: int = SEED,
    out: Path = OUT,
    as_json: bool = JSON,
    force_new: bool = FORCE,
):
    """Algorithm 1 (with --bits, Algorithm 2): stop when one more size lowers the held-out loss by ≤ δ(ε, k, n)."""
    from nextk.runs.search import Config

    cfg = Config(
        source,
        source_args(source, ctx.args),
        eps,
        k,
        family,
        bits,
        max_start,
        max_sizes,
        steps,
        lr,
        repeats,
        num_docs,
        seed,
    )
    execute("search", cfg, out, as_json=as_json, force_new=force_new)


@app.command("bits", context_settings=EXTRA)
def bits_cmd(
    ctx: typer.Context,
    checkpoint: Path = typer.Argument(..., help="a paper_rnn / gru / lstm checkpoint"),
    source: str = typer.Argument(..., help="source name"),
    int_bits: int = typer.Option(3, help="integer bits I"),
    frac_bits: str = ks_option("1,2,3,4,6,8,12", "fractional bits F to sweep, comma separated"),
    k: int = typer.Option(2, help="window size"),
    num_docs: int = NUM_DOCS,
    seed: int = SEED,
    out: Path = OUT,
    as_json: bool = JSON,
    force_new: bool = FORCE,
):
    """Loss, excess loss and advantage with every node value in fixed point (Definition 4). The probability floor and
    the saturation at 2^I − 2^−F are nextk's own devices (the paper bounds probabilities by construction, Lemma 15)."""
    from nextk.runs.bits import Config

    cfg = Config(str(checkpoint), source, source_args(source, ctx.args), int_bits, frac_bits, k, num_docs, seed)
    execute("bits", cfg, out, as_json=as_json, force_new=force_new)


@app.command("construct", context_settings=EXTRA)
def construct_cmd(
    ctx: typer.Context,
    source: str = typer.Argument("parity", help="the truth p: parity or dyck (sources with a compiled checker)"),
    hmm_states: int = typer.Option(3, help="q: a random HMM with this many states, compiled as a graph RNN"),
    k: int = typer.Option(2, help="window of every distinguisher"),
    rounds: int = typer.Option(4, help="boosting rounds whose sizes are counted (Lemma 3, t = 1 … rounds)"),
    execute_rounds: int = typer.Option(2, help="rounds whose RNNs run on every string (RNN-time grows ~18×/round)"),
    frac_bits: str = ks_option("12,14,16,20,24,28,32", "fractional bits F' swept for round 1 (Lemma 12)"),
    seed: int = SEED,
    out: Path = OUT,
    as_json: bool = JSON,
    force_new: bool = FORCE,
):
    """Lemma 3 as running code: the boosted RNN built node by node (Lemmas 7–11, Appendix C), checked equal to
    `boost`'s exact conditionals; sizes per round against the lemmas and the two-copy construction; the fixed-point
    error against Lemma 12's bound (about 2 minutes)."""
    from nextk.runs.construct import Config

    given = source_args(source, ctx.args)  # the default source keeps its default parameters unless some are given
    params = given if given or source != Config.source else Config().source_params
    cfg = Config(
        source, params, hmm_states, k=k, rounds=rounds, execute_rounds=execute_rounds, frac_bits=frac_bits, seed=seed
    )
    execute("construct", cfg, out, as_json=as_json, force_new=force_new)


@app.command()
def plot(folder: Path = typer.Argument(..., help="a run folder holding config.json and results.json")):
    """Redraw a run's plots from its results.json (no recomputation)."""
    from nextk.runs.common import CONFIG, RESULTS, read_json

    try:
        kind = read_json(folder / CONFIG).get("run")
        if kind is None:
            raise ValueError(f"{folder}/config.json does not say which run made it")
        for p in importlib.import_module(f"nextk.runs.{kind}").draw(read_json(folder / RESULTS), folder):
            console.print(f"wrote {p}")
    except ValueError as e:
        fail(e)


@app.command("sweep")
def sweep_cmd(
    spec: Path = typer.Argument(..., help="the sweep spec (TOML: run, base, grid; docs/reproduce.md)"),
    out: Path = typer.Option(None, help="sweep folder (default ./nextk-runs/sweep-NAME; the same folder resumes)"),
    workers: int = typer.Option(None, help="local: cells at once (default one per CPU core); ray: cells in flight"),
    backend: str = typer.Option("local", help="local (a process pool) | ray (a Ray cluster)"),
    address: str = typer.Option(None, help="ray: auto | ray://host:10001 (default: start a local Ray)"),
    retries: int = typer.Option(None, help="attempts after a cell's first failure (default: the spec's retries)"),
    as_json: bool = JSON,
):
    """Run a grid of runs (each cell a run of the run layer), skip finished cells, collect one table (JSON, CSV, and
    parquet with pyarrow). A killed sweep resumes: run the same command again."""
    from nextk.runs.sweep import Config, default_out

    execute("sweep", Config(str(spec), workers, backend, address, retries), out or default_out(spec), as_json=as_json)


@app.command("reproduce")
def reproduce_cmd(
    budget: str = typer.Option("quick", help="quick (≤ 15 min on 2 cores) | full (a cluster, with --backend ray)"),
    out: Path = typer.Option(None, help="folder (default ./nextk-runs/reproduce-BUDGET; the same folder resumes)"),
    workers: int = typer.Option(None, help="local: cells at once (default one per CPU core)"),
    backend: str = typer.Option("local", help="local | ray"),
    address: str = typer.Option(None, help="ray: auto | ray://host:10001 (default: start a local Ray)"),
    retries: int = typer.Option(None, help="attempts after a cell's first failure (default: the budget's)"),
    as_json: bool = JSON,
):
    """Every claim of the paper and the note as a measured verdict (holds / violated / not shown): report.md,
    report.html, the sweep table and the JSON behind every figure (docs/reproduce.md)."""
    from nextk.runs.reproduce import Config

    cfg = Config(budget, workers, backend, address, retries)
    execute("reproduce", cfg, out or Path("nextk-runs") / f"reproduce-{budget}", as_json=as_json)


barrier_app = typer.Typer(
    rich_markup_mode=None, no_args_is_help=True, help="The autoregressive barrier lab (docs/theory.md §7)."
)
app.add_typer(barrier_app, name="barrier")


@barrier_app.command("report")
def barrier_report(
    out: Path = OUT,
    steps: int = typer.Option(None, help="training steps per model (1500)"),
    sampling_budget: float = typer.Option(None, help="seconds for the sampling-cost sweep (120)"),
    seed: int = SEED,
    force_new: bool = FORCE,
):
    """Sampling cost by order, learning by order, hidden stream / seed prefix, random primes, uniformity: JSON,
    plots and summary.md (about 6 minutes on 2 cores)."""
    from nextk.runs.barrier import Config

    given = {"steps": steps, "sampling_budget_s": sampling_budget}
    execute("barrier", Config(seed=seed, **{k: v for k, v in given.items() if v is not None}), out, force_new=force_new)


@barrier_app.command("sampling")
def barrier_sampling(
    digits: str = ks_option("2,4,6,8,10,12,14,16", "digits d of each prime, comma separated"),
    budget: float = typer.Option(60.0, help="seconds shared by the four samplers"),
    seed: int = SEED,
    as_json: bool = JSON,
):
    """Seconds per sample of each factorization sampler against d, with the fitted growth."""
    from nextk.cli_support import show_sampling

    show_sampling(digits, budget, seed, as_json)


@barrier_app.command("primes")
def barrier_primes(
    digits: str = ks_option("2,3,4,5,6,7", "digits d, comma separated"),
    last: int = typer.Option(2, help="digits counted exactly by primality tests (the rest by density)"),
    budget: float = typer.Option(20.0, help="seconds shared by the timings"),
    as_json: bool = JSON,
):
    """Exact against approximate autoregressive random primes: cost per sample and exact TV."""
    from nextk.cli_support import show_primes

    show_primes(digits, last, budget, as_json)


def main():
    app()


if __name__ == "__main__":
    main()
