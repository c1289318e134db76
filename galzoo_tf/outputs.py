"""What galzoo promises about the places it writes: never over an input, only where it can write, one run at a time.

Every command's library entry point opens its outputs with ``writing``: before any expensive
work it refuses an output that is (or holds) one of the command's inputs, an output path of
the wrong kind (a folder where a file is wanted, a file where a folder is), a folder of
someone else's files, and a place that cannot be written (missing parent folders are
created, as ``mkdir -p`` would). Then it takes a lock beside each output (``.NAME.lock``,
holding the owner's pid and host) so that a second run on the same output refuses clearly,
and sweeps the temporaries a killed run left there. A lock whose process is gone is stale
and taken over. No TensorFlow here.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from galzoo_tf.errors import BadInputError
from galzoo_tf.fileio import pid_alive, read_json, remove_stale_temporaries

OUTPUT_IS_INPUT = "output is an input"
CANNOT_WRITE = "cannot write"
LOCKED = "output locked"
_HELD: dict[Path, int] = {}  # locks this process holds, with their depth (a library call inside another)

Inputs = Iterable[tuple[str, "str | Path | None"]]


@dataclass(frozen=True)
class Output:
    """One place a command writes: a file or a folder, the files that mark a folder as galzoo's, the option's name.

    ``also``: files written beside the main one (a montage, a provenance JSON), checked against the
    inputs too and covered by the same lock.
    """

    path: Path
    folder: bool = False
    markers: tuple[str, ...] = ()
    option: str = "--out"
    also: tuple[Path, ...] = ()

    @classmethod
    def file(cls, path: str | Path, option: str = "--out", also: Sequence[str | Path] = ()) -> Output:
        return cls(Path(path), option=option, also=tuple(Path(p) for p in also))

    @classmethod
    def directory(cls, path: str | Path, markers: Sequence[str] = (), option: str = "--out") -> Output:
        return cls(Path(path), folder=True, markers=tuple(markers), option=option)


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(path))


def refuse_inputs(output: Output, inputs: Sequence[tuple[str, Path]]) -> None:
    """An output that is one of the inputs, or a folder holding one, is refused before anything is written."""
    for target in (output.path, *output.also):
        written = _real(target)
        for name, given in inputs:
            source = _real(given)
            if source == written or written in source.parents:
                relation = "is" if source == written else "contains"
                raise BadInputError(OUTPUT_IS_INPUT, f"{output.option} {target} {relation} the {name} {given}; "
                                                     f"galzoo never writes over its inputs: choose another "
                                                     f"{output.option}")


def probe_writable(folder: Path) -> None:
    """Write and remove one byte in ``folder``: a read-only, full or forbidden place fails here, not hours later."""
    try:
        handle, name = tempfile.mkstemp(prefix=".galzoo-probe-", dir=folder)
        try:
            os.write(handle, b"\0")
            os.fsync(handle)
        finally:
            os.close(handle)
            os.unlink(name)
    except OSError as exc:
        raise BadInputError(CANNOT_WRITE, f"cannot write in {folder}: {exc.strerror or exc}") from None


def _existing_ancestor(path: Path) -> Path:
    """The nearest folder that exists at or above ``path`` (where a new folder output would be created)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise BadInputError(CANNOT_WRITE, f"cannot create {path}: {candidate} is a file, not a folder")
            return candidate
    return Path.cwd()


def _refuse_foreign_folder(output: Output) -> None:
    """A non-empty folder with none of galzoo's marker files holds someone's files: never write among them."""
    if not output.path.is_dir() or any((output.path / name).exists() for name in output.markers):
        return
    visible = sorted(entry.name for entry in output.path.iterdir() if not entry.name.startswith("."))
    if visible:
        raise BadInputError(OUTPUT_IS_INPUT, f"{output.option} {output.path} holds files galzoo did not write "
                                             f"(e.g. {visible[0]}); choose a new or empty folder")


def check_place(output: Output) -> None:
    """The output has the right kind and can be written: one line now rather than a traceback after the work."""
    path = output.path
    if output.folder:
        if path.exists() and not path.is_dir():
            raise BadInputError(CANNOT_WRITE, f"{output.option} {path} is a file; give a folder")
        _refuse_foreign_folder(output)
        probe_writable(_existing_ancestor(path))
        return
    for target in (path, *output.also):
        if target.is_dir():
            raise BadInputError(CANNOT_WRITE, f"{output.option} {target} is a folder; give a file name")
    probe_writable(_existing_ancestor(path.parent))  # missing folders above a file are created, as for folders


class OutputLock:
    """``.NAME.lock`` beside an output while a run writes it: the pid and host of the owner, taken over when stale."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self.path = output.path.with_name(f".{output.path.name}.lock")
        self.key = _real(self.path)

    def _owner(self) -> dict | None:
        try:
            return read_json(self.path)
        except BadInputError:
            return None  # gone meanwhile, or not a lock we wrote: treat as stale

    def _stale(self, owner: dict | None) -> bool:
        if owner is None:
            return True
        return owner.get("host") == socket.gethostname() and not pid_alive(int(owner.get("pid", -1)))

    def _create(self) -> bool:
        """Write the owner to a temporary and hard-link it as the lock: atomic, and never half-written."""
        owner = {"pid": os.getpid(), "host": socket.gethostname(),
                 "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.new")
        temporary.write_text(json.dumps(owner) + "\n")
        try:
            os.link(temporary, self.path)
            return True
        except FileExistsError:
            return False
        finally:
            temporary.unlink(missing_ok=True)

    def __enter__(self) -> OutputLock:
        if self.key in _HELD:
            _HELD[self.key] += 1
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._create():
                break
            owner = self._owner()
            if not self._stale(owner):
                raise BadInputError(LOCKED, f"{self.output.path} is being written by another galzoo run (pid "
                                            f"{owner.get('pid')} on {owner.get('host')}, since "
                                            f"{owner.get('started')}); wait for it to end or give another "
                                            f"{self.output.option} (if no such run is alive, delete {self.path})")
            self.path.unlink(missing_ok=True)
        else:
            raise BadInputError(LOCKED, f"{self.output.path}: could not take the lock {self.path}")
        _HELD[self.key] = 1
        self._sweep()
        return self

    def _sweep(self) -> None:
        """Temporaries of a killed run on this output: beside it, and inside it for a folder."""
        for target in (self.output.path, *self.output.also):
            remove_stale_temporaries(target.parent, prefix=target.name)
        if self.output.folder:
            remove_stale_temporaries(self.output.path)

    def __exit__(self, *exc) -> None:
        _HELD[self.key] -= 1
        if _HELD[self.key]:
            return
        del _HELD[self.key]
        owner = self._owner()
        if owner is not None and owner.get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)


@contextmanager
def writing(outputs: Sequence[Output], inputs: Inputs = ()) -> Iterator[None]:
    """Check every output against the inputs and the file system, then hold their locks while the block runs."""
    given = [(name, Path(path)) for name, path in inputs if path is not None]
    for output in outputs:
        refuse_inputs(output, given)
        check_place(output)
    with ExitStack() as stack:
        for output in outputs:
            stack.enter_context(OutputLock(output))
        yield


def remove_written(folder: Path, names: Iterable[str]) -> None:
    """``--overwrite``: delete only the files galzoo listed as its own in ``folder`` (never a user's file beside)."""
    for name in names:
        path = folder / name
        if path.is_file() or path.is_symlink():
            path.unlink()
