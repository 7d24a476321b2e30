"""A run module for the thread-policy tests (the run-layer convention): it records how many intra-op threads
torch uses in the process that runs it, so a test can see what reached a sweep worker."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from nextk.console import quiet
from nextk.runs.common import RESULTS, prepare, write_json


@dataclass
class Config:
    x: int = 0  # a grid axis, so a sweep has cells


def run(cfg: Config, out: Path, *, log=quiet, progress: bool = False, force_new: bool = False) -> dict:
    prepare(out, cfg, force_new=force_new)
    res = {"threads": torch.get_num_threads(), "x": cfg.x}
    write_json(out / RESULTS, res)
    return res


def draw(results: dict, out: Path) -> list[Path]:
    return []
