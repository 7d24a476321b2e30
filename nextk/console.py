"""One logger and one progress bar for the whole package (rich). Library calls are quiet by default:
they take `log=` (a callable taking a string; `quiet` by default) and `progress=` (False by default)."""

from __future__ import annotations

import contextlib


def quiet(*args, **kwargs) -> None:
    """The default logger of library calls: says nothing."""


def printer(enabled: bool = True):
    """`rich` printing on stderr when enabled, else `quiet`: the logger a command hands to the library (stdout
    holds only results)."""
    if not enabled:
        return quiet
    from rich.console import Console

    return Console(stderr=True).print


class _NoBar:
    def update(self, **kwargs) -> None:
        pass


@contextlib.contextmanager
def progress_bar(label: str, total: int, *, enabled: bool, completed: int = 0, **fields):
    """A rich progress bar named `label` (e.g. the model, "gru-32"); `bar.update(advance=1, loss=…)`.
    Disabled: a no-op with the same interface, so callers never branch."""
    if not enabled:
        yield _NoBar()
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    label_column = TextColumn("{task.fields[label]}", style="bold", markup=False)  # a name from data, not markup
    columns = [label_column, BarColumn(), TextColumn("{task.completed}/{task.total}")]
    columns += [TextColumn(f"{name} {{task.fields[{name}]}}") for name in fields]
    with Progress(*columns, TimeRemainingColumn(), transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total, completed=completed, label=label, **fields)

        class _Bar:
            def update(self, **kwargs) -> None:
                bar.update(task, **kwargs)

        yield _Bar()


def plain(text: str) -> str:
    """A log line as a plain-text file should hold it: rich markup rendered away ("[bold]x[/bold]" → "x",
    an escaped "\\[window = 00]" → "[window = 00]"); a line that is not valid markup is kept as it is."""
    from rich.errors import MarkupError
    from rich.text import Text

    try:
        return Text.from_markup(text).plain
    except MarkupError:
        return text


@contextlib.contextmanager
def working(label: str, *, enabled: bool):
    """A spinner with the seconds elapsed, on stderr, while a long step with no countable parts runs (an exact
    measurement on long documents): the command shows it is alive. Disabled: nothing."""
    if not enabled:
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, transient=True, console=Console(stderr=True)) as bar:
        bar.add_task(label, total=None)  # no total: a spinner and the time elapsed
        yield
