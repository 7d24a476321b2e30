"""`nextk reproduce`: every claim of the paper and the note as a measured verdict (docs/reproduce.md).

A built-in sweep (nextk.runs.sweep; `SPECS[budget]`) trains and measures what each claim needs; the analysis
(nextk.runs.verdicts, pure functions of the sweep table) turns the table into one section per claim, each ending
in "holds", "violated" or "not shown" with the numbers and intervals behind it, decided by a rule stated before
the data whose error rates the report re-measures by simulation (nextk.runs.verdicts.calibration). The folder
holds report.md, a self-contained report.html (figures embedded), the table (table.json, .csv, .parquet),
figures/*.png with the JSON each is drawn from (figures/*.json), results.json (every section) and cells/ (every
run of the sweep).

`--budget quick` fits in 15 minutes on 2 CPU cores (tiny Dyck languages, GRU widths 2–16, a few seeds, a reduced
barrier report); `--budget full` is meant for a cluster (`--backend ray`): larger sources, sizes and seeds.

`--source NAME` with its parameters (a user's `regex`, `pfsa`, `pcfg`, or any exact source with a length) puts that
source in place of Dyck (and, in the full budget, of the HMM) in every section that measures a trained model against a
source; grids over n take multiples of the source's own length (`UserSource`). The barrier keeps its own sources: it
is a claim about factorization orders, not about a source one trains on.
"""

from __future__ import annotations

import base64
import html
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from nextk.console import quiet
from nextk.errors import InputError, check_option
from nextk.runs import reproduce_figures as figures
from nextk.runs.common import RESULTS, prepare, read_json, write_json
from nextk.runs.reproduce_specs import BUDGETS, DYCK, SPECS, UserSource, full_spec, own, quick_spec  # noqa: F401
from nextk.runs.sweep import CELLS, execute_sweep
from nextk.runs.table import read_table
from nextk.runs.verdicts import HOLDS, NEXTK, NOT_SHOWN, NOTE, VIOLATED, analyse

MAX_EVIDENCE = 25  # evidence lines printed per section (all of them are in results.json and the figure JSON)
CALIBRATION_TABLES = 400  # synthetic tables per rate the report re-measures (nextk.runs.verdicts.calibration)


@dataclass
class Config:
    budget: str = "quick"  # quick (≤ 15 min on 2 CPU cores) | full (a cluster: larger sources, sizes and seeds)
    workers: int | None = None  # local backend: cells at once (default: one per CPU core)
    backend: str = "local"  # local | ray
    address: str | None = None  # ray: auto | ray://host:10001 (default: start a local Ray)
    retries: int | None = None  # attempts after a cell's first failure (default: the budget's spec)
    source: str | None = None  # a source in place of Dyck (regex, pfsa, pcfg, …; default: the budget's Dyck and HMM)
    source_params: dict = field(default_factory=dict)  # its parameters

    def run_name(self) -> str:
        return f"reproduce-{self.budget}" + (f"-{self.source}" if self.source else "")


def barrier_results(out: Path, rows: list[dict]) -> dict | None:
    """The barrier run's own results (its figures are drawn from them), from the first finished barrier cell."""
    cell = next((r["cell"] for r in rows if r.get("stage") == "barrier" and r.get("status") == "ok"), None)
    path = Path(out) / CELLS / cell / RESULTS if cell else None
    return read_json(path) if path and path.is_file() else None


def jsonable(obj):
    """Strict JSON: non-finite floats become None, tuples lists."""
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


def analyse_folder(out: Path) -> dict:
    """The analysis of a finished sweep folder (table.json and its cells): sections and the barrier's results."""
    rows = read_table(out)
    return {"sections": jsonable(analyse(rows)), "barrier": barrier_results(out, rows), "rows": len(rows)}


def run(cfg: Config, out: Path, *, log=quiet, progress: bool = False, force_new: bool = False) -> dict:
    """Run (or resume) the budget's sweep into `out`, analyse the table, write results.json, figures and the report."""
    check_option("budget", cfg.budget, BUDGETS)
    if cfg.source_params and not cfg.source:
        raise InputError(f"source parameters {sorted(cfg.source_params)} need a source: give --source NAME")
    spec = SPECS[cfg.budget](cfg.source, cfg.source_params)  # builds a user's source: its errors before any folder
    out = Path(out)
    prepare(out, cfg, extendable=("workers", "backend", "address", "retries"), force_new=force_new)
    t0 = time.perf_counter()
    summary = execute_sweep(spec, out, cfg, log=log)
    results = {
        "budget": cfg.budget,
        "source": {"name": cfg.source, "params": cfg.source_params} if cfg.source else None,
        "backend": cfg.backend,
        "sweep": {k: v for k, v in summary.items() if k != "columns"},
        **analyse_folder(out),
    }
    from nextk.runs.verdicts.calibration import summary

    results["calibration"] = summary(tables=CALIBRATION_TABLES)
    results["seconds"] = time.perf_counter() - t0
    write_json(out / RESULTS, jsonable(results))
    draw(results, out)
    return results


# ---------------------------------------------------------------------------------------------- the report


def draw(results: dict, out: Path) -> list[Path]:
    """figures/<section>.png and .json (the data each is drawn from), then report.md and report.html."""
    out = Path(out)
    figs = out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    barrier_pngs = {}
    if results.get("barrier"):
        from nextk.runs.barrier import draw as draw_barrier

        tmp = figs / "barrier-run"
        tmp.mkdir(exist_ok=True)
        barrier_pngs = {p.stem: p for p in draw_barrier(results["barrier"], tmp)}
    made = {}
    for s in results["sections"]:
        f = s.get("figure")
        if not f:
            continue
        png, data = figs / f"{s['key']}.png", figs / f"{s['key']}.json"
        if f["kind"] == "barrier":
            if f["name"] in barrier_pngs:
                shutil.copyfile(barrier_pngs[f["name"]], png)
                write_json(data, jsonable({"kind": "barrier", "name": f["name"], "results": results["barrier"]}))
                made[s["key"]] = png
            continue
        drawn = figures.DRAWERS[f["kind"]](f, png, s["title"])
        if drawn is not None:
            write_json(data, jsonable(f))
            made[s["key"]] = png
    shutil.rmtree(figs / "barrier-run", ignore_errors=True)
    blocks = report_blocks(results, made, out)
    (out / "report.md").write_text(markdown(blocks))
    (out / "report.html").write_text(to_html(blocks, out))
    return [*made.values(), out / "report.md", out / "report.html"]


WORDS = {HOLDS: "holds", VIOLATED: "violated", NOT_SHOWN: "not shown at this budget"}
OBSERVED = {HOLDS: "observed", VIOLATED: "opposite observed", NOT_SHOWN: "not shown at this budget"}
WHOSE = {
    NEXTK: "nextk's observation (not a claim of the paper)",
    NOTE: "claim of the note",
    "paper": "claim of the paper",
}
TOKEN = re.compile(r"\[\[(holds|violated|not shown)\|([^\]]+)\]\]")  # a verdict in a block: [[verdict|words]]


def mark(s: dict) -> str:
    """A section's verdict as a token the renderers draw: bold text in Markdown, a styled label in HTML (text and
    CSS, no emoji: a page must read the same without an emoji font). nextk's observations say 'observed'."""
    words = (OBSERVED if s.get("whose") == NEXTK else WORDS)[s["verdict"]]
    return f"[[{s['verdict']}|{words}]]"


def report_blocks(results: dict, made: dict, out: Path) -> list[tuple]:
    """The report as blocks (heading, paragraph, list, table, image) rendered to Markdown and to HTML alike."""
    sw = results.get("sweep", {})
    src = results.get("source")  # a user's source (--source) in place of Dyck, or None
    on = f", on {src['name']}({', '.join(f'{k}={v!r}' for k, v in (src.get('params') or {}).items())})" if src else ""
    blocks = [
        ("h1", f"nextk reproduce — budget {results.get('budget')}{on}"),
        (
            "p",
            "Every claim of “Provable Long-Range Benefits of Next-Token Prediction” (Cao & Vempala) and of the "
            "note on the autoregressive barrier that nextk can measure, each ending in a verdict computed from the "
            "measurements: **holds**, **violated** or **not shown** (at this budget), by a rule stated before the data "
            "whose error rates are measured by simulation (each section says both). nextk's own observations, which "
            "are not claims of the paper, are labelled so and say **observed**. Intervals are 95%. How to read "
            "them: docs/reproduce.md.",
        ),
        (
            "p",
            f"Sweep: {sw.get('ok', '?')} of {sw.get('cells', '?')} cells finished ({sw.get('skipped', 0)} reused "
            f"from an earlier run), {len(sw.get('failed', []))} failed; backend {results.get('backend')}, "
            f"{results.get('rows', '?')} table rows (table.json, table.csv"
            f"{', table.parquet' if 'parquet' in sw.get('table', {}) else ''}); "
            f"{results.get('seconds', 0):.0f} s.",
        ),
        (
            "table",
            ["claim", "whose", "verdict"],
            [[s["title"], WHOSE.get(s.get("whose", "paper"), ""), mark(s)] for s in results["sections"]],
        ),
    ]
    cal = results.get("calibration") or {}
    for i, s in enumerate(results["sections"], 1):
        blocks += [
            ("h2", f"{i}. {s['title']}"),
            ("p", f"**{WHOSE.get(s.get('whose', 'paper'), 'Claim').capitalize()}.** {s['claim']}"),
            ("p", f"**{s.get('rule', '')}** Each check: {s.get('test', 'see docs/reproduce.md')}."),
            ("p", f"**Measured error rates of this rule:** {rate_sentence(cal.get(s['key']))}."),
            ("p", f"**Verdict:** {mark(s)}. {s['sentence']}"),
        ]
        ev = s.get("evidence") or []
        if ev:
            shown = ev[:MAX_EVIDENCE]
            more = [f"… and {len(ev) - MAX_EVIDENCE} more (results.json)"] if len(ev) > MAX_EVIDENCE else []
            blocks.append(("ul", shown + more))
        if s["key"] in made:
            rel = made[s["key"]].relative_to(out)
            blocks.append(("img", str(rel), f"{s['title']} (data: {rel.with_suffix('.json')})"))
    if sw.get("failed"):
        blocks += [
            ("h2", "Failed cells"),
            ("p", "These cells failed after every retry; the sections above were computed without them."),
        ]
        blocks.append(("ul", [f"`{f['cell']}` ({f['attempts']} attempts): {f['error']}" for f in sw["failed"]]))
    return blocks


def rate_sentence(rates: dict | None) -> str:
    from nextk.runs.verdicts.calibration import sentence

    return sentence(rates)


def markdown(blocks: list[tuple]) -> str:
    blocks = [tuple(TOKEN.sub(r"**\2**", x) if isinstance(x, str) else _md_rows(x) for x in b) for b in blocks]
    lines = []
    for b in blocks:
        kind = b[0]
        if kind == "h1":
            lines += [f"# {b[1]}", ""]
        elif kind == "h2":
            lines += [f"## {b[1]}", ""]
        elif kind == "p":
            lines += [b[1], ""]
        elif kind == "ul":
            lines += [f"- {item}" for item in b[1]] + [""]
        elif kind == "table":
            lines += ["| " + " | ".join(b[1]) + " |", "|" + "---|" * len(b[1])]
            lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in b[2]] + [""]
        elif kind == "img":
            lines += [f"![{b[2]}]({b[1]})", "", f"*{b[2]}*", ""]
    return "\n".join(lines)


def _md_rows(x):
    """Table rows (lists of cells) with their verdict tokens in Markdown."""
    if isinstance(x, list):
        return [_md_rows(c) for c in x]
    return TOKEN.sub(r"**\2**", x) if isinstance(x, str) else x


def _inline(text: str) -> str:
    """Markdown's **bold** and `code` in escaped HTML; a verdict token as a styled label."""
    out, parts = html.escape(text), []
    for i, chunk in enumerate(out.split("**")):
        parts.append(f"<strong>{chunk}</strong>" if i % 2 else chunk)
    out = "".join(parts)
    parts = []
    for i, chunk in enumerate(out.split("`")):
        parts.append(f"<code>{chunk}</code>" if i % 2 else chunk)
    return TOKEN.sub(lambda m: f'<span class="verdict v-{m[1].replace(" ", "-")}">{m[2]}</span>', "".join(parts))


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
img{max-width:100%;border:1px solid #eee}li{margin:2px 0;font-size:0.93em}code{background:#f4f4f4}
.caption{color:#555;font-size:0.85em}
.verdict{font-weight:bold;padding:1px 7px;border-radius:3px;border:1px solid;white-space:nowrap}
.v-holds{background:#e3f4e6;color:#14532d;border-color:#14532d}
.v-violated{background:#fbe4e4;color:#7f1d1d;border-color:#7f1d1d}
.v-not-shown{background:#f0f0f0;color:#333;border-color:#777;border-style:dashed}"""


def to_html(blocks: list[tuple], out: Path) -> str:
    """A self-contained page: the figures inlined as base64 PNG."""
    body = []
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{_inline(b[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline(b[1])}</p>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in b[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{_inline(h)}</th>" for h in b[1])
            rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in b[2])
            body.append(f"<table><tr>{head}</tr>{rows}</table>")
        elif kind == "img":
            data = base64.b64encode((out / b[1]).read_bytes()).decode()
            body.append(
                f'<p><img alt="{html.escape(b[2])}" src="data:image/png;base64,{data}"></p>'
                f'<p class="caption">{_inline(b[2])}</p>'
            )
    title = html.escape(blocks[0][1]) if blocks else "nextk reproduce"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def show(results: dict):
    from rich.table import Table

    t = Table(title=f"nextk reproduce ({results.get('budget')}): verdicts")
    t.add_column("claim")
    t.add_column("verdict")
    t.add_column("why")
    for s in results["sections"]:
        t.add_row(s["title"], TOKEN.sub(r"\2", mark(s)), s["sentence"])
    return [t]
