"""The documents say what the code does: every `nextk.*` name they cite exists, the run times README states are
the ones `--help` states, and docs/theory.md carries the statements the issues asked for (Theorem 1, the Lemma 1
form as derived here, the integer bits that grow with n against Theorem 2), with the figures computed here."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from nextk.cli_build import run_doc
from nextk.construct.bits import claim9_int_bits

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
THEORY = " ".join((ROOT / "docs" / "theory.md").read_text(encoding="utf-8").split())  # whitespace folded
NAME = re.compile(r"(?<![\w/.-])nextk(?:\.[A-Za-z_]\w*)+")


def cited_names() -> list[tuple[str, str]]:
    """(document, dotted name) for every `nextk.a.b…` written in README.md and docs/*.md."""
    return sorted({(doc.name, m.group(0)) for doc in DOCS for m in NAME.finditer(doc.read_text(encoding="utf-8"))})


def resolve(name: str):
    """Import the longest importable module prefix of `name`, then getattr the rest; raises if anything is missing."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(name)


def test_the_documents_cite_names():
    names = {n for _, n in cited_names()}
    assert len(names) > 50 and "nextk.evaluation.measure_model" in names


@pytest.mark.parametrize("doc,name", cited_names())
def test_every_cited_name_exists(doc, name):
    try:
        resolve(name)
    except (ImportError, AttributeError) as e:
        pytest.fail(f"{doc} cites {name}, which does not exist: {e}")


def test_name_resolution_can_fail():
    for missing in ("nextk.experiment.measure_model", "nextk.barrier.report.run_report", "nextk.evaluation.nothing"):
        with pytest.raises((ImportError, AttributeError)):
            resolve(missing)


ABOUT = re.compile(r"about (\d+(?:\.\d+)?) (minutes?|seconds?)")


@pytest.mark.parametrize("kind,anchor", [("demo", "`make demo`"), ("barrier", "`nextk barrier report` times"),
                                         ("construct", "`nextk construct` builds")])  # fmt: skip
def test_readme_run_times_agree_with_help(kind, anchor):
    """The run time in a command's --help (its run module's first docstring paragraph) is the one README's
    paragraph on that command states, and README states no other for it."""
    helps = ABOUT.findall(run_doc(kind))
    assert len(helps) == 1, (kind, helps)
    paragraphs = [p for p in (ROOT / "README.md").read_text(encoding="utf-8").split("\n\n") if anchor in p]
    assert len(paragraphs) == 1, anchor
    assert ABOUT.findall(paragraphs[0]) == helps, (kind, paragraphs[0])


def section(number: int) -> str:
    """The text of '## n.' up to the next '## '."""
    start = THEORY.index(f" ## {number}. ")
    return THEORY[start : THEORY.index(" ## ", start + 1)]


def test_theorem1_is_stated_with_its_size_and_rnn_time_bounds():
    s5 = section(5)
    assert "**Theorem 1 (the paper's main result), as re-derived here.**" in s5
    for needed in (
        "h_j = j · H, s_j = H · j(j − 1)/2 + j · A, τ_1 = τ, τ_{j+1} = L · (τ_j + 2)",
        "with probability at least 0.9 over j₀",
        "N ≤ 160 k ln V / ε² + 1",
        "the **size** s_J ≤ H · J² / 2 + A · J = O((d + k) · k² · ln²V / ε⁴)",
        "the **RNN-time**",
        "τ_J ≤ ((V^k + 2)(k + 1))^{J−1} · (τ + 3)",
    ):
        assert needed in s5, needed


def test_lemma1_form_is_as_derived_here_not_a_correction():
    s4, s5 = section(4), section(5)
    assert "**as derived here**: max(1, ⌊m/k⌋) · a² / 4" in s4 and "may already handle m < k" in s4
    assert "nextk therefore uses max(1, ⌊m/k⌋)" not in s4
    assert "the paper's ⌊m/k⌋ would make δ = 0" not in s5 and "as derived here" in s5
    assert "the floor max(1, ⌊m/k⌋) (§4–5)" not in section(8)  # no longer listed as nextk's own device


def test_integer_bits_growing_with_n_are_stated_where_theorem2_is_checked():
    """I' = 3, 7, 14, 20 at n = 6, 100, 10⁴, 10⁶ (V = 2, k = 2, τ_c = 3, η = 0.5), computed by Claim 9's
    formula; the sentence is in §6 (Theorem 2), §9.7 (the budget) and §9.8 (departures)."""
    bits = [claim9_int_bits(2, 2, 3, n, 0.5) for n in (6, 100, 10**4, 10**6)]
    assert bits == [3, 7, 14, 20]
    figures = "3, 7, 14, 20 bits at n = 6, 100, 10⁴, 10⁶"
    s6 = section(6)
    assert figures in s6 and "departure from Theorem 2's independence of n" in s6
    s9 = THEORY[THEORY.index("### 9.7") :]
    budget, departures = s9[: s9.index("### 9.8")], s9[s9.index("Departures.") :]
    assert "3, 7, 14, 20 bits at n = 6, 100, 10⁴, 10⁶ (§6), against Theorem 2's independence of n" in budget
    assert "I' = 3, 7, 14, 20 bits at n = 6, 100, 10⁴, 10⁶" in departures and "against Theorem 2" in departures
    assert "Departures, each a choice of presentation that keeps the lemmas' statements" not in THEORY


def test_theorem1_arithmetic_holds():
    """The claims of the Theorem 1 paragraph, by plain arithmetic: δ = max(1, ⌊m/k⌋)ε²/(4n) ≥ ε²/(16k) for every
    n ≥ k (and nextk's search_delta is that δ); the schedule meets Lemma 3's increments; the RNN-time closed form
    and its bound L^{j−1}(τ + 3)."""
    from fractions import Fraction

    from nextk.bounds import search_delta

    for k in range(1, 9):
        for n in range(k, 200):
            delta = Fraction(max(1, (n - k + 1) // k), 4 * n)  # per ε²
            assert delta >= Fraction(1, 16 * k), (k, n)
            assert abs(search_delta(0.3, k, n) - float(delta) * 0.09) < 1e-15
    for v, k, d, tau in [(2, 1, 3, 1), (2, 2, 8, 2), (3, 2, 5, 4), (4, 3, 20, 7)]:
        big_h, big_a, big_l = d + 2 * k + 5, 2 * d + 2 * k + 11, (v**k + 2) * (k + 1)
        t = tau
        for j in range(1, 8):
            h_j, s_j = j * big_h, big_h * j * (j - 1) // 2 + j * big_a
            assert (j + 1) * big_h >= h_j + big_h  # hidden set of a boosted class-j model (h_D ≤ d)
            assert big_h * (j + 1) * j // 2 + (j + 1) * big_a >= s_j + h_j + big_a  # its size (s_D, h_D ≤ d)
            closed = Fraction(big_l) ** (j - 1) * (tau + Fraction(2 * big_l, big_l - 1)) - Fraction(
                2 * big_l, big_l - 1
            )
            assert closed == t and t <= big_l ** (j - 1) * (tau + 3)
            t = big_l * (max(t, tau) + 2)  # T' = L · (max(τ_R, τ_D) + 2) (§9.6)
