"""What galzoo promises about the places it writes: never over an input, only where it can write, one run at a time.

Every command's library entry point opens its outputs with ``writing``: before any expensive
work it refuses an output that is (or holds) one of the command's inputs, an output path of
the wrong kind (a folder where a file is wanted, a file where a folder is), a folder of
someone else's files, and a place that cannot be written (missing parent folders are
created, as ``mkdir -p`` would). Then it takes a lock beside each output (``.NAME.lock``, an
flock naming the owner's pid and host) so that a second run on the same output refuses
clearly, marks a folder output as galzoo's, and sweeps the temporaries a killed run left
there. The kernel frees the lock of a run that died. No TensorFlow here.
"""

from __future__ import annotations

import fcntl
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

from galzoo_tf import __version__
from galzoo_tf.errors import BadInputError
from galzoo_tf.fileio import remove_stale_temporaries, write_json_atomic

OUTPUT_IS_INPUT = "output is an input"
CANNOT_WRITE = "cannot write"
LOCKED = "output locked"
OWNED = ".galzoo"  # written first in every folder galzoo writes: an interrupted run's folder is still its own
LOCK_POLL_SECONDS = 0.2
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


def visible_entries(folder: Path) -> list[str]:
    """The names in ``folder`` a user sees (hidden ones, such as galzoo's locks and marks, do not count)."""
    return sorted(entry.name for entry in folder.iterdir() if not entry.name.startswith("."))


def _refuse_foreign_folder(output: Output) -> None:
    """A non-empty folder with none of galzoo's marker files holds someone's files: never write among them."""
    if not output.path.is_dir() or any((output.path / name).exists() for name in (OWNED, *output.markers)):
        return
    visible = visible_entries(output.path)
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
        for place in {_real(_existing_ancestor(path)), _existing_ancestor(_real(path).parent)}:  # and its lock's
            probe_writable(place)
        return
    for target in (path, *output.also):
        if target.is_dir():
            raise BadInputError(CANNOT_WRITE, f"{output.option} {target} is a folder; give a file name")
    probe_writable(_existing_ancestor(path.parent))  # missing folders above a file are created, as for folders


class OutputLock:
    """``.NAME.lock`` beside an output while a run writes it, held with ``flock`` and naming its owner.

    The kernel releases an flock when its process dies, however it dies, so a lock left by a killed
    run is simply free: no guessing from pids, and no race between two runs taking over the same
    stale lock. The file is removed while still held, and a run that locked a file someone had just
    removed tries again. ``wait`` seconds: how long to wait for a live owner before refusing.
    """

    def __init__(self, output: Output, wait: float = 0.0) -> None:
        self.output = output
        self.wait = wait
        real = _real(output.path)
        self.path = real.with_name(f".{real.name}.lock")
        self.handle: int | None = None

    def _try_lock(self) -> bool:
        """Open and flock the lock file; True once this process holds the file that is at the path now."""
        handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            return False
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            current = None
        opened = os.fstat(handle)
        if current is None or (current.st_ino, current.st_dev) != (opened.st_ino, opened.st_dev):
            os.close(handle)  # the previous owner removed it between our open and our lock: try again
            return self._try_lock()
        self.handle = handle
        return True

    def _write_owner(self) -> None:
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                 "command": " ".join(sys.argv)}
        os.ftruncate(self.handle, 0)
        os.pwrite(self.handle, (json.dumps(owner) + "\n").encode(), 0)

    def _owner(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}  # the owner is still writing its name, or has just left

    def _refuse(self) -> None:
        owner = self._owner()
        raise BadInputError(LOCKED, f"{self.output.path} is being written by another galzoo run (pid "
                                    f"{owner.get('pid', '?')} on {owner.get('host', '?')}, since "
                                    f"{owner.get('started', '?')}); wait for it to end or give another "
                                    f"{self.output.option}")

    def _acquire(self) -> None:
        deadline = time.monotonic() + self.wait
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            while not self._try_lock():
                if time.monotonic() >= deadline:
                    self._refuse()
                time.sleep(LOCK_POLL_SECONDS)
            self._write_owner()
        except OSError as exc:
            raise BadInputError(CANNOT_WRITE, f"cannot write the lock {self.path}: {exc.strerror or exc}") from None

    def __enter__(self) -> OutputLock:
        if self.path in _HELD:
            _HELD[self.path] += 1
            return self
        self._acquire()
        _HELD[self.path] = 1
        try:
            self._claim()
        except BaseException:
            self._release()
            raise
        return self

    def _claim(self) -> None:
        """Mark a folder output as galzoo's before writing in it, and sweep what killed runs left."""
        if self.output.folder:
            self.output.path.mkdir(parents=True, exist_ok=True)
            owned = self.output.path / OWNED
            if not owned.exists():
                write_json_atomic(owned, {"written_by": "galzoo", "galzoo_version": __version__})
            remove_stale_temporaries(self.output.path)
        for target in (self.output.path, *self.output.also):
            remove_stale_temporaries(target.parent, target=target.name)

    def _release(self) -> None:
        del _HELD[self.path]
        self.path.unlink(missing_ok=True)  # while still held: see _try_lock
        os.close(self.handle)
        self.handle = None

    def __exit__(self, *exc) -> None:
        _HELD[self.path] -= 1
        if not _HELD[self.path]:  # only the outermost use holds the file
            self._release()


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
    """``--overwrite``: delete only the files galzoo listed as its own in ``folder`` (never a user's file beside).

    A name is a plain file name: one that reaches outside ``folder`` (a separator, ``..``) is refused.
    """
    for name in names:
        if Path(name).name != name or name in ("", ".", ".."):
            raise BadInputError(OUTPUT_IS_INPUT, f"{folder}: refusing to delete {name!r}, which is not a file "
                                                 "galzoo wrote in this folder")
        path = folder / name
        if path.is_file() or path.is_symlink():
            path.unlink()
