"""The thread policy: how many intra-op threads torch (and NumPy's BLAS) use in every nextk process.

One mechanism for the command line, the library and sweep/reproduce workers:

1. an explicit choice wins: `nextk --threads N …` / `nextk COMMAND --threads N` / `set_threads(N)`, else the
   environment variable NEXTK_THREADS=N (read once, when nextk is imported);
2. otherwise the default, `DEFAULT_THREADS = 1`, unless the user has set OMP_NUM_THREADS themselves (then torch's
   own reading of it stands).

Why one thread by default: the models nextk trains and measures are small (hidden ≤ a few hundred, batches of
tens to hundreds of rows), and their per-step work is too small to gain from a second thread, while a second
thread per process on a shared machine makes every OpenMP barrier wait for a descheduled core: `nextk train dyck
--length 24 --hidden 32 --steps 200` on 2 cores took 7.7 s with torch's default threads against 7.2 s with one
alone, 16.2 s against 7.7 s beside one busy process and 128 s against 13.7 s beside two. The crossover where two
threads pay when the machine is idle is measured by benchmarks/thread_crossover.py (BENCHMARKS.md). A larger
model (a Hugging Face network) may ask for more with `threads_for_work`, which stays at the explicit choice
when there is one and otherwise takes only the cores the load average says are idle.

`set_threads` also writes NEXTK_THREADS, OMP_NUM_THREADS and MKL_NUM_THREADS into the environment, so every
process started afterwards (sweep workers, subprocesses) starts with the same setting. This module imports
torch only when torch is already loaded (so `nextk --help` stays instant).
"""

from __future__ import annotations

import os
import sys

from nextk.errors import InputError

ENV = "NEXTK_THREADS"
DEFAULT_THREADS = 1
HEAVY_WORK = 2e8  # multiply-adds per model call above which a second thread pays (benchmarks/thread_crossover.py)

_explicit: int | None = None  # the choice made by set_threads / NEXTK_THREADS in this process


def parse_threads(value, origin: str = "threads") -> int:
    """A positive thread count from an int or a string; a one-line InputError naming `origin` otherwise."""
    try:
        n = int(str(value).strip())
    except ValueError:
        raise InputError(f"{origin} must be a positive whole number of threads, got {value!r}") from None
    if n < 1:
        raise InputError(f"{origin} must be ≥ 1 thread, got {n}")
    return n


def env_threads() -> int | None:
    """NEXTK_THREADS as a count, or None when unset or empty."""
    raw = os.environ.get(ENV, "")
    return parse_threads(raw, ENV) if raw.strip() else None


def chosen_threads() -> int | None:
    """The explicit choice in force (set_threads in this process, else NEXTK_THREADS), or None."""
    return _explicit if _explicit is not None else env_threads()


def _apply(n: int) -> None:
    for var in (ENV, "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    if "numpy" in sys.modules:  # NumPy's BLAS pool, when threadpoolctl is there to reach it
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(n)
        except ImportError:
            pass


def set_threads(n) -> int:
    """Use n intra-op threads from now on, in this process and every process it starts. Returns n."""
    global _explicit
    _explicit = parse_threads(n)
    _apply(_explicit)
    return _explicit


def apply_policy() -> int:
    """The explicit choice if there is one, else the default (leaving a user's own OMP_NUM_THREADS alone).
    Called when nextk is imported and when a command starts; returns the count torch will use."""
    n = chosen_threads()
    if n is not None:
        _apply(n)
        return n
    if os.environ.get("OMP_NUM_THREADS", "").strip():
        n = parse_threads(os.environ["OMP_NUM_THREADS"], "OMP_NUM_THREADS")
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(n)
        return n
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(DEFAULT_THREADS)
    return DEFAULT_THREADS


def idle_cores() -> int:
    """Cores the 1-minute load average leaves idle (this process's own work excluded), at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        others = os.getloadavg()[0] - 1  # this process is one of the running ones
    except OSError:  # no load average on this platform: assume the machine is shared
        return 1
    return max(1, min(cores, cores - round(max(0.0, others))))


def threads_for_work(multiply_adds: float) -> int:
    """Threads for a model whose one call costs `multiply_adds`: the explicit choice when there is one (or a user's
    own OMP_NUM_THREADS); else one thread below HEAVY_WORK, and the idle cores above it. Applies and returns it."""
    n = chosen_threads()
    if n is None:
        own = os.environ.get("OMP_NUM_THREADS", "").strip()  # a user's own setting stands, as in apply_policy
        n = (
            parse_threads(own, "OMP_NUM_THREADS")
            if own
            else DEFAULT_THREADS
            if multiply_adds < HEAVY_WORK
            else idle_cores()
        )
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(n)
        return n
    _apply(n)
    return n
