"""The worked example of docs/languages.md, run line by line as written there (slow: about two
minutes on 2 cores): every command succeeds, and every eval reports, per k, the valid checker, the TV
ceiling and the Theorem 3 bound with intervals, none of which puts TV above the bound (intervals apart)."""

import shlex
from pathlib import Path

import pytest

from tests.cli_tools import cli, cli_json

DOC = Path(__file__).resolve().parent.parent / "docs" / "languages.md"


def example_lines() -> list[str]:
    text = DOC.read_text().split("<!-- worked-example -->", 1)[1]
    block = text.split("```bash", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip().startswith("nextk ")]


def test_the_example_block_is_there():
    lines = example_lines()
    assert len(lines) == 8 and sum(" eval " in f" {line} " for line in lines) == 4


@pytest.mark.slow
def test_worked_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for line in example_lines():
        command = shlex.join(shlex.split(line)[1:])
        if command.startswith("eval"):
            res = cli_json(command)
            assert [w["k"] for w in res["windows"]] == [1, 2, 4]
            for w in res["windows"]:
                assert "valid" in w["checkers"] and w["tv"]["n"] > 0
                assert w["tv"]["low"] <= w["theorem3"]["high"], (line, w["k"])
        else:
            r = cli(command)
            assert r.exit_code == 0, (line, r.output)
