"""Shared CLI plumbing: the Rich console, friendly errors, progress bars and summary tables."""

from __future__ import annotations

import functools
import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import typer
from rich.console import Console
from rich.markup import escape
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
from galzoo_tf.signals import Terminated, terminate_as_interrupt

console = Console(stderr=True)  # progress, warnings and errors
report = Console()  # results: summary tables
EXIT_BAD_INPUT = 2


class _QuietImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports TensorFlow with file descriptor 2 sent to /dev/null: TensorFlow 2.21 prints its oneDNN, CUDA and
    absl lines while loading its C++ library whatever TF_CPP_MIN_LOG_LEVEL says (tensorflow#100442)."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: the real finder does the finding
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            self.loader, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all: nothing to keep quiet
            self.loader.exec_module(module)
            return
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                self.loader.exec_module(module)
            except BaseException:  # TensorFlow failed to load: what it printed is the diagnosis, show it
                os.dup2(saved, 2)
                captured.seek(0)
                sys.stderr.write(captured.read().decode(errors="replace"))
                raise
            finally:
                os.dup2(saved, 2)
                os.close(saved)


def quiet_start(verbose: bool) -> None:
    """Keep TensorFlow's start-up lines (oneDNN, CUDA, absl) and library warnings off the terminal unless
    ``--verbose``, so that a user's error is the only line on stderr. Runs before TensorFlow is imported."""
    os.environ["GALZOO_VERBOSE"] = "1" if verbose else ""
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())
    for name in ("tensorflow", "absl", "keras", "tf_keras"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"(tensorflow|keras|tf_keras|absl|tensorflow_probability|dask|"
                                             r"distributed)(\.|$)")


def warn(message: str) -> None:
    """One warning line; the message is shown as written (a path's brackets are not Rich markup)."""
    console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True, highlight=False)


def _error(message: str, code: int) -> typer.Exit:
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    return typer.Exit(code)


def friendly_errors(command: Callable) -> Callable:
    """One line on stderr for every failure, no traceback: bad input (exit 2), a file the system cannot read
    or write (2), SIGTERM or Ctrl-C (143, 130: finished work is kept), and any other error (1, with the
    traceback under ``--verbose``)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            with terminate_as_interrupt():
                return command(*args, **kwargs)
        except BadInputError as error:
            raise _error(error.message, EXIT_BAD_INPUT) from None
        except KeyboardInterrupt as stop:
            signal_name = "SIGTERM" if isinstance(stop, Terminated) else "interrupted"
            console.print(f"[yellow]{signal_name}:[/] stopped; finished work is kept, run the same command to "
                          "resume")
            raise typer.Exit(143 if isinstance(stop, Terminated) else 130) from None
        except OSError as error:
            if os.environ.get("GALZOO_VERBOSE"):
                raise
            where = f"{error.filename}: " if error.filename else ""
            raise _error(f"{where}{error.strerror or error}", EXIT_BAD_INPUT) from None
        except Exception as error:  # a bug: still one line, the traceback on request
            if os.environ.get("GALZOO_VERBOSE"):
                raise
            raise _error(f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''} (galzoo "
                         "stopped on an unexpected error; run again with `galzoo --verbose ...` for the traceback, "
                         "and report it)", 1) from None

    return wrapper


class RateColumn(ProgressColumn):
    """Items per second, named after what each bar counts (galaxies/s)."""

    def render(self, task) -> Text:
        speed, unit = task.finished_speed or task.speed, task.fields["unit"]
        return Text(f"{speed:,.0f} {unit}/s" if speed else f"- {unit}/s", style="cyan")


@contextmanager
def counting_stages(*stages: tuple[str, str]) -> Iterator[list[Callable[[int, int], None]]]:
    """One progress bar per (description, unit) stage, each fed by its own ``(done, total)`` callback; quiet
    when stderr is not a terminal."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not sys.stderr.isatty()) as progress:
        updates = []
        for description, unit in stages:
            task = progress.add_task(description, total=None, start=False, unit=unit)

            def update(done: int, total: int, task: int = task) -> None:
                progress.start_task(task)
                progress.update(task, completed=done, total=total)

            updates.append(update)
        yield updates


@contextmanager
def counting(description: str, unit: str = "galaxies") -> Iterator[Callable[[int, int], None]]:
    """A progress bar fed by a ``(done, total)`` callback, quiet when stderr is not a terminal."""
    with counting_stages((description, unit)) as (update,):
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
