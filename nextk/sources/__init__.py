"""Training distributions with exact conditionals (THEORY.md §1, §7). Registry: `SOURCES`."""

from nextk.sources.dyck import Dyck
from nextk.sources.factorization import Factorization
from nextk.sources.finite import FiniteSupport
from nextk.sources.hmm import HMM
from nextk.sources.numbers import Addition, Primes, RandomNumber
from nextk.sources.parity import Parity
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
}

__all__ = [
    "HMM",
    "Dyck",
    "Addition",
    "Factorization",
    "Primes",
    "RandomNumber",
    "Text",
    "Parity",
    "FiniteSupport",
    "SOURCES",
]
