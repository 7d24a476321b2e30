"""Training distributions with exact conditionals (docs/theory.md §1, §7). Registry: `SOURCES`."""

from nextk.sources.corpus import Corpus
from nextk.sources.dyck import Dyck
from nextk.sources.factorization import Factorization
from nextk.sources.finite import FiniteSupport
from nextk.sources.hmm import HMM
from nextk.sources.mixture import Mixture
from nextk.sources.numbers import Addition, Primes, RandomNumber
from nextk.sources.parity import Parity
from nextk.sources.pcfg import PCFG
from nextk.sources.pfsa import PFSA
from nextk.sources.regex import Regex
from nextk.sources.text import Text

SOURCES = {
    "hmm": HMM.random,
    "dyck": Dyck,
    "addition": Addition,
    "factorization": Factorization,
    "primes": Primes,
    "random_number": RandomNumber,
    "parity": Parity,
    "text": Text,
    "regex": Regex,
    "pfsa": PFSA.random,
    "pcfg": PCFG,
}


def make_source(name: str, **params):
    """A source from its registry name and parameters, with a clear error for an unknown name."""
    from nextk.errors import InputError

    if name not in SOURCES:
        raise InputError(f"unknown source {name!r}; choose one of {sorted(SOURCES)}")
    return SOURCES[name](**params)


__all__ = [
    "make_source",
    "HMM",
    "Dyck",
    "Addition",
    "Factorization",
    "Primes",
    "RandomNumber",
    "Text",
    "Parity",
    "FiniteSupport",
    "Mixture",
    "Corpus",
    "Regex",
    "PFSA",
    "PCFG",
    "SOURCES",
]
