"""Running the CLI in tests: commands as one string (paths formatted in), JSON output parsed."""

import json
import shlex

from typer.testing import CliRunner

from nextk.cli import app

runner = CliRunner()
DYCK8 = "dyck --length 8 --max-depth 3"  # the tiny source every CLI test trains on


def cli(command: str):
    """Run `nextk <command>`; returns the click Result (exit_code, output)."""
    return runner.invoke(app, shlex.split(command))


def cli_json(command: str) -> dict:
    """Run `nextk <command> --json`, require success, return the parsed output."""
    r = cli(command + " --json")
    assert r.exit_code == 0, r.output
    return json.loads(r.output)
