"""A run module for the sweep tests (the run-layer convention, no torch): it counts its calls in a file, sleeps,
and raises or kills its own process on demand, so resuming, retrying and failure reports can be checked fast."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from nextk.console import quiet
from nextk.runs.common import RESULTS, prepare, write_json


@dataclass
class Config:
    x: int = 0  # the measured input
    seed: int = 0  # the result depends on it as a seeded run would
    sleep: float = 0.0  # seconds the run takes
    # "raise": always raise; "input": always raise an InputError; "kill": kill its own process on the first attempt
    fail: str = ""
    counter: str = ""  # a file whose lines count the calls (one line per call)


def run(cfg: Config, out: Path, *, log=quiet, progress: bool = False, force_new: bool = False) -> dict:
    prepare(out, cfg, force_new=force_new)
    calls = 0
    if cfg.counter:
        with open(cfg.counter, "a") as fh:
            fh.write(f"{cfg.x} {cfg.seed}\n")
        calls = sum(1 for line in Path(cfg.counter).read_text().splitlines() if line == f"{cfg.x} {cfg.seed}")
    time.sleep(cfg.sleep)
    if cfg.fail == "raise":
        raise RuntimeError(f"cell x={cfg.x} fails on purpose")
    if cfg.fail == "input":
        from nextk.errors import InputError

        raise InputError(f"cell x={cfg.x} has bad input on purpose")
    if cfg.fail == "kill" and calls <= 1:
        os.kill(os.getpid(), signal.SIGKILL)
    res = {
        "square": {
            "value": cfg.x**2 + cfg.seed,
            "stderr": 0.5,
            "low": cfg.x**2 + cfg.seed - 1,
            "high": cfg.x**2 + cfg.seed + 1,
            "n": 4,
            "method": "test",
        },
        "x": cfg.x,
        "calls": calls,
    }
    write_json(out / RESULTS, res)
    return res


def draw(results: dict, out: Path) -> list[Path]:
    return []
