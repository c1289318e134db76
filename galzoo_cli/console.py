"""Shared CLI plumbing: the Rich console, friendly errors, progress bars and summary tables."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from galzoo_tf.engine import Engine, EngineSpec, running
from galzoo_tf.errors import BadInputError

console = Console(stderr=True)  # progress, warnings and errors
report = Console()  # results: summary tables
EXIT_BAD_INPUT = 2


def friendly_errors(command: Callable) -> Callable:
    """Turn ``BadInputError`` into one red line on stderr and exit status 2 (no traceback)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except BadInputError as error:
            console.print(f"[bold red]error:[/] {error.message}", soft_wrap=True, highlight=False)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted:[/] finished work is kept; run the same command to resume")
            raise typer.Exit(130) from None

    return wrapper


class RateColumn(ProgressColumn):
    """Items per second, named after what is counted (galaxies/s)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} {self.unit}/s" if speed else f"- {self.unit}/s", style="cyan")


@contextmanager
def counting(description: str, unit: str = "galaxies") -> Iterator[Callable[[int, int], None]]:
    """A progress bar fed by a ``(done, total)`` callback, quiet when stderr is not a terminal."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(unit),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


@contextmanager
def transferring() -> Iterator[Callable[[str, int, int | None], None]]:
    """A progress bar per file for downloads: ``(name, bytes done, bytes total)``."""
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not sys.stderr.isatty()) as progress:
        tasks: dict[str, int] = {}

        def update(name: str, done: int, total: int | None) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(name, total=total)
            progress.update(tasks[name], completed=done, total=total)

        yield update


def table(title: str, columns: list[str], rows: list[list]) -> Table:
    """A plain Rich table; columns of numbers right-aligned, text left-aligned."""
    out = Table(title=title, title_justify="left")
    for index, name in enumerate(columns):
        numeric = bool(rows) and all(isinstance(row[index], int | float) for row in rows)
        out.add_column(name, justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        out.add_row(*[f"{v:,}" if isinstance(v, int) else str(v) for v in row])
    return out


def engine_for(spec: EngineSpec) -> AbstractContextManager[Engine | None]:
    """The engine of ``spec`` started with a spinner on the console (None for the local engine)."""
    return running(spec, console.status)
