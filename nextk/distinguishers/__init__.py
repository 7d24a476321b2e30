"""Next-k-token distinguishers: source checkers, learned (bounded) and optimal (docs/theory.md §2)."""

from nextk.distinguishers.checks import Distinguisher, Negation, SupportCheck
from nextk.distinguishers.learned import LearnedDistinguisher
from nextk.distinguishers.optimal import OptimalDistinguisher

__all__ = ["Distinguisher", "Negation", "SupportCheck", "LearnedDistinguisher", "OptimalDistinguisher"]
