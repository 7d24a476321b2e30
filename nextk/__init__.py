"""nextk: exact tests of what next-token prediction can and cannot do (Cao & Vempala).

The names the issues promise live here: `nextk.train`, `nextk.advantage`, `nextk.tv_advantage`,
`nextk.boost`, `nextk.distill`, `nextk.search`, `nextk.fixed_point`, `nextk.quantize`,
`nextk.bits_sweep`; modules with the same names stay importable (`from nextk.search import run_schedule`).
"""

from nextk import bounds
from nextk.advantage import advantage, tv_advantage
from nextk.boost import Boosted, boost, distill
from nextk.errors import CheckpointError, InputError, NotExactError, TooLargeError, TrainingError
from nextk.lm import LanguageModel, State
from nextk.quantize import bits_sweep, fixed_point, quantize
from nextk.search import SearchResult, search
from nextk.stats import Estimate
from nextk.train import TrainResult, train

__all__ = [
    "LanguageModel",
    "State",
    "Estimate",
    "bounds",
    "train",
    "TrainResult",
    "advantage",
    "tv_advantage",
    "boost",
    "distill",
    "Boosted",
    "search",
    "SearchResult",
    "fixed_point",
    "quantize",
    "bits_sweep",
    "InputError",
    "TooLargeError",
    "NotExactError",
    "CheckpointError",
    "TrainingError",
]
