"""nextk: exact tests of what next-token prediction can and cannot do (Cao & Vempala).

The top-level names: `nextk.train`, `nextk.advantage`, `nextk.tv_advantage`, `nextk.boost`,
`nextk.distill`, `nextk.search`, `nextk.fixed_point`, `nextk.quantize`, `nextk.bits_sweep` and the
types beside them; modules with the same names stay importable (`from nextk.search import run_schedule`).

They load on first use, so `import nextk` (and `nextk --help`) does not import torch. Importing the
module `nextk.train` never hides the function `nextk.train`.
"""

from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

_API = {
    "LanguageModel": "nextk.lm",
    "State": "nextk.lm",
    "Estimate": "nextk.stats",
    "train": "nextk.train",
    "TrainResult": "nextk.train",
    "advantage": "nextk.advantage",
    "tv_advantage": "nextk.advantage",
    "boost": "nextk.boost",
    "distill": "nextk.boost",
    "Boosted": "nextk.boost",
    "check_sampler": "nextk.sampler_check",
    "SamplerCheck": "nextk.sampler_check",
    "search": "nextk.search",
    "SearchResult": "nextk.search",
    "fixed_point": "nextk.quantize",
    "quantize": "nextk.quantize",
    "bits_sweep": "nextk.quantize",
    "sweep": "nextk.runs.sweep",
    "InputError": "nextk.errors",
    "TooLargeError": "nextk.errors",
    "NotExactError": "nextk.errors",
    "CheckpointError": "nextk.errors",
    "TrainingError": "nextk.errors",
}
__all__ = [*_API, "bounds"]


class _Package(types.ModuleType):
    def __getattr__(self, name: str):
        if name in _API:
            return getattr(importlib.import_module(_API[name]), name)
        if name == "bounds":
            return importlib.import_module("nextk.bounds")
        raise AttributeError(f"module 'nextk' has no attribute {name!r}")

    def __setattr__(self, name: str, value) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return  # the import system binds submodules here; the function of the same name wins
        super().__setattr__(name, value)

    def __dir__(self):
        return sorted({*super().__dir__(), *__all__})


sys.modules[__name__].__class__ = _Package
