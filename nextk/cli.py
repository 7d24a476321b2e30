"""The `nextk` command line. Commands: sources, sample, demo, train, eval, boost, search, bits, plot,
barrier report | sampling | primes. Each parses its options into a run config (nextk/runs/) and calls
the run; errors are one line (exit 2), Ctrl-C says where the run stopped (exit 130)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from nextk import __version__
from nextk.cli_build import EXTRA, THREADS_HELP, command
from nextk.cli_support import console, errors, fail, ks_option, number_option, source_args

app = typer.Typer(
    rich_markup_mode=None,  # plain click help: no "<bool>" beside flags
    add_completion=False,
    no_args_is_help=True,
    help="Exact tests of what next-token prediction can "
    "and cannot do (Cao & Vempala). Extra `--param value` pairs after a source name set its parameters.",
)
SEED = typer.Option(0, help="random seed: every draw of the run derives from it", callback=number_option("seed", int))
JSON = typer.Option(False, "--json", help="print the results as JSON instead of tables")


def version(value: bool):
    if value:
        print(f"nextk {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    _: bool = typer.Option(False, "--version", callback=version, is_eager=True, help="print the version"),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP, callback=number_option("threads", int)),
):
    from nextk.threads import apply_policy, set_threads  # the thread policy (nextk/threads.py): torch not loaded

    try:
        set_threads(threads) if threads is not None else apply_policy()
    except ValueError as e:  # a bad --threads or NEXTK_THREADS
        fail(e)


@app.command()
def sources():
    """List the sources and their parameters (defaults)."""
    from nextk.cli_support import sources_table

    console.print(sources_table())


@app.command(context_settings=EXTRA)
def sample(
    ctx: typer.Context,
    source: str = typer.Argument("dyck", help="source name (see `nextk sources`)"),
    num: int = typer.Option(5, help="number of documents", callback=number_option("num", int)),
    seed: int = SEED,
    as_json: bool = JSON,
):
    """Decoded samples of SOURCE with their exact log-probabilities."""
    from nextk.cli_support import show_samples

    show_samples(source, source_args(source, ctx.args), num, seed, as_json)


command(app, "demo", skip=("source", "source_params", "model"), common=("out", "progress", "force_new"))
command(app, "train", args=("source",), rename={"width": "hidden"}, common=("out", "as_json", "force_new", "progress"))


def eval_inputs(values: dict, ctx: typer.Context) -> None:
    """hf: models are measured on --text, checkpoints on a source; eval writes a folder only with --out."""
    values["_write"], checkpoint, source = values["out"] is not None, values["checkpoint"], values["source"]
    if checkpoint.startswith("hf:"):
        if source is not None or ctx.args:
            fail(f"{checkpoint} is measured on --text, not on a source: drop {' '.join([source or '', *ctx.args])}")
    elif source is None:
        fail("give the source to evaluate on (see `nextk sources`), or an hf:PATH model with --text")
    elif values["text"] or values["distinguishers"]:
        given = [name for name, key in (("--text", "text"), ("--distinguisher", "distinguishers")) if values[key]]
        fail(f"{', '.join(given)} apply to hf: models; a checkpoint is measured on its source")


EVAL_NAMES = {"ks": "k", "length": "doc_length", "distinguishers": "distinguisher"}
EVAL_OUT = "also write results.json and plots here (default: print only)"
command(
    app,
    "eval",
    args=("checkpoint", "source"),
    rename=EVAL_NAMES,
    hook=eval_inputs,
    common=("out", "as_json"),
    out_help=EVAL_OUT,
)
command(app, "boost", args=("checkpoint", "source"))
command(app, "search", args=("source",))
command(app, "bits", args=("checkpoint", "source"))


def construct_inputs(values: dict, ctx: typer.Context) -> None:
    """The default source keeps its default parameters unless some are given."""
    if values["source"] == "parity" and not ctx.args:
        values["source_params"] = None  # None: the Config's default


command(app, "construct", args=("source",), hook=construct_inputs)


@app.command()
def plot(folder: Path = typer.Argument(..., help="a run folder holding config.json and results.json")):
    """Redraw a run's plots from its results.json (no recomputation)."""
    from nextk.runs.common import CONFIG, RESULTS, read_json

    try:
        config = read_json(folder / CONFIG)
        kind = config.get("run") if isinstance(config, dict) else None
        if not isinstance(kind, str) or not (Path(__file__).parent / "runs" / f"{kind}.py").is_file():
            raise ValueError(f"{folder}/config.json does not say which nextk run made it")
        results = read_json(folder / RESULTS)
        try:
            paths = importlib.import_module(f"nextk.runs.{kind}").draw(results, folder)
        except (KeyError, TypeError, IndexError, AttributeError) as e:  # a results.json nextk did not write
            raise ValueError(
                f"{folder}/results.json is not the results of a nextk {kind} run (no {e}); rerun the command"
            ) from None
        if not paths:  # a sweep: its cells keep the figures
            raise ValueError(
                f"{folder} holds a {kind} run, which draws no figure itself; plot its run folders (cells/ID)"
            )
        for p in paths:
            errors.print(f"wrote {escape(str(p))}")
    except ValueError as e:
        fail(e)
    except OSError as e:
        fail(f"cannot draw into {str(folder)!r}: {e.strerror or e}")


def sweep_inputs(values: dict, ctx: typer.Context) -> None:
    from nextk.runs.sweep import default_out

    values["_default_out"] = default_out(Path(values["spec"]))


SPEC = {"spec": "the sweep spec, a TOML file (run, base, grid; docs/reproduce.md)"}
SWEEP_OUT = "sweep folder (default ./nextk-runs/sweep-NAME; the same folder resumes)"
command(app, "sweep", args=("spec",), hook=sweep_inputs, common=("out", "as_json"), help=SPEC, out_help=SWEEP_OUT)


def reproduce_inputs(values: dict, ctx: typer.Context) -> None:
    """`--source NAME` takes the source's `--param value` pairs; without it none are taken."""
    if values["source"] is None and ctx.args:
        fail(f"{' '.join(ctx.args)}: source parameters follow --source NAME (see `nextk sources`)")
    source = f"-{values['source']}" if values["source"] else ""
    values["_default_out"] = Path("nextk-runs") / f"reproduce-{values['budget']}{source}"


REPRODUCE_OUT = "folder (default ./nextk-runs/reproduce-BUDGET[-SOURCE]; the same folder resumes)"
command(app, "reproduce", hook=reproduce_inputs, common=("out", "as_json"), out_help=REPRODUCE_OUT)

barrier_app = typer.Typer(
    rich_markup_mode=None, no_args_is_help=True, help="The autoregressive barrier lab (docs/theory.md §7)."
)
app.add_typer(barrier_app, name="barrier")


BARRIER_NAMES = {"sampling_budget_s": "sampling_budget", "prime_budget_s": "prime_budget"}
command(barrier_app, "barrier", name="report", rename=BARRIER_NAMES, common=("out", "force_new"))


@barrier_app.command("sampling")
def barrier_sampling(
    digits: str = ks_option("2,4,6,8,10,12,14,16", "digits d of each prime, comma separated"),
    budget: float = typer.Option(
        60.0, help="seconds shared by the four samplers", callback=number_option("budget", float)
    ),
    seed: int = SEED,
    as_json: bool = JSON,
):
    """Seconds per sample of each factorization sampler against d, with the fitted growth."""
    from nextk.cli_support import show_sampling

    show_sampling(digits, budget, seed, as_json)


@barrier_app.command("primes")
def barrier_primes(
    digits: str = ks_option("2,3,4,5,6,7", "digits d, comma separated"),
    last: int = typer.Option(
        2, help="digits counted exactly by primality tests (the rest by density)", callback=number_option("last", int)
    ),
    budget: float = typer.Option(20.0, help="seconds shared by the timings", callback=number_option("budget", float)),
    as_json: bool = JSON,
):
    """Exact against approximate autoregressive random primes: cost per sample and exact TV."""
    from nextk.cli_support import show_primes

    show_primes(digits, last, budget, as_json)


def main(args: list[str] | None = None):
    """`nextk`: click's usage errors (a bad value, an unknown option, a missing argument) as one line on stderr
    too. `args`: the command line without `nextk` (default sys.argv)."""
    from typer.exceptions import Abort, TyperException

    try:
        code = typer.main.get_command(app).main(args, standalone_mode=False, prog_name="nextk")
    except TyperException as e:  # typer's click: UsageError, BadParameter, NoSuchOption, …
        if type(e).__name__ == "NoArgsIsHelpError" or not hasattr(e, "format_message"):
            e.show()  # `nextk` alone: the help
        else:
            hint = f" (see `{e.ctx.command_path} --help`)" if getattr(e, "ctx", None) else ""
            text = " ".join(f"{e.format_message()}{hint}".split())
            errors.print(f"[red]error:[/red] {text}", highlight=False, soft_wrap=True)
        raise SystemExit(getattr(e, "exit_code", 2)) from None
    except Abort:
        raise SystemExit(130) from None
    raise SystemExit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
