"""The autoregressive barrier lab (docs/theory.md §7; Appendix B; the note): sampling cost by order,
learning by order, hidden streams and seeds, random primes, randomized tasks."""

from nextk.barrier.hidden import HiddenStream, SeedPrefix, visible, visible_tv
from nextk.barrier.primes import ApproxCounter, ExactCounter, approximation_tv, draw_prime
from nextk.barrier.sampling import SAMPLERS, factors_first_autoregressive, product_first_autoregressive
from nextk.barrier.uniformity import uniformity_test

__all__ = [
    "HiddenStream",
    "SeedPrefix",
    "visible",
    "visible_tv",
    "ApproxCounter",
    "ExactCounter",
    "approximation_tv",
    "draw_prime",
    "SAMPLERS",
    "factors_first_autoregressive",
    "product_first_autoregressive",
    "uniformity_test",
]
