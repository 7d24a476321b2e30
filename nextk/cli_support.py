"""What the command line shares: running a config through the run layer, one-line errors, parsing
`--param value` pairs for a source, and the small display commands (sources, sample, barrier parts).
Imports torch and matplotlib only when a command needs them, so `--help` and errors are instant."""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

console = Console()  # results: tables and JSON on stdout
errors = Console(stderr=True)  # errors, warnings and progress on stderr, so stdout holds only results
NAMES = {int: "integers", float: "numbers"}
TRUE, FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}
CHUNK = 4096  # documents whose exact log-probabilities `sample` computes at once


def fail(err: Exception | str, code: int = 2):
    """One line on stderr, no traceback: 'error: …', exit 2."""
    from rich.markup import escape

    text = escape(" ".join(str(err).split()))  # one line, whatever the message held; "[x]" in it is text
    errors.print(f"[red]error:[/red] {text}", highlight=False, soft_wrap=True, markup=True)
    raise typer.Exit(code)


def number_option(name: str, kind: type, flag: str | None = None, default=None):
    """The callback of a numeric option: its value within bounds(name) (nextk/errors.py), else one line, exit 2.
    A list option (a comma list, parsed later) is checked item by item where it is parsed."""
    from nextk.errors import InputError, check_number

    def check(value):
        if value is not None:
            try:
                check_number(name, value, kind, flag or "--" + name.replace("_", "-"), default)
            except InputError as e:
                fail(e)
        return value

    return check


def ks_option(default: str, help: str = "window sizes k, comma separated"):
    return typer.Option(default, help=help, callback=parse_ints)


def parse_ints(param: typer.CallbackParam, value: str) -> list[int]:
    return comma_list(param.name, value, int)


def comma_list(name: str, value, cast, field: str | None = None) -> list:
    """A comma list of numbers for option `name` (of Config field `field`), each within the field's bounds."""
    if isinstance(value, list):  # the default, untouched
        return value
    from nextk.errors import InputError, check_number

    flag = f"--{name.replace('_', '-')}"
    try:
        out = [cast(v) for v in value.split(",") if v.strip()]
    except ValueError:
        fail(f"{flag} takes comma-separated {NAMES[cast]}, got {value!r}")
    if not out:
        fail(f"{flag} takes at least one value")
    try:
        for v in out:
            check_number(field or name, v, cast, flag)
    except InputError as e:
        fail(e)
    return out


def source_args(name: str, args: list[str]) -> dict:
    """`--digits 3 --order factors_first` → {"digits": 3, "order": "factors_first"}, typed by the
    source's defaults (booleans from true/false/1/0/yes/no); unknown names and bad values fail."""
    from nextk.sources import SOURCES

    if name not in SOURCES:
        fail(f"unknown source {name!r}; choose one of {sorted(SOURCES)}")
    params = {k: v for k, v in inspect.signature(SOURCES[name]).parameters.items() if k != "self"}
    out, i = {}, 0
    while i < len(args):
        if not args[i].startswith("--") or i + 1 >= len(args):
            fail(f"expected '--param value' pairs after the source name, got {args[i:]}")
        key, raw = args[i][2:].replace("-", "_"), args[i + 1]
        if key not in params:
            fail(f"source {name!r} has no parameter {key!r}; it takes {', '.join(params)}")
        out[key] = typed(key, raw, params[key].default, params[key].annotation)
        i += 2
    return out


def typed(key: str, raw: str, default, annotation=None):
    if isinstance(default, bool):
        if raw.lower() not in TRUE | FALSE:
            fail(f"--{key} takes true or false, got {raw!r}")
        return raw.lower() in TRUE
    if annotation in (str, "str", "str | None"):  # a pattern or vocabulary such as '0101' stays text
        return raw
    for cast in (type(default),) if default not in (inspect.Parameter.empty, None) else (int, float, str):
        try:
            return cast(raw)
        except ValueError:
            continue
    fail(f"--{key} expects a {type(default).__name__}, got {raw!r}")


def execute(
    kind: str,
    cfg,
    out: Path | None,
    *,
    as_json: bool = False,
    progress: bool = True,
    force_new: bool = False,
    write: bool = True,
) -> dict:
    """Run `nextk.runs.<kind>` on cfg into `out` (default folder when None), then print its report and
    draw its plots. Bad input: one line, exit 2. Ctrl-C: where it stopped and how to resume, exit 130."""
    from nextk.console import printer, quiet
    from nextk.runs.common import check_config, default_folder, release
    from nextk.train import Interrupted

    module = importlib.import_module(f"nextk.runs.{kind}")
    folder = Path(out) if out is not None else default_folder(getattr(cfg, "run_name", lambda: kind)())
    log = quiet if as_json else printer()
    try:
        check_config(cfg)  # every number within its bounds before any work
        results = module.run(
            cfg, folder if write else None, log=log, progress=progress and not as_json, force_new=force_new
        )
    except Interrupted as e:
        fail(f"{e}; run the same command again to resume from step {e.saved_step}" if e.saved_step else e, 130)
    except KeyboardInterrupt:
        fail(f"interrupted; what was finished is in {folder}" if write else "interrupted", 130)
    except (ValueError, OverflowError) as e:  # InputError, TooLargeError, NotExactError, CheckpointError
        fail(e)
    except MemoryError:
        fail(f"{kind} ran out of memory; use smaller sizes (--num-docs, widths, lengths)")
    except RuntimeError as e:  # torch's allocator ("can't allocate …") and TrainingError
        if "alloc" not in str(e).lower() and "memory" not in str(e).lower() and type(e).__name__ != "TrainingError":
            raise
        fail(e)
    except OSError as e:  # an --out the process cannot write (/proc/x, a read-only disk, a full disk)
        fail(f"cannot write {str(e.filename or folder)!r}: {e.strerror or e}")
    finally:
        release()
    plots = module.draw(results, folder) if write else []
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        for item in module.show(results):  # every run module says what a person reads on the console
            console.print(item)
        if write:
            errors.print(escape(f"wrote {folder}/config.json, results.json" + "".join(f", {p.name}" for p in plots)))
    summary = results.get("sweep", results) if isinstance(results, dict) else {}  # reproduce keeps it under "sweep"
    failed = summary.get("failed") if isinstance(summary, dict) else None
    if isinstance(failed, list) and failed:  # a sweep (or reproduce) with failed cells is not a success
        total = summary.get("cells", "?")
        fail(f"{len(failed)} of {total} cells failed (see {folder}/cells/*/error.txt); run again to retry them", 1)
    return results


def sources_table():
    from rich.table import Table

    from nextk.sources import SOURCES

    table = Table(title="nextk sources")
    for column in ("source", "parameters (defaults)", "exact"):
        table.add_column(column)
    for name, make in SOURCES.items():
        params = inspect.signature(make).parameters.items()
        shown = ", ".join(f"{k}={v.default!r}" if v.default is not inspect.Parameter.empty else k for k, v in params)
        table.add_row(name, shown, "no (samples only)" if name == "text" else "yes")
    return table


def show_samples(name: str, params: dict, num: int, seed: int, as_json: bool) -> None:
    from rich.table import Table

    from nextk.sources import make_source

    if num < 1:
        fail(f"--num must be ≥ 1, got {num}")
    from nextk.errors import TooLargeError, check_memory

    note, src = None, None
    try:
        src = make_source(name, **params)
        # the tokens (int64), their decoded text (a Python str per document, ~60 bytes a character) and the
        # printed output; log-probabilities are computed in chunks of CHUNK documents, their memory bounded
        check_memory(num * src.length * (8 + 60 + 8), f"{num:,} documents of {src.length:,} tokens")
        x = src.sample(num, generator=seed)
        try:
            lps = [None] * num
            if src.exact:
                lps = [lp for i in range(0, num, CHUNK) for lp in src.log_prob(x[i : i + CHUNK]).tolist()]
        except TooLargeError as e:  # samples are cheap, exact probabilities are not: show the samples
            lps, note = [None] * num, f"log p̄ not computed: {e}"
    except (ValueError, TypeError, OverflowError) as e:
        fail(e)
    except MemoryError:
        if src is None:  # building the source itself
            fail(f"the {name} source with {params} does not fit in memory; use smaller sizes")
        fail(f"{num:,} documents of {src.length:,} tokens do not fit in memory; ask for fewer (--num)")
    rows = [{"text": t, "log_prob": lp} for t, lp in zip(src.decode(x), lps)]
    if as_json:
        print(json.dumps({"source": repr(src), "params": src.params, "samples": rows, "note": note}, indent=2))
        return
    from rich.markup import escape

    table = Table(title=escape(f"{num} samples of {src!r}"))
    table.add_column("document")
    table.add_column("log p̄ (nats)", justify="right")
    for r in rows:
        table.add_row(escape(repr(r["text"])), "n/a" if r["log_prob"] is None else f"{r['log_prob']:.6f}")
    table.caption = note
    console.print(table)


def show_sampling(digits: list[int], budget: float, seed: int, as_json: bool) -> None:
    from rich.table import Table

    from nextk.barrier.sampling import sampling_cost
    from nextk.console import printer

    res = sampling_cost(digits, budget, log=printer(not as_json), seed=seed)
    if as_json:
        print(json.dumps(res, indent=2))
        return
    table = Table(title="factorization samplers: seconds per sample")
    for column in ("sampler", "d tried", "last d: s/sample", "decades per digit", "polynomial degree"):
        table.add_column(column)
    for name, v in res.items():
        rows, fit = v["rows"], v["fit"]
        table.add_row(
            name,
            ", ".join(str(r["digits"]) for r in rows),
            f"{rows[-1]['seconds_per_sample']:.2e}",
            f"{fit.get('decades_per_digit', float('nan')):.3f}",
            f"{fit.get('polynomial_degree', float('nan')):.2f}",
        )
    console.print(table)


def show_primes(digits: list[int], last: int, budget: float, as_json: bool) -> None:
    from nextk.barrier.primes import prime_costs
    from nextk.console import printer

    rows = prime_costs(digits, budget, last=last, log=printer(not as_json))
    if as_json:
        print(json.dumps(rows, indent=2))
