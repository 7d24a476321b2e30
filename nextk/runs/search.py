"""`nextk search`: Algorithm 1 (with bits, Algorithm 2) repeated over seeds (docs/theory.md §5–6):
how often two sizes sufficed, with its interval, every run's sizes, losses and decreases (each a paired
estimate on common held-out documents, with its interval, against δ), and which premise of Lemma 4 the
measurements contradict when the share is far from 0.9.

The paper's setting is test="point" (move on while the decrease exceeds δ). The practical setting that
approaches the theory: test="interval" (move on only when the decrease exceeds δ beyond its 95% interval),
enough decision documents for intervals narrower than δ, and enough steps per size that each size gets
close to its minimiser (`Config.practical()`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from nextk.console import quiet, working
from nextk.errors import check_option
from nextk.quantize import bit_size
from nextk.runs.common import RESULTS, check_config, check_documents, pick, prepare, read_json, write_json
from nextk.search import TESTS, default_schedule, diagnose, search
from nextk.sources import make_source
from nextk.stats import fmt, wilson
from nextk.train import Interrupted

SHORT_KEYS = {"hidden": "h", "size": "s", "steps_per_token": "τ", "d_model": "d", "layers": "L", "heads": "H"}


@dataclass
class Config:
    source: str  # registry name of the truth
    source_params: dict = field(default_factory=dict)  # its parameters
    eps: float = 0.1  # target advantage ε
    k: int = 2  # window size
    family: str = "paper_rnn"  # model family whose size schedule is searched
    bits: bool = False  # Algorithm 2: bit size in the schedule (quantisation-aware training)
    max_start: int | None = None  # j₀ drawn from 1..max_start (default min(N, 3))
    max_sizes: int = 6  # cap on sizes tried per run
    steps: int = 300  # training steps per size
    lr: float = 5e-3  # AdamW learning rate
    repeats: int = 1  # runs with consecutive seeds
    num_docs: int = 200  # p documents per advantage estimate of each trained size
    seed: int = 0  # every random draw derives from this
    test: str = "point"  # point: decrease > δ moves on (the paper); interval: its 95% lower end > δ
    decision_docs: int = 2000  # held-out documents on which every size's loss and each decrease are measured
    measure: bool = True  # measure advantages (checkers, learned, TV) of every size trained

    @classmethod
    def practical(cls, source: str, source_params: dict | None = None, **overrides) -> Config:
        """The setting that approaches Lemma 4 in practice: the interval test, 4000 decision documents,
        1500 steps per size, j₀ from 1..4, no advantage panel (for speed). Measured on Dyck(length 16),
        family gru, k = 2, 5 repeats (tests/test_search.py::test_practical_setting_approaches_lemma4):
        ε = 0.3 (δ = 0.0098) two sizes in 5 of 5 runs [0.57, 1.00] against 3 of 5 [0.23, 0.88] at the
        defaults (point test, 300 steps); ε = 0.1 (δ = 0.0011) 1 of 5 [0.04, 0.62] — δ lies below the
        differences that finite training leaves between sizes."""
        base = {"test": "interval", "decision_docs": 4000, "steps": 1500, "max_start": 4, "measure": False}
        return cls(source, source_params or {}, **{**base, **overrides})


def run(cfg: Config, out: Path, *, log=quiet, progress: bool = False, force_new: bool = False) -> dict:
    """The repeats one by one, each kept in out/repeat-R.json when it finishes, and each size's training
    checkpointed in out/repeat-R/size-J: an interrupted search resumes there (finished repeats are read back,
    the running repeat's finished sizes are not trained again). Same seed, same result, interrupted or not."""
    check_config(cfg)
    source = make_source(cfg.source, **cfg.source_params)
    schedule = default_schedule(cfg.family, cfg.bits)  # validates the family first
    check_option("test", cfg.test, TESTS)  # and the test, before the folder is made
    check_documents(cfg.decision_docs + 4 * cfg.num_docs, source.length, "the search")
    prepare(out, cfg, force_new=force_new, log=log)
    plan = pick(cfg, "eps", "k", "family", "max_start", "max_sizes", "num_docs", "test", "decision_docs")
    training = {"steps": cfg.steps, "lr": cfg.lr, "eval_every": max(cfg.steps // 3, 1)}
    records = []
    for r in range(cfg.repeats):
        path = Path(out) / f"repeat-{r}.json"
        if path.is_file():
            log(f"repeat {r + 1} of {cfg.repeats}: finished before ({escape(str(path))})")
            records.append(read_json(path))
            continue
        log(f"repeat {r + 1} of {cfg.repeats} (seed {cfg.seed + r})")
        kwargs = {**training, "checkpoint": str(Path(out) / f"repeat-{r}")}
        try:
            with working(f"search repeat {r + 1} of {cfg.repeats}", enabled=progress):
                one = search(
                    source,
                    seed=cfg.seed + r,
                    schedule=schedule,
                    measure=cfg.measure,
                    log=log,
                    train_kwargs=kwargs,
                    **plan,
                )
        except Interrupted:  # the sizes trained so far are checkpointed under out/repeat-R
            raise KeyboardInterrupt from None
        records.append(json.loads(json.dumps(one.to_dict())))  # int keys → str, as read back
        write_json(path, records[-1])
    res = combine(records)
    res = {"source": repr(source), "source_params": source.params, **res}
    write_json(out / RESULTS, res)
    return res


def combine(records: list[dict]) -> dict:
    """What nextk.search.search_repeats reports, from the repeats' records: how often two sizes sufficed
    (a Wilson interval), the bit sizes of the output models (Algorithm 2), and the diagnosis."""
    two = sum(1 for r in records if len(r["tried"]) == 2)
    share = wilson(two, len(records), "runs that stopped after two sizes").to_dict()
    stops = [r["configs"][str(r["stop_index"])] for r in records]
    return {
        "repeats": len(records),
        "two_sizes": share,
        "runs": records,
        "bit_size": [bit_size(*c["bits"]) for c in stops if "bits" in c],
        "diagnosis": diagnose(records, share),
    }


def compact(cfg: dict) -> str:
    return " ".join(f"{SHORT_KEYS.get(k, k)}={v}" for k, v in cfg.items())


def run_table(res: dict) -> Table:
    """One run: per size tried, its loss, excess loss, the paired decrease to the next size against δ (and
    what the run's test did) and the TV ceiling; one row per quantity, so that every interval stays on one
    line at 80 columns."""
    t = Table(
        title=f"size search: ε={res['eps']}, k={res['k']}, δ={res['delta']:.5f} nats/token; j₀={res['j0']} "
        f"from 1..{res['max_start']} (theory: 1..{res['theoretical_max_start']}); output j={res['stop_index']}"
    )
    t.add_column("j")
    t.add_column("size")
    t.add_column("quantity")
    t.add_column("estimate [95% interval]", no_wrap=True)
    for j in res["tried"]:
        js = str(j)
        tv = res["measurement"].get(js, {}).get("windows", [{}])[0].get("tv")
        rows = [("held-out loss", fmt(res["losses"][js], 5)), ("excess loss", fmt(res["excess"].get(js), 5))]
        dec, decision = decrease_cell(res, js)
        if dec:
            rows += [(f"L_{j} − L_{j + 1}", dec), ("  vs δ", decision)]
        if tv is not None:
            rows.append((f"TV at k={res['k']}", fmt(tv)))
        size = f"{escape(compact(res['configs'][js]))}, {res['parameters'][js]} params"
        for i, (name, cell) in enumerate(rows):
            first = i == 0
            t.add_row(
                (js + (" ←" if j == res["stop_index"] else "")) if first else "",
                size if first else "",
                name,
                cell,
                end_section=i == len(rows) - 1,
            )
    t.caption = res["departs"]
    return t


def decrease_cell(res: dict, js: str) -> tuple[str, str]:
    """The paired decrease with its interval, and where it stands against δ with what the run's test did
    ("" when size j + 1 was not trained)."""
    dec = (res.get("decrease_estimates") or {}).get(js)
    if dec is None:
        point = res["decreases"].get(js)
        return ("", "") if point is None else (f"{point:+.5f}", f"{'>' if point > res['delta'] else '≤'} δ")
    delta = res["delta"]
    where = "above δ" if dec["low"] > delta else "below δ" if dec["high"] < delta else "δ inside"
    test = res.get("test", "point")
    moved = (dec["low"] if test == "interval" else dec["value"]) > delta
    return fmt(dec, 5, signed=True), f"{where}; {test} test: {'move on' if moved else 'stop'}"


def summary(res: dict) -> str:
    two = res["two_sizes"]
    line = (
        f"two sizes sufficed in {two['value']:.0%} of {res['repeats']} runs, 95% interval [{two['low']:.2f}, "
        f"{two['high']:.2f}] (Lemma 4 promises ≥ 90% under exact minimisation and j₀ from 1..N)"
    )
    return "\n".join([line, *res.get("diagnosis", {}).get("sentences", [])[1:]])


def show(res: dict) -> list:
    return [*(run_table(r) for r in res["runs"]), summary(res)]


def draw(results: dict, out: Path) -> list[Path]:
    return [plot_run(run_res, out / f"search-{i}.png", results["source"]) for i, run_res in enumerate(results["runs"])]


def plot_run(res: dict, path: Path, source: str) -> Path:
    """Losses per size, the paired decreases against δ and, when the run measured them, the advantages
    against the Theorem 3 bound (without measurements that panel is left out, not left blank)."""
    from nextk.runs.plots import BOUND, errorbar, integer_ticks, plt, save, wrapped

    js = res["tried"]
    meas = res["measurement"]
    fig, axes = plt.subplots(1, 3 if meas else 2, figsize=(15 if meas else 10, 4.2))
    a1, a3 = axes[0], axes[1]
    loss = [res["losses"][str(j)] for j in js]
    errorbar(a1, js, loss, marker="o", label="held-out loss")
    a1.axvline(res["stop_index"], color="g", ls=":", label=f"output j={res['stop_index']}")
    a1.set_ylabel("loss (nats/token)")
    a1.set_title(f"Algorithm 1 ({res.get('test', 'point')} test)", fontsize=9)
    decs = res.get("decrease_estimates") or {}
    dj = sorted(int(j) for j in decs)
    if dj:
        errorbar(a3, dj, [decs[str(j)] for j in dj], marker="o", label="L_j − L_(j+1), paired 95% interval")
    a3.axhline(res["delta"], **BOUND, label=f"δ = {res['delta']:.4g}")
    a3.axhline(0, color="gray", lw=0.5)
    a3.set_ylabel("decrease (nats/token)")
    a3.set_title("decreases against δ", fontsize=9)
    if meas:
        a2 = axes[2]
        for key, label in (("tv", "TV ceiling"), ("learned", "learned")):
            vals = [meas[str(j)]["windows"][0].get(key) for j in js]
            if all(v is not None for v in vals):
                errorbar(a2, js, vals, marker="o", label=label)
        a2.plot(js, [meas[str(j)]["windows"][0]["theorem3"]["value"] for j in js], **BOUND, label="Theorem 3 bound")
        a2.axhline(res["eps"], color="gray", ls=":", label=f"ε = {res['eps']}")
        a2.set_ylabel(f"advantage at k={res['k']}")
        a2.set_title("advantages of each size", fontsize=9)
    for ax in axes:
        ax.set_xlabel("size index j")
        ax.legend(fontsize=8)
    integer_ticks(*axes)
    fig.suptitle(wrapped(source, 140 if meas else 100), fontsize=10)
    return save(fig, path)
