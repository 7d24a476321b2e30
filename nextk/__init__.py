"""nextk: exact tests of what next-token prediction can and cannot do (Cao & Vempala)."""

from nextk.errors import CheckpointError, InputError, NotExactError, TooLargeError, TrainingError
from nextk.lm import LanguageModel, State
from nextk.stats import Estimate

__all__ = [
    "LanguageModel",
    "State",
    "Estimate",
    "InputError",
    "TooLargeError",
    "NotExactError",
    "CheckpointError",
    "TrainingError",
]
