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
from fractions import Fraction
from pathlib import Path

from nextk.console import quiet
from nextk.errors import InputError, check_option
from nextk.runs import reproduce_figures as figures
from nextk.runs.common import RESULTS, prepare, read_json, write_json
from nextk.runs.sweep import CELLS, execute_sweep
from nextk.runs.table import read_table
from nextk.runs.verdicts import HOLDS, NEXTK, NOT_SHOWN, NOTE, VIOLATED, analyse

BUDGETS = ("quick", "full")
DYCK = {"n_types": 1, "max_depth": 3}
MAX_EVIDENCE = 25  # evidence lines printed per section (all of them are in results.json and the figure JSON)
CALIBRATION_TABLES = 400  # synthetic tables per rate the report re-measures (nextk.runs.verdicts.calibration)
# Each budget's document lengths as multiples of its base n (Dyck's: 12 quick, 24 full) and the largest window k it
# measures: the quick grids are n·{2/3, 1, 4/3, 5/3} = 8, 12, 16, 20; the full ones n·{1/3, 2/3, 1, 4/3, 2}.
SCALES = {
    "quick": (tuple(Fraction(a, 3) for a in (2, 3, 4, 5)), 4),
    "full": (tuple(Fraction(a, 3) for a in (1, 2, 3, 4, 6)), 8),
}
SNAP = 3  # a multiple at which the language is empty moves to the nearest length within this many tokens


@dataclass(frozen=True)
class UserSource:
    """A user's source in place of Dyck: its registry name, its parameters (the length included) and the
    document length of each multiple of n a budget's grids use. Made by `of`, which builds the source once at
    its own length and once at each multiple, so a bad parameter is one line before any folder exists."""

    name: str
    params: dict
    lengths: dict  # Fraction → document length

    @classmethod
    def of(cls, name: str, params: dict | None, budget: str) -> UserSource:
        from nextk.sources import SOURCES, make_source

        check_option("budget", budget, BUDGETS)
        if name not in SOURCES:
            raise InputError(f"unknown source {name!r}; choose one of {sorted(SOURCES)}")
        params = dict(params or {})
        try:
            src = make_source(name, **params)  # the user's parameters as given: their errors are theirs
        except TypeError as e:  # a parameter the source does not take (the Python API; the CLI names it earlier)
            raise InputError(f"source {name!r}: {e}") from None
        if not getattr(src, "exact", True):
            raise InputError(f"source {name!r} has no exact probabilities: reproduce measures KL, TV and Theorem 3")
        if "length" not in src.params:
            raise InputError(
                f"source {name!r} has no length parameter: reproduce varies the document length (takes a source "
                f"with one, e.g. regex, pfsa, pcfg, dyck, hmm, parity)"
            )
        n = src.length
        params = {**params, "length": n}
        factors, k_max = SCALES[budget]
        lengths = {f: n if f == 1 else cls._nearest(name, params, max(1, round(n * f))) for f in factors}
        if min(lengths.values()) < k_max:
            need = min(m for m in range(k_max, 10 * k_max) if round(m * min(factors)) >= k_max)
            raise InputError(
                f"reproduce --budget {budget} measures windows up to k = {k_max} at n·{min(factors)} = "
                f"{min(lengths.values())} tokens: give {name} --length ≥ {need} (it is {n})"
            )
        return cls(name, params, lengths)

    @staticmethod
    def _nearest(name: str, params: dict, target: int) -> int:
        """`target`, or the nearest length within SNAP tokens at which the source builds (a language empty at
        `target`: a pattern of even lengths at an odd one); none: the error at `target`, naming it."""
        from nextk.sources import make_source

        first = None
        for d in (0, *(s * i for i in range(1, SNAP + 1) for s in (1, -1))):
            if target + d < 1:
                continue
            try:
                make_source(name, **{**params, "length": target + d})
                return target + d
            except InputError as e:
                first = first or e
        raise InputError(f"reproduce needs {name} at about {target} tokens (a multiple of its length): {first}")

    def at(self, f: Fraction) -> dict:
        """{"source", "source_params"} at the multiple `f` of the source's length."""
        return {"source": self.name, "source_params": {**self.params, "length": self.lengths[f]}}

    def grid(self, *fs: Fraction) -> list[int]:
        return sorted({self.lengths[f] for f in fs})


def own(source: str | None, source_params: dict | None, budget: str) -> UserSource | None:
    """The checked user source of a spec (None: the budget's own Dyck and HMM)."""
    return None if source is None else UserSource.of(source, source_params, budget)


F = Fraction


def quick_spec(source: str | None = None, source_params: dict | None = None) -> dict:
    """≤ 15 minutes on 2 CPU cores: Dyck languages of length 8–20 (or a user's source at 2/3–5/3 of its length),
    GRU widths 2–16, two seeds."""
    user = own(source, source_params, "quick")

    def on(f: Fraction) -> dict:  # the source of a section at n·f
        return user.at(f) if user else {"source": "dyck", "source_params": DYCK | {"length": int(12 * f)}}

    def lengths(*fs: Fraction) -> list[int]:
        return user.grid(*fs) if user else [int(12 * f) for f in fs]

    demo = {
        "source": "dyck",
        "model": "gru",
        "steps": 300,
        "eval_every": 100,
        "ks": [1, 2, 4],
        "num_docs": 100,
        "learned_steps": 80,
        "learned_docs": 384,
    }
    train = {**on(F(1)), "model": "gru", "steps": 200, "eval_every": 100}
    boosts = [
        {"run": "boost", "k": k, "distinguisher": d, "num_docs": 256}
        for k, d in ((2, "check"), (2, "optimal"), (4, "optimal"))
    ]
    search = {**on(F(2, 3)), "eps": 0.3, "k": 2, "family": "gru", "steps": 120, "max_sizes": 3, "num_docs": 100}
    rnn = {
        **(user.at(F(1)) if user else {"source": "dyck", "source_params": dict(DYCK)}),
        "model": "paper_rnn",
        "width": 4,
        "steps": 300,
        "eval_every": 100,
        "lr": 5e-3,
    }
    bits = {"run": "bits", "int_bits": 3, "frac_bits": [1, 2, 3, 4, 6, 8, 12], "k": 2, "num_docs": 100}
    barrier = {
        "sampling_digits": [2, 4, 6, 8, 10, 12, 14, 16],
        "sampling_budget_s": 40.0,
        "prime_digits": [2, 3, 4, 5, 6],
        "prime_budget_s": 8.0,
        "learn_digits": [1, 2],
        "hidden": 32,
        "steps": 400,
        "seed_bits": 10,  # 1024 hidden seeds: the visible TV enumerates seeds × documents
        "eval_samples": 400,
    }
    return {
        "name": "reproduce-quick" + (f"-{user.name}" if user else ""),
        "retries": 1,
        "part": [  # the longest cell first, so it runs beside the others
            {"name": "barrier", "run": "barrier", "base": barrier, "grid": {"seed": [0]}},
            {
                "name": "sizes",
                "run": "demo",
                "base": demo | on(F(1)),
                "grid": {"sizes": [[2], [4], [8], [16]], "seed": [0, 1]},
            },
            {
                "name": "lengths",
                "run": "demo",
                "base": demo | (user.at(F(1)) if user else {"source_params": dict(DYCK)}) | {"sizes": [8]},
                "grid": {"source_params.length": lengths(F(2, 3), F(1), F(4, 3), F(5, 3)), "seed": [0, 1]},
            },
            {
                "name": "lemma1",
                "run": "pipeline",
                "base": {"train": train, "then": boosts_for(boosts, user)},
                "grid": {"train.width": [2, 8], "train.seed": [0]},
            },
            {"name": "lemma4", "run": "search", "base": search, "grid": {"seed": list(range(6))}},
            {
                "name": "theorem2",
                "run": "pipeline",
                "base": {"train": rnn, "then": [bits]},
                "grid": {"train.source_params.length": lengths(F(2, 3), F(1), F(4, 3))},
            },
            {
                "name": "algorithm2",
                "run": "search",
                "base": search | {"family": "paper_rnn", "bits": True},
                "grid": {"seed": [0, 1]},
            },
        ],
    }


def boosts_for(boosts: list[dict], user: UserSource | None) -> list[dict]:
    """The boosting follow-ups a source can take: the checker's only where the source has a checker."""
    if user is None:
        return boosts
    from nextk.sources import make_source

    has_check = bool(getattr(make_source(user.name, **user.params), "checks", None))
    return [b for b in boosts if has_check or b["distinguisher"] != "check"]


def full_spec(source: str | None = None, source_params: dict | None = None) -> dict:
    """For a cluster: Dyck and HMM sources (or a user's source), GRU and LSTM widths 2–64, five seeds, k up to 8,
    the full barrier."""
    user = own(source, source_params, "full")
    demo = {
        "model": "gru",
        "steps": 2000,
        "eval_every": 200,
        "ks": [1, 2, 4, 8],
        "num_docs": 400,
        "learned_steps": 400,
        "learned_docs": 2048,
    }
    dyck = user.at(F(1)) if user else {"source": "dyck", "source_params": {"n_types": 2, "max_depth": 4, "length": 24}}
    hmm = {"source": "hmm", "source_params": {"n_states": 8, "vocab_size": 4, "length": 32}}
    train = {**dyck, "model": "gru", "steps": 1000, "eval_every": 200}
    boosts = [
        {"run": "boost", "k": k, "distinguisher": d, "num_docs": 1024}
        for k in (2, 4)
        for d in ("check", "learned", "optimal")
    ]
    search = {
        **(
            user.at(F(2, 3))
            if user
            else {"source": "dyck", "source_params": {"n_types": 1, "max_depth": 4, "length": 16}}
        ),
        "eps": 0.2,
        "k": 2,
        "family": "gru",
        "steps": 600,
        "max_sizes": 6,
        "num_docs": 400,
    }
    rnn = {
        **(user.at(F(1)) if user else {"source": "dyck", "source_params": {"n_types": 1, "max_depth": 4}}),
        "model": "paper_rnn",
        "width": 8,
        "steps": 1500,
        "eval_every": 250,
        "lr": 5e-3,
    }
    bits = {"run": "bits", "int_bits": 3, "frac_bits": [1, 2, 3, 4, 5, 6, 8, 10, 12, 16], "k": 2, "num_docs": 400}
    seeds = list(range(5))
    lengths = user.grid(*SCALES["full"][0]) if user else [8, 16, 24, 32, 48]
    rnn_lengths = user.grid(F(1, 3), F(2, 3), F(1), F(4, 3)) if user else [8, 16, 24, 32]
    sizes_hmm = {
        "name": "sizes-hmm",
        "run": "demo",
        "base": demo | {"ks": [1, 2, 4]} | hmm,
        "grid": {"sizes": [[2], [4], [8], [16], [32], [64]], "seed": seeds},
    }
    return {
        "name": "reproduce-full" + (f"-{user.name}" if user else ""),
        "retries": 2,
        "part": [
            {"name": "barrier", "run": "barrier", "base": {"hard_digits": [3]}, "grid": {"seed": [0]}},
            {
                "name": "sizes",
                "run": "demo",
                "base": demo,
                "grid": {
                    "source": [dyck["source"]],
                    "source_params": [dyck["source_params"]],
                    "model": ["gru", "lstm"],
                    "sizes": [[2], [4], [8], [16], [32], [64]],
                    "seed": seeds,
                },
            },
            *([] if user else [sizes_hmm]),  # a user's source stands in for both Dyck and the HMM
            {
                "name": "lengths",
                "run": "demo",
                "base": demo
                | {"sizes": [32]}
                | (user.at(F(1)) if user else {"source": "dyck", "source_params": {"n_types": 2, "max_depth": 4}}),
                "grid": {"source_params.length": lengths, "seed": seeds},
            },
            {
                "name": "lemma1",
                "run": "pipeline",
                "base": {"train": train, "then": boosts_for(boosts, user)},
                "grid": {"train.width": [2, 8, 32], "train.seed": [0, 1, 2]},
            },
            {"name": "lemma4", "run": "search", "base": search, "grid": {"seed": list(range(40))}},
            {  # Lemma 4's premise met: j₀ from 1..N (N = 64 at ε = 1), so its verdict can hold or be violated
                "name": "lemma4-premise",
                "run": "search",
                "base": search | {"eps": 1.0, "max_start": premise_start(search | {"eps": 1.0}), "measure": False},
                "grid": {"seed": list(range(40))},
            },
            {
                "name": "theorem2",
                "run": "pipeline",
                "base": {"train": rnn, "then": [bits]},
                "grid": {"train.source_params.length": rnn_lengths, "train.seed": [0, 1, 2]},
            },
            {
                "name": "algorithm2",
                "run": "search",
                "base": search | {"family": "paper_rnn", "bits": True},
                "grid": {"seed": list(range(10))},
            },
        ],
    }


def premise_start(search: dict) -> int:
    """Lemma 4's N = ⌈10 log V/δ⌉ for a search config: j₀ drawn from 1..N meets the lemma's premise."""
    from nextk.bounds import search_max_start
    from nextk.sources import make_source

    src = make_source(search["source"], **search["source_params"])
    return search_max_start(search["eps"], search["k"], src.length, src.vocab_size)


SPECS = {"quick": quick_spec, "full": full_spec}  # budget → spec(source=None, source_params=None)


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
    blocks = [
        ("h1", f"nextk reproduce — budget {results.get('budget')}"),
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
