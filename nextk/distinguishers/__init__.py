"""Next-k-token distinguishers: source checkers, learned (bounded) and optimal (docs/theory.md §2).

The checkers load eagerly (sources use them); the learned and optimal distinguishers load on first use,
so importing a source never imports the estimators they are measured with."""

from nextk.distinguishers.checks import Distinguisher, Negation, SupportCheck

_LAZY = {"LearnedDistinguisher": "nextk.distinguishers.learned", "OptimalDistinguisher": "nextk.distinguishers.optimal"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nextk.distinguishers' has no attribute {name!r}")


__all__ = ["Distinguisher", "Negation", "SupportCheck", "LearnedDistinguisher", "OptimalDistinguisher"]
