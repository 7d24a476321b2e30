"""The `nextk` command line: sources, sample, train, eval, demo."""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from nextk.errors import InputError
from nextk.sources import SOURCES

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Exact tests of what next-token prediction can and cannot do (Cao & Vempala).")
console = Console()
EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


def source_params(name: str) -> dict[str, inspect.Parameter]:
    return {k: v for k, v in inspect.signature(SOURCES[name]).parameters.items() if k not in ("self",)}


def parse_params(name: str, args: list[str]) -> dict:
    """`--digits 3 --order factors_first` → {"digits": 3, "order": "factors_first"} typed by defaults."""
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
    if name not in SOURCES:
        raise InputError(f"unknown source {name!r}; choose one of {sorted(SOURCES)}")
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
    for name, ctor in SOURCES.items():
        params = ", ".join(
            f"{k}={v.default!r}" if v.default is not inspect.Parameter.empty else k
            for k, v in source_params(name).items()
        )
        table.add_row(name, params, "no" if name == "text" else "yes")
    console.print(table)


@app.command(context_settings=EXTRA)
def sample(ctx: typer.Context, source: str = typer.Argument("dyck", help="source name (see `nextk sources`)"),
           num: int = typer.Option(5, help="number of documents"),
           seed: int = typer.Option(0, help="random seed"),
           as_json: bool = typer.Option(False, "--json", help="machine-readable output")):
    """Print decoded samples of SOURCE with their exact log-probabilities. Extra `--param value`
    pairs set the source's parameters, e.g. `nextk sample factorization --digits 3`."""
    try:
        src = build_source(source, parse_params(source, ctx.args))
        x = src.sample(num, generator=seed)
        lps = src.log_prob(x).tolist() if getattr(src, "exact", True) else [None] * num
    except ValueError as e:
        fail(e)
    rows = [{"text": t, "log_prob": lp} for t, lp in zip(src.decode(x), lps)]
    if as_json:
        print(json.dumps({"source": source, "params": parse_params(source, ctx.args), "samples": rows}, indent=2))
        return
    table = Table(title=f"{num} samples of {src!r}")
    table.add_column("document")
    table.add_column("log p̄ (nats)", justify="right")
    for r in rows:
        table.add_row(repr(r["text"]), "n/a" if r["log_prob"] is None else f"{r['log_prob']:.6f}")
    console.print(table)


def main():
    app()


if __name__ == "__main__":
    main()
