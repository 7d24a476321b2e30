"""Errors with messages that name the problem. All are ValueError subclasses (THEORY-independent)."""


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
