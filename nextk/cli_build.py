"""Command-line options generated from the run configs: each field of `nextk.runs.<kind>.Config` becomes an
option with the field's default and its trailing comment as help, so a field added to a Config is on the
command line at once and the two cannot drift apart.

The Config is read from its source file (`ast` and `tokenize`), not imported: importing a run module loads
torch, and `nextk --help` must stay instant. tests/test_cli.py checks that the options read here equal the
imported dataclass's fields and defaults.

Field types: bool → `--name/--no-name`; int, float, str and their `| None` forms → options of that type;
a list with a numeric default → one comma-separated option (`--k 1,2,4`); a list with an empty default →
a repeatable option whose values may also be comma lists; dict fields are not options (a source's
parameters come as `--param value` pairs after its name)."""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import io
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from nextk.cli_support import comma_list, execute, fail, number_option, source_args

RUNS = Path(__file__).parent / "runs"
EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}
SCALARS = {"int": int, "float": float, "str": str, "bool": bool}
NOTHING = object()


@dataclass
class Field:
    name: str
    annotation: str  # as written, e.g. "int | None"
    default: Any  # NOTHING when the field is required
    help: str


@functools.lru_cache(maxsize=None)
def read_run(kind: str) -> tuple[ast.Module, list[str]]:
    """nextk/runs/<kind>.py parsed once: (its syntax tree, its lines)."""
    text = (RUNS / f"{kind}.py").read_text(encoding="utf-8")
    return ast.parse(text), text.splitlines(keepends=True)


def run_doc(kind: str) -> str:
    """The command's help: the first paragraph of nextk/runs/<kind>.py's docstring, without its "`nextk X`: "."""
    doc = ast.get_docstring(read_run(kind)[0]) or ""
    first = doc.split("\n\n")[0]
    first = first.split("`: ", 1)[1] if first.startswith("`nextk") and "`: " in first else first
    return first[:1].upper() + first[1:]


def config_fields(kind: str) -> list[Field]:
    """The fields of `class Config` in nextk/runs/<kind>.py, in order, with literal defaults and comments."""
    tree, lines = read_run(kind)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Config")
    body = io.StringIO("".join(lines[cls.lineno - 1 : cls.end_lineno])).readline  # tokenize the class only
    comments = {
        cls.lineno + tok.start[0] - 1: tok.string.lstrip("# ").strip()
        for tok in tokenize.generate_tokens(body)
        if tok.type == tokenize.COMMENT
    }
    out = []
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            default = NOTHING if node.value is None else literal_default(node.value)
            lines = range(node.lineno, node.end_lineno + 1)  # a wrapped field carries its comment on some line
            comment = next((comments[i] for i in lines if i in comments), "")
            out.append(Field(node.target.id, ast.unparse(node.annotation), default, comment))
    return out


def literal_default(value: ast.expr):
    """`3`, `None`, `field(default_factory=lambda: [1, 2])`, `field(default_factory=list)` → the value."""
    if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "field":
        kw = {k.arg: k.value for k in value.keywords}
        if "default" in kw:
            return ast.literal_eval(kw["default"])
        factory = kw["default_factory"]
        if isinstance(factory, ast.Lambda):
            return ast.literal_eval(factory.body)
        return {"list": [], "dict": {}}[factory.id]
    return ast.literal_eval(value)


def option_type(f: Field):
    """(annotation for typer, parser applied to the parsed value) of a field; (None, None) for a dict field.
    A type the command line cannot take raises TypeError naming the field (tests/test_cli.py builds every
    command, so a new Config field of such a type fails there, not in a user's hands)."""
    text = f.annotation.removeprefix("Optional[").removesuffix("]") if f.annotation.startswith("Optional[") else ""
    parts = [p.strip() for p in (text + " | None" if text else f.annotation).split("|")]
    base = next((p for p in parts if p in SCALARS or p.startswith("list")), parts[0])  # "dict | str" → str
    if base in SCALARS and not (set(parts) - {base, "None", "dict"}):
        kind = SCALARS[base]
        return (Optional[kind] if "None" in parts else kind), None
    if base.startswith("list") and isinstance(f.default, list):  # list[int|float|str], or bare, typed by default
        item = base[5:-1] or (
            "float" if any(isinstance(v, float) for v in f.default) else "int" if f.default else "str"
        )
        default = list(f.default)
        if item in ("int", "float"):
            return str, lambda name, value: default if value is None else comma_list(name, value, SCALARS[item], f.name)
        if item == "str":
            return (
                Optional[list[str]],
                lambda name, value: (
                    default if value is None else [s.strip() for v in value for s in v.split(",") if s.strip()]
                ),
            )
    if base == "dict":
        return None, None
    raise TypeError(f"Config field {f.name}: {f.annotation} cannot be a command-line option")


OUT_HELP = "run folder (default: a new one under ./nextk-runs; give the same folder to resume)"
COMMON = {
    "out": (Optional[Path], typer.Option(None, help=OUT_HELP)),
    "as_json": (bool, typer.Option(False, "--json", help="print the results as JSON instead of tables")),
    "force_new": (
        bool,
        typer.Option(False, "--force-new", help="reuse an --out folder that holds a run of another config"),
    ),
    "progress": (bool, typer.Option(True, help="show progress bars")),
}
THREADS_HELP = "torch threads in this process and its workers (default: NEXTK_THREADS, else 1; nextk/threads.py)"


def command(
    app: typer.Typer,
    kind: str,
    *,
    name: str | None = None,
    args: tuple = (),
    rename: dict | None = None,
    skip: tuple = (),
    help: dict | None = None,
    common: tuple = ("out", "as_json", "force_new"),
    hook: Callable | None = None,
    out_help: str = OUT_HELP,
):
    """Register `nextk NAME` for the run `kind`: `args` are positional (a `source` argument also takes the
    source's `--param value` pairs), `rename` maps a field to its option name, `help` overrides a field's help,
    `hook(values, ctx)` may adjust the parsed values (or fail) before the source's parameters are read and the
    Config is built (setting "source_params" keeps the source's own); run options: `common` (`out_help`).
    The help is the first paragraph of the run module's docstring."""
    rename, help = {"ks": "k", **(rename or {})}, help or {}
    fields = [f for f in config_fields(kind) if f.name not in skip]
    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)]
    parsers = {}
    for f in sorted(fields, key=lambda f: f.name not in args):
        annotation, parser = option_type(f)
        if annotation is None:
            continue
        text = help.get(f.name, f.help)
        if f.name == "source" and "source_params" in {g.name for g in fields}:
            text += "; its parameters follow as --name value pairs (see `nextk sources`)"
        if f.name in args:
            info = typer.Argument(... if f.default is NOTHING else (f.default or None), help=text, show_default=False)
        elif f.default is NOTHING:
            raise TypeError(f"Config field {f.name} has no default: make it a positional argument")
        else:
            default = f.default
            if isinstance(default, list):  # a comma list shown as typed (None when empty), or a repeatable option
                default = (",".join(map(str, default)) or None) if annotation is str else None
            flag = "--" + rename.get(f.name, f.name).replace("_", "-")
            decls = [f"{flag}/--no-{flag[2:]}"] if annotation in (bool, Optional[bool]) else [flag]
            number = next((t for t in (int, float) if annotation in (t, Optional[t])), None)
            check = number_option(f.name, number, flag, f.default) if number else None  # bounds: nextk/errors.py BOUNDS
            metavar = "A,B,…" if parser and annotation is str else None
            info = typer.Option(default, *decls, help=text, metavar=metavar, callback=check)
        params.append(
            inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=info, annotation=annotation)
        )
        if parser:
            parsers[f.name] = parser
    for c in common:
        annotation, info = COMMON[c]
        if c == "out":
            info = typer.Option(None, help=out_help)
        params.append(
            inspect.Parameter(c, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=info, annotation=annotation)
        )
    names = {f.name for f in fields}
    takes_params = {"source", "source_params"} <= names  # `source` positional or an option (`--source NAME`)
    threads = typer.Option(None, help=THREADS_HELP, callback=number_option("threads", int))  # nextk/threads.py
    params.append(
        inspect.Parameter("threads", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=threads, annotation=Optional[int])
    )

    def run_command(ctx: typer.Context, **values):
        if (threads := values.pop("threads")) is not None:
            from nextk.threads import set_threads

            try:
                set_threads(threads)
            except ValueError as e:
                fail(e)
        for key, parse in parsers.items():
            values[key] = parse(rename.get(key, key), values[key])
        if isinstance(values.get("checkpoint"), str) and not values["checkpoint"].startswith("hf:"):
            values["checkpoint"] = str(Path(values["checkpoint"]))  # run/ and ./run name the same run
        if hook is not None:
            hook(values, ctx)
        if takes_params:
            if "source_params" not in values:
                values["source_params"] = source_args(values["source"], ctx.args) if values["source"] else {}
        elif ctx.args:
            fail(f"unexpected arguments: {' '.join(ctx.args)}")
        run = {c: values.pop(c) for c in common}
        config = importlib.import_module(f"nextk.runs.{kind}").Config
        cfg = config(**{k: v for k, v in values.items() if k in names and v is not None})
        as_json = run.get("as_json", False)
        out = run.get("out")
        execute(
            kind,
            cfg,
            out if out is not None else values.get("_default_out"),
            as_json=as_json,
            force_new=run.get("force_new", False),
            progress=run.get("progress", True) and not as_json,
            write=values.get("_write", True),
        )

    run_command.__signature__ = inspect.Signature(params)
    run_command.__doc__ = run_doc(kind)
    app.command(name or kind, context_settings=EXTRA if "source" in args or takes_params else None)(run_command)
    return run_command
