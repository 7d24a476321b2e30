"""What people see, checked on synthetic results dicts (no training): every figure's title inside the
figure, at least two labelled ticks on a log axis, the kept step marked, no empty panel, a legend on every
panel with data, one y-axis per panel; tables readable at 80 columns; data text never eaten as markup."""

import dataclasses
import io
import json
import math

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rich.console import Console  # noqa: E402

SOURCE = "Dyck(n_types=1, max_depth=6, length=24, p_open=0.5, a long parameter list that must still fit in the title)"


def est(value, half=None, n=200, method="mean over documents"):
    """An Estimate dict as results.json holds it (value, 95% interval, n, method)."""
    half = abs(value) * 0.2 + 1e-4 if half is None else half
    return {"value": value, "stderr": half / 1.96, "low": value - half, "high": value + half, "n": n, "method": method}


def history(values: list[float], every: int = 50) -> list[dict]:
    return [
        {"step": every * (i + 1), "eval_loss": est(0.7 + v), "excess_loss": est(v, v / 10)}
        for i, v in enumerate(values)
    ]


def train_results(values=(0.05, 0.03, 0.02, 0.025), best_step=150) -> dict:
    h = history(list(values))
    return {
        "model": "gru-32",
        "source": SOURCE,
        "steps": 50 * len(values) if values else 30,
        "stopped": "budget",
        "seconds": 1.0,
        "history": h,
        "best_step": best_step if h else None,
    }


def window(k: int, scale: float) -> dict:
    return {
        "k": k,
        "checkers": {"balanced": est(scale * k, method="RB"), "depth ≤ 6": est(-0.001 * k)},
        "learned": {**est(scale * k * 0.8), "train_accuracy": 0.873},
        "tv": est(scale * k * 1.5),
        "learned_share_of_tv": est(0.53, 0.11, method="Fieller"),
        "theorem3": est(0.3 * math.sqrt(k)),
        "estimator": "rao_blackwell",
        "learned_fit": {"fit_docs": 1536, "fit_pairs": 3000, "train_accuracy": 0.873},
    }


def demo_results() -> dict:
    models = []
    for name, scale in (("gru-2", 0.05), ("gru-32", 0.002)):
        tr = train_results()
        models.append(
            {
                "name": name,
                "size": 2,
                "parameters": 1234,
                "train": tr,
                "kept": {"step": 150, "sentence": "kept step 150 of 200"},
                "excess_loss": est(0.0234),
                "windows": [window(k, scale) for k in (1, 2, 4, 8)],
            }
        )
    return {"run": "demo", "source": SOURCE, "models": models}


def visible_ticks(ax, axis: str = "y") -> list[str]:
    """The labels of the major ticks inside the view limits, as drawn."""
    a = ax.yaxis if axis == "y" else ax.xaxis
    lo, hi = sorted(ax.get_ylim() if axis == "y" else ax.get_xlim())
    locs = [x for x in a.get_majorticklocs() if lo - 1e-12 * abs(lo) <= x <= hi + 1e-12 * abs(hi)]
    return [t for t in a.get_major_formatter().format_ticks(locs) if t]


@pytest.fixture
def figures(monkeypatch):
    """Every figure a draw function saves, kept open for inspection after drawing: `save` closes each figure
    it wrote through plt.close, which here keeps it instead (whichever module imported save, and when)."""
    kept = []
    close = plt.close
    monkeypatch.setattr(plt, "close", kept.append)
    yield kept
    monkeypatch.undo()
    for fig in kept:
        close(fig)


def check_figure(fig):
    """Titles inside the figure, no empty panel, a legend where a panel has more than one series, one y-axis
    per panel, at least two labelled ticks on every log axis."""
    fig.canvas.draw()
    box = fig.bbox
    texts = [ax.title for ax in fig.axes] + ([fig._suptitle] if fig._suptitle else [])
    for t in texts:
        if t.get_text():
            e = t.get_window_extent()
            assert box.x0 - 1 <= e.x0 and e.x1 <= box.x1 + 1 and e.y1 <= box.y1 + 1, t.get_text()
    for ax in fig.axes:
        assert ax.get_visible()
        has_data = ax.lines or ax.collections or ax.patches
        assert has_data or ax.texts, f"empty panel {ax.get_title()!r}"
        twins = [o for o in fig.axes if o is not ax and o.bbox.bounds == ax.bbox.bounds]
        assert not twins, f"panel {ax.get_title()!r} has a second y-axis"
        labelled = [x for x in ax.lines + ax.collections if not x.get_label().startswith("_")]
        if len(labelled) > 1:
            assert ax.get_legend() is not None, f"panel {ax.get_title()!r} has no legend"
        for axis in ("x", "y"):
            if (ax.get_yscale() if axis == "y" else ax.get_xscale()) in ("log", "symlog") and has_data:
                assert len(visible_ticks(ax, axis)) >= 2, (ax.get_title(), axis, visible_ticks(ax, axis))


# ------------------------------------------------------------------------------------------------ training


@pytest.mark.parametrize("values", [(0.05, 0.03, 0.02, 0.025), (0.021, 0.019, 0.018, 0.02), (0.4, 0.01, 0.002, 0.003)])
def test_training_plot_title_ticks_and_kept_step(tmp_path, figures, values):
    from nextk.runs.train import draw

    res = train_results(values, best_step=150)
    draw(res, tmp_path)
    (fig,) = figures
    check_figure(fig)
    ax = fig.axes[0]
    assert ax.get_yscale() in ("log", "symlog")
    kept = [ln for ln in ax.lines if "kept" in ln.get_label()]
    assert len(kept) == 1 and list(kept[0].get_xdata()) == [150]
    assert kept[0].get_ydata()[0] == pytest.approx(values[2])
    assert any("kept step 150" in t.get_text() for t in ax.get_legend().get_texts())


def test_training_plot_with_an_interval_reaching_below_zero(tmp_path, figures):
    from nextk.runs.train import draw

    res = train_results()
    res["history"][-1]["excess_loss"] = est(0.001, 0.004)  # low < 0: a symlog axis
    draw(res, tmp_path)
    check_figure(figures[0])


def test_training_plot_before_the_first_evaluation_says_so(tmp_path, figures):
    from nextk.runs.train import draw

    draw(train_results(values=()), tmp_path)
    (fig,) = figures
    check_figure(fig)
    (ax,) = fig.axes
    assert not ax.lines and "no evaluation point" in " ".join(t.get_text() for t in ax.texts)


# ------------------------------------------------------------------------------------------------ search


def search_run(measured: bool) -> dict:
    js = ["1", "2", "3"]
    windows = {"tv": est(0.2), "learned": est(0.1), "theorem3": est(0.4)}
    return {
        "tried": [1, 2, 3],
        "losses": {j: est(0.7 - 0.01 * int(j), 0.002) for j in js},
        "excess": {j: est(0.05 - 0.01 * int(j), 0.002) for j in js},
        "configs": {j: {"hidden": 2 * int(j)} for j in js},
        "parameters": {j: 10 * int(j) for j in js},
        "delta": 0.0011,
        "j0": 1,
        "stop_index": 2,
        "max_start": 3,
        "theoretical_max_start": 9,
        "eps": 0.1,
        "k": 2,
        "decreases": {"1": 0.01, "2": 0.0005},
        "decrease_estimates": {"1": est(0.01, 0.002), "2": est(0.0005, 0.001)},
        "test": "point",
        "departs": "",
        "measurement": {j: {"windows": [windows]} for j in js} if measured else {},
    }


@pytest.mark.parametrize("measured", [True, False])
def test_search_plot_has_no_blank_panel(tmp_path, figures, measured):
    from nextk.runs.search import draw

    draw({"source": SOURCE, "runs": [search_run(measured)]}, tmp_path)
    (fig,) = figures
    check_figure(fig)
    assert len(fig.axes) == (3 if measured else 2)


# ------------------------------------------------------------------------------------------------ boost


def boost_results(pass_rates: bool = True) -> dict:
    offsets = [
        {
            "offset": r,
            "alpha": {"value": 0.1},
            "lemma1_guarantee": 0.001 * (r + 1),
            "gain": est(0.1 + 0.01 * r, 0.02),
            "eta": 0.5,
            "eta_choice": {"kind": "fitted"},
            "gain_at_half_alpha": {"value": 0.05},
        }
        for r in range(4)
    ]
    res = {
        "distinguisher": "check:balanced",
        "k": 4,
        "model": "gru-2",
        "source": SOURCE,
        "search": {"offsets": offsets, "gain": est(0.11)},
        "kl_method": "exact",
        "kl_before": est(0.5, 0.0),
        "kl_after": est(0.39, 0.0),
        "kl_distilled": est(0.42, 0.0),
    }
    if pass_rates:
        res |= {"checker": "balanced", "pass_before": est(0.4, 0.05), "pass_after": est(0.9, 0.03)}
    return res


@pytest.mark.parametrize("pass_rates", [True, False])
def test_boost_plot_keeps_lemma1_apart_and_one_axis_per_panel(tmp_path, figures, pass_rates):
    from nextk.runs.boost import draw

    draw(boost_results(pass_rates), tmp_path)
    (fig,) = figures
    check_figure(fig)
    lemma = [ax for ax in fig.axes if any("Lemma 1" in ln.get_label() for ln in ax.lines)]
    gain = [ax for ax in fig.axes if any(c.get_label().startswith("Δ at chosen") for c in ax.containers)]
    assert len(lemma) == 1 and len(gain) == 1 and lemma != gain  # the ~0.001 marks on their own axis
    lo, hi = lemma[0].get_ylim()
    assert hi < 0.1  # not squeezed against Δ ≈ 0.1
    for ax in fig.axes:
        assert ax.get_legend() is not None, ax.get_title()
    assert len(fig.axes) == (4 if pass_rates else 3)


# ------------------------------------------------------------------------------------------------ construct


def construct_results() -> dict:
    def row(t: int) -> dict:
        same = {"size": 40 * 18**t, "hidden": 6 * t + 3, "tau": 3 * 18**t}
        more = {"size": 50 * 20**t, "hidden": 8 * t + 3, "tau": 3 * 18**t}
        return {
            "round": t,
            "distinguisher": f"1[window = 0{t}]",
            "offset": 1,
            "eta": 0.5,
            "efficient": {"measured": same, "formula": same, "bit_size": 20, "graph_bit_size": 20},
            "two_copy": {"measured": more, "formula": dict(more, size=more["size"] + 1), "bit_size": 20},
        }

    return {
        "q": "HMM.random(3, 2, 8, seed=0, stay=0.5)",
        "source": SOURCE,
        "k": 2,
        "base": {"size": 40, "hidden": 3, "tau": 3},
        "rounds": [row(t) for t in (1, 2, 3)],
    }


def test_construct_plot_tells_the_series_apart(tmp_path, figures):
    from nextk.runs.construct import draw

    draw(construct_results(), tmp_path)
    (fig,) = figures
    check_figure(fig)
    for ax in fig.axes:
        lines = [ln for ln in ax.lines if not ln.get_label().startswith("_")]
        assert len(lines) == 4
        looks = {(ln.get_color(), ln.get_linestyle(), ln.get_marker(), ln.get_markerfacecolor()) for ln in lines}
        assert len(looks) == 4, looks  # four series, four looks (the two formula lines differ)
        # series with equal values (round 0, and τ of both constructions) are drawn side by side
        points = [(x, y) for ln in lines for x, y in zip(ln.get_xdata(), ln.get_ydata())]
        eff = {x for ln in lines if ln.get_label().startswith("efficient") for x in ln.get_xdata()}
        two = {x for ln in lines if ln.get_label().startswith("two-copy") for x in ln.get_xdata()}
        assert not eff & two and len(points) == 16


# ------------------------------------------------------------------------------------------------ bits, barrier


def bits_results() -> dict:
    def row(bit_size, excess):
        w = {"checkers": {"balanced": est(0.01)}, "tv": est(0.05), "theorem3": est(0.3)}
        fb = None if bit_size is None else bit_size - 4
        return {"bit_size": bit_size, "int_bits": None if fb is None else 3, "frac_bits": fb, "loss": est(0.7),
                "excess_loss": est(excess), "windows": [w]}  # fmt: skip

    return {"model": "paper_rnn-8", "source": SOURCE, "k": 2, "rows": [row(None, 0.012)] + [
        row(b, e) for b, e in ((5, 0.3), (6, 0.1), (8, 0.03), (12, 0.013))]}  # fmt: skip


def test_bits_plot_log_axis_has_labels(tmp_path, figures):
    from nextk.runs.bits import draw

    draw(bits_results(), tmp_path)
    (fig,) = figures
    check_figure(fig)
    assert fig.axes[0].get_yscale() == "log"


def test_barrier_plots_keep_equal_orders_apart_and_count_digits(tmp_path, figures):
    from nextk.runs.barrier import draw
    from tests.test_barrier import synthetic_results

    draw(synthetic_results(True), tmp_path)
    for fig in figures:
        check_figure(fig)
        for ax in fig.axes:
            lo, hi = ax.get_xlim()
            ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
            assert all(float(t).is_integer() for t in ticks), (ax.get_title(), ticks)  # digits are whole numbers
    learning = figures[-1]
    for ax in learning.axes:  # the two orders never share a point, so one cannot hide the other
        xs = [tuple(c.lines[0].get_xdata()) for c in ax.containers]
        assert len(xs) == 2 and not set(xs[0]) & set(xs[1])


def test_plot_on_a_sweep_folder_says_why_it_draws_nothing(tmp_path):
    from tests.cli_tools import cli

    (tmp_path / "config.json").write_text(json.dumps({"run": "sweep"}))
    (tmp_path / "results.json").write_text(json.dumps({"name": "s", "cells": 2}))
    r = cli(f"plot {tmp_path}")
    assert r.exit_code == 2 and "no figure" in r.output and "cells/" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and not list(tmp_path.glob("*.png"))


# ------------------------------------------------------------------------------------------------ tables


def interval_text(e: dict, digits: int, signed: bool = False) -> str:
    """The interval as a reader should find it on one line, written out here from the numbers."""
    s = "+" if signed else ""
    return f"{e['value']:{s}.{digits}f} [{e['low']:{s}.{digits}f}, {e['high']:{s}.{digits}f}]"


def rendered(items, width: int = 80) -> list[str]:
    console = Console(file=io.StringIO(), width=width, record=True)
    for item in items:
        console.print(item)
    return console.export_text().splitlines()


def test_demo_tables_keep_every_interval_on_one_line_at_80_columns():
    from nextk.runs.demo import show

    res = demo_results()
    lines = rendered(show(res))
    assert max(len(x) for x in lines) <= 80
    wanted = []
    for m in res["models"]:
        wanted.append(interval_text(m["excess_loss"], 5))
        for w in m["windows"]:
            wanted += [interval_text(e, 4, signed=True) for e in [*w["checkers"].values(), w["learned"]]]
            wanted += [interval_text(w["tv"], 4), interval_text(w["theorem3"], 4)]
            wanted.append(interval_text(w["learned_share_of_tv"], 2))
    table_lines = [x for x in lines if x.startswith("│")]
    for text in wanted:
        assert any(text in x for x in table_lines), text
    # every row of a table holds whole intervals: an opening bracket is closed on its own line
    for x in table_lines:
        assert x.count("[") == x.count("]"), x
    # the names of the checkers, with their brackets, reach the reader unchanged
    assert any("checker 'depth ≤ 6'" in x for x in table_lines)


# ------------------------------------------------------------------------------------------------ markup


def test_data_text_is_not_eaten_as_markup(tmp_path):
    """The construct run's round line names the window "[window = 00]": printed through rich it keeps the
    text, and a sweep cell's log.txt holds it plainly, with no "[bold]" markup left."""
    from nextk.runs.construct import Config
    from nextk.runs.construct import run as run_construct
    from nextk.runs.sweep import LOG, run_cell

    cfg = Config(source_params={"block": 2, "length": 5}, rounds=2, execute_rounds=1, frac_bits=[12], num_docs=64)
    out = io.StringIO()
    run_construct(cfg, tmp_path / "console", log=Console(file=out, width=300).print)
    (line,) = [x for x in out.getvalue().splitlines() if x.startswith("round 2")]
    assert "1[window = " in line, line
    run_cell("construct", dataclasses.asdict(cfg), tmp_path / "cell")
    text = (tmp_path / "cell" / LOG).read_text()
    assert "1[window = " in text and "[bold]" not in text and "[/bold]" not in text, text
    assert f"→ {tmp_path / 'cell'}" in text


def test_plain_renders_markup_away_and_keeps_escaped_brackets():
    from rich.markup import escape

    from nextk.console import plain

    assert plain("nextk demo → [bold]runs/a[/bold]") == "nextk demo → runs/a"
    assert plain(escape("1[window = 00]")) == "1[window = 00]"
    assert plain("[/oops] not markup") == "[/oops] not markup"  # invalid markup: kept as written


def test_tables_print_data_text_as_written():
    """Names and messages from data (a checker called "[window = 00]", a failed cell's error) reach the
    reader as written, in the sweep, bits and boost tables."""
    from nextk.runs import bits, boost, sweep

    odd = "[window = 00]"
    failed = {"cell": "c1", "attempts": 2, "error": f"InputError: no checker {odd} [bold]"}
    res = {"name": "s", "ok": 1, "cells": 2, "skipped": 0, "failed": [failed], "seconds": 1.0}
    res |= {"table": {"csv": "table.csv"}, "rows": 1, "columns": ["a"]}
    text = "\n".join(rendered(sweep.show(res), width=200))
    assert f"no checker {odd} [bold]" in text
    b = bits_results()
    for r in b["rows"]:
        r["windows"][0]["checkers"] = {odd: est(0.01)}
    assert odd in "\n".join(rendered([bits.table(b)], width=300))
    res = boost_results() | {
        "checker": odd,
        "offset": 1,
        "eta": 0.5,
        "eta_kind": "fitted",
        "distinguisher": f"check:{odd}",
    }
    out = "\n".join(rendered([boost.table(res)], width=300))
    assert f"pass rate '{odd}'" in out and f"check:{odd}" in out


def test_search_bits_and_boost_tables_keep_intervals_on_one_line_at_80_columns():
    from nextk.runs import bits, boost, search

    run = search_run(True)
    b = boost_results() | {"offset": 1, "eta": 0.5, "eta_kind": "fitted"}
    b["search"]["offsets"][2]["eta_choice"]["kind"] = "limit+inf"
    cases = {
        "search": ([search.run_table(run)], [run["losses"]["1"], run["excess"]["3"]], 5, False),
        "decrease": ([search.run_table(run)], [run["decrease_estimates"]["2"]], 5, True),
        "bits": ([bits.table(bits_results())], [r["excess_loss"] for r in bits_results()["rows"]], 5, False),
        "boost": ([boost.table(b)], [b["kl_before"], b["kl_after"], b["pass_before"]], 5, False),
        "offsets": ([boost.offsets_table(b)], [o["gain"] for o in b["search"]["offsets"]], 4, False),
    }
    for name, (items, estimates, digits, signed) in cases.items():
        lines = rendered(items)
        assert max(len(x) for x in lines) <= 80, name
        rows = [x for x in lines if x.startswith("│")]
        for x in rows:
            assert x.count("[") == x.count("]"), (name, x)
        for e in estimates:
            shown = interval_text(e, digits if name != "boost" or e is not b["pass_before"] else 4, signed)
            assert any(shown in x for x in rows), (name, shown)
    assert any("δ inside; point test: stop" in x for x in rendered([search.run_table(run)]))


def text_eval_results() -> dict:
    windows = [{"k": k, "distinguishers": {"repeat [same token]": est(0.01 * k)}, "learned": est(0.02)} for k in (1, 4)]
    res = {"kind": "text", "name": "hf-gpt2", "parameters": 124_000_000, "text": {"path": "/data/[x]/corpus.txt"}}
    return res | {"loss": est(3.2), "windows": windows, "not_available": "no bound: the KL of real text is unknown"}


def test_text_eval_table_and_plot(tmp_path, figures):
    from nextk.runs.eval import draw, show

    res = text_eval_results()
    rows = [x for x in rendered(show(res)) if x.startswith("│")]
    assert max(len(x) for x in rendered(show(res))) <= 80
    for w in res["windows"]:
        for e in (w["distinguishers"]["repeat [same token]"], w["learned"]):
            assert any(interval_text(e, 4, signed=True) in x for x in rows)
    assert any("repeat [same token]" in x for x in rows)
    draw(res, tmp_path)
    check_figure(figures[0])


def test_demo_figures(tmp_path, figures):
    from nextk.runs.demo import draw

    paths = draw(demo_results(), tmp_path)
    assert [p.name for p in paths] == ["advantage_vs_k.png", "training.png"]
    for fig in figures:
        check_figure(fig)
    kept = [ln for ln in figures[1].axes[0].lines if "kept step" in ln.get_label()]
    assert len(kept) == 2  # one star per model


def test_training_plot_with_one_evaluation_has_a_readable_step_axis(tmp_path, figures):
    from nextk.runs.train import draw

    res = train_results(values=(0.278,), best_step=5)
    res["history"] = history([0.278], every=5)  # a 5-step run evaluated once, at its end
    draw(res, tmp_path)
    (fig,) = figures
    check_figure(fig)
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks


def test_construct_tables_fit_80_columns_with_names_whole():
    from nextk.runs.construct import show

    res = construct_results()
    lines = rendered(show(res))
    assert max(len(x) for x in lines) <= 80
    rows = [x for x in lines if x.startswith("│")]
    for t in (1, 2, 3):
        assert any(f"1[window = 0{t}]" in x for x in rows)  # the distinguisher's name, brackets and all
        m = res["rounds"][t - 1]["two_copy"]["measured"]
        assert any(f"{m['size']} / {m['hidden']} / {m['tau']}" in x for x in rows)


def test_progress_bar_label_keeps_its_brackets(monkeypatch):
    import rich.progress

    from nextk.console import progress_bar

    seen = {}

    class Spy(rich.progress.Progress):
        def __init__(self, *columns, **kwargs):
            super().__init__(*columns, **kwargs)
            seen["bar"] = self

    monkeypatch.setattr(rich.progress, "Progress", Spy)
    with progress_bar("gru[window = 00]", 3, enabled=True):
        bar = seen["bar"]
        assert bar.columns[0].render(bar.tasks[0]).plain == "gru[window = 00]"
