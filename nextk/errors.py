"""Errors with messages that name the problem. All are ValueError subclasses (THEORY-independent). Also the
checks that raise them before any work: the bounds of every number a run takes, the memory a command would
need, the argument types of the Python API's constructors."""

import numbers


class InputError(ValueError):
    """Bad input: token ids out of range, wrong length, unknown option, bad window size."""


class TooLargeError(ValueError):
    """An exact enumeration would exceed the memory budget; the message says how large it would be."""


class NotExactError(ValueError):
    """The language model has no exact probabilities (e.g. a Text source)."""


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt or for another model/vocabulary."""


class TrainingError(RuntimeError):
    """Training diverged (NaN/inf loss); the message names the step and the learning rate."""


def check_option(name: str, value: str, allowed) -> str:
    """Raise a clear ValueError for an unknown option string."""
    if value not in allowed:
        raise InputError(f"unknown {name}={value!r}; choose one of {sorted(allowed)}")
    return value


# Largest number of strings (or windows) an exact enumeration may materialise.
MAX_ENUMERATION = 2_000_000


def check_enumeration(count: int, what: str, budget: int = MAX_ENUMERATION) -> None:
    if count > budget:
        raise TooLargeError(
            f"exact {what} needs {count:,} items ({count * 8 / 2**20:,.0f} MiB per float64 value), over "
            f"the budget of {budget:,}; use a sampling estimator or a smaller configuration"
        )


def check_docs(num_docs: int, name: str = "num_docs") -> None:
    """A sample count must be a positive integer (0 would fail deep inside with an empty batch)."""
    if isinstance(num_docs, bool) or not isinstance(num_docs, int) or num_docs < 1:
        raise InputError(f"{name} must be a positive integer, got {num_docs!r}")


# ---- numbers a run takes: the bounds of every numeric Config field and command-line option ----------------

MAX_COUNT = 10**9  # the largest count (steps, documents, widths, …) any option takes: beyond it nothing finishes
MAX_REAL = 1e6  # the largest real (seconds, learning rates, …) any option takes unless its field says otherwise

# field or option name → (lowest value, highest value, lowest value excluded). A name not listed is a count
# (an int ≥ 1) or a positive real (a float > 0); these are the fields where 0, a negative or a cap belongs.
BOUNDS = {
    "seed": (0, 2**63 - 1, False),  # any non-negative 64-bit seed
    "size": (0, MAX_COUNT, False),  # paper_rnn total nodes; 0: twice the hidden nodes
    "distill_steps": (0, MAX_COUNT, False),  # 0: no distillation
    "hard_curriculum_steps": (0, MAX_COUNT, False),  # 0: no curriculum
    "retries": (0, 1000, False),  # attempts after the first failure
    "exact_support": (0, MAX_COUNT, False),  # 0: KLs always sampled
    "int_bits": (0, 64, False),  # integer bits of a fixed-point number
    "frac_bits": (0, 64, False),  # fractional bits of a fixed-point number
    "q_frac_bits": (0, 64, False),
    "last": (0, 100, False),  # digits counted exactly by primality tests
    "seed_bits": (1, 62, False),  # bits of a hidden seed (an int64)
    "hmm_stay": (0.0, 1.0, False),  # a probability
    "eps": (0.0, 1.0, True),  # an advantage lies in (0, 1]
    "gamma": (0.0, 1.0, True),  # a relative error
    "lr": (0.0, 10.0, True),  # a learning rate
    "distill_lr": (0.0, 10.0, True),
    "hard_lr": (0.0, 10.0, True),
    "width": (1, 2**20, False),  # model widths: within this cap, memory is checked from the parameter count
    "hidden": (1, 2**20, False),
    "learned_hidden": (1, 2**20, False),
    "hard_hidden": (1, 2**20, False),
    "threads": (1, 4096, False),  # torch threads of a command (--threads)
    "layers": (1, 1024, False),
    "heads": (1, 1024, False),
}


def bounds(name: str, kind: type, default=None) -> tuple:
    """(low, high, low excluded) of a numeric field or option `name` of type `kind` (int or float) whose default
    is `default`: its BOUNDS entry, else a count (int ≥ 1) or a positive real, widened to take its default (a
    field of a user's run module whose default is 0 takes 0)."""
    if name in BOUNDS:
        return BOUNDS[name]
    low, high, open_low = (1, MAX_COUNT, False) if kind is int else (0.0, MAX_REAL, True)
    if isinstance(default, (int, float)) and not isinstance(default, bool) and default == default:
        if default < low or (open_low and default == low):
            low, open_low = default, False
        high = max(high, default)
    return low, high, open_low


def check_number(name: str, value, kind: type, flag: str | None = None, default=None):
    """`value` as a number of type `kind` within bounds(name, kind, default): returns it, or raises InputError
    naming the option (`flag`, e.g. "--steps", else the field name) and the allowed range."""
    label = flag or name
    low, high, open_low = bounds(name, kind, default)
    ok_type = (int,) if kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type):
        raise InputError(f"{label} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    if value != value or (value <= low if open_low else value < low) or value > high:
        lower = f"> {low}" if open_low else f"≥ {low}"
        raise InputError(f"{label} must be {lower} and ≤ {high:,}, got {value!r}")
    return value


# ---- memory: refuse what the machine cannot hold before any of it is spent -----------------------------------


def memory_budget() -> int:
    """Bytes a command may use: the memory available now (MemAvailable), capped by this process's address-space
    limit (RLIMIT_AS), when either is known."""
    import os
    import resource

    budget = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    budget = int(line.split()[1]) * 1024
    except OSError:
        pass
    if budget is None:
        try:
            budget = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            budget = 2**40
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        budget = min(budget, soft)
    return budget


def check_memory(need: float, what: str) -> None:
    """Raise TooLargeError when `need` bytes exceed the memory budget, with both figures."""
    have = memory_budget()
    if need > have:
        raise TooLargeError(
            f"{what} needs about {need / 2**30:,.1f} GiB of memory, more than the {have / 2**30:,.1f} GiB available; "
            f"use smaller sizes"
        )


# ---- argument types of the Python API: Dyck(length="12") is refused by name, not by a TypeError deep inside ---


NAMES = {numbers.Real: "a number", numbers.Integral: "an integer", bool: "true or false", str: "a string"}


def _wanted(parameter) -> tuple[type, ...] | None:
    """The types a parameter takes, from its annotation (a string under `from __future__ import annotations`)
    or, without one, its default; None when it says nothing checkable."""
    annotation = parameter.annotation
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    parts = {p.strip() for p in text.replace("Optional[", "").rstrip("]").split("|")} if text else set()
    if not parts and parameter.default not in (None, parameter.empty):
        parts = {type(parameter.default).__name__}
    if parts & {"bool"} and not parts - {"bool", "None"}:
        return (bool,)
    if "float" in parts and not parts - {"float", "int", "None"}:
        return (numbers.Real,)
    if "int" in parts and not parts - {"int", "None"}:
        return (numbers.Integral,)
    if "str" in parts and not parts - {"str", "None"}:
        return (str,)
    return None


def checked_arguments(init, int_limit: int | None = None):
    """Wrap a constructor so that an argument of the wrong type (a str for an int, a bool for a count) raises
    InputError naming the class and the parameter, before any work; with `int_limit`, so does an integer
    argument (other than a seed) beyond ±int_limit."""
    import functools
    import inspect

    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError as e:
            raise InputError(f"{type(self).__name__}: {e}") from None
        for name, value in list(bound.arguments.items())[1:]:
            parameter = signature.parameters[name]
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            wanted = _wanted(parameter)
            if wanted is None or (value is None and parameter.default is None):
                continue
            bad = not isinstance(value, wanted) or (isinstance(value, bool) and bool not in wanted)
            if bad or (isinstance(value, float) and value != value):
                names = " or ".join(NAMES.get(t, t.__name__) for t in wanted)
                raise InputError(f"{type(self).__name__}: {name} must be {names}, got {value!r}")
            sized = int_limit is not None and "seed" not in name and isinstance(value, numbers.Integral)
            if sized and not isinstance(value, bool) and abs(value) > int_limit:
                raise TooLargeError(f"{type(self).__name__}: {name}={value:,} is beyond the {int_limit:,} it may be")
        return init(self, *args, **kwargs)

    wrapper.__nextk_checked__ = True
    return wrapper
