"""What people see, checked on synthetic results dicts (no training): every figure's title inside the
figure, at least two labelled ticks on a log axis, the kept step marked, no empty panel, a legend on every
panel with data, one y-axis per panel; tables readable at 80 columns; data text never eaten as markup."""

import io
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
    """Every figure a draw function makes, kept open (save closes them) for inspection after drawing."""
    from nextk.runs import plots

    kept = []

    def save(fig, path):
        fig.tight_layout()
        fig.savefig(path, dpi=60)
        kept.append(fig)
        return path

    monkeypatch.setattr(plots, "save", save)
    yield kept
    for fig in kept:
        plt.close(fig)


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
