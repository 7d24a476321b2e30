"""The layers stay apart: the science never imports the run layer, plots or the CLI; the README's
Python snippets run."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nextk"
RUNNERS = ("nextk.runs", "nextk.cli", "nextk.cli_support", "matplotlib")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module a file imports, at top level or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{alias.name}" for alias in node.names}
    return out


def science_modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        if not name.startswith(("nextk.runs", "nextk.cli", "nextk.__main__")):
            yield name, path


def test_science_layer_imports_no_runner_plot_or_cli():
    bad = {name: sorted(m for m in imports(path) if m.startswith(RUNNERS)) for name, path in science_modules()}
    assert not {k: v for k, v in bad.items() if v}


def test_the_import_check_can_fail(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from nextk.runs.plots import errorbar\n")
    assert any(m.startswith(RUNNERS) for m in imports(f))


def test_sources_do_not_load_the_estimators():
    code = "import sys, nextk.sources; print(sorted(m for m in sys.modules if m.startswith('nextk')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "nextk.advantage" not in loaded and "nextk.distinguishers.learned" not in loaded


def readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_python_snippets():
    assert len(readme_blocks()) >= 3


@pytest.mark.slow
def test_readme_python_snippets_run(tmp_path, monkeypatch):
    """Every fenced Python block of the README, in order, in one namespace (they build on each other)."""
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in readme_blocks():
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README is ours
