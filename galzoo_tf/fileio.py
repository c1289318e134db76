"""Small file helpers with no TensorFlow import: checksums, JSON read with a clear error, atomic writes."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from galzoo_tf.errors import BadInputError

TEMPORARY = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)@(?P<host>[\w-]+)\.tmp")  # replaced_atomically's names


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so large shards and archives never sit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: str | Path) -> dict:
    """A JSON object galzoo wrote; one clear error if it is missing, truncated or edited into something else."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInputError("missing file", f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInputError("unreadable file", f"{path}: not valid JSON ({exc}); the file is truncated or "
                                               "damaged") from None
    if not isinstance(payload, dict):
        raise BadInputError("unreadable file", f"{path}: holds a JSON {type(payload).__name__}, not the object "
                                               "galzoo writes")
    return payload


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine with ``pid`` is running (a temporary names the process writing it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def host_tag() -> str:
    """This machine's name as it appears in temporaries' names (so one host never sweeps another's)."""
    return re.sub(r"[^\w-]", "-", socket.gethostname()) or "host"


def remove_stale_temporaries(folder: Path, target: str | None = None) -> int:
    """Delete the temporaries of writers of this host that died (``.NAME.PID@HOST.tmp*``, PID gone), only those
    of the file ``target`` if given; returns how many. A killed run leaves them; the next run sweeps."""
    removed = 0
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = TEMPORARY.match(entry.name)
        if (match and target in (None, match["target"]) and match["host"] == host_tag()
                and not pid_alive(int(match["pid"])) and entry.is_file()):
            entry.unlink(missing_ok=True)
            removed += 1
    return removed


_VERIFIED: set[tuple] = set()  # (real path, size, mtime, ctime, inode, sha256) found intact by this process


def cache_folder() -> Path:
    """Where galzoo keeps what it can recompute (``GALZOO_CACHE``, else ~/.cache/galzoo)."""
    return Path(os.environ.get("GALZOO_CACHE") or Path.home() / ".cache" / "galzoo")


def _verdict_key(path: Path, sha256: str) -> tuple:
    stat = path.stat()
    return (os.path.realpath(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, sha256)


def _read_verdicts(cache: Path) -> dict:
    try:
        verdicts = json.loads(cache.read_text())
    except (OSError, ValueError):
        return {}
    return verdicts if isinstance(verdicts, dict) else {}


def corrupt_files(expected: Mapping[Path, str]) -> list[Path]:
    """The files whose sha256 is not the one given; each is hashed once per size, mtime, ctime and inode.

    A file found intact is remembered by this process and in ``cache_folder()/verified.json`` (by
    path, size, mtime, ctime and inode: a rewrite, copy or touch changes one), so repeated runs on
    the same records do not re-read them. A cache that cannot be written is simply not kept.
    """
    cache = cache_folder() / "verified.json"
    verdicts = _read_verdicts(cache)
    corrupt, learned = [], False
    for path, sha256 in expected.items():
        key = _verdict_key(path, sha256)
        if key in _VERIFIED or verdicts.get(key[0]) == list(key[1:]):
            _VERIFIED.add(key)
            continue
        if sha256_file(path) != sha256:
            corrupt.append(path)
            continue
        _VERIFIED.add(key)
        verdicts[key[0]] = list(key[1:])
        learned = True
    if learned:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(cache, verdicts)
        except OSError:
            pass
    return corrupt


def changed_keys(saved: Mapping, wanted: Mapping) -> list[str]:
    """Keys whose values differ between a saved run's settings and a new request (for resume errors)."""
    return sorted(k for k in {*saved, *wanted} if saved.get(k) != wanted.get(k))


def nan_to_null(payload: object) -> object:
    """The payload with every non-finite float as None: strict JSON (null) for an undefined statistic."""
    if isinstance(payload, float):
        return payload if math.isfinite(payload) else None
    if isinstance(payload, Mapping):
        return {key: nan_to_null(value) for key, value in payload.items()}
    if isinstance(payload, list | tuple):
        return [nan_to_null(value) for value in payload]
    return payload


@contextmanager
def replaced_atomically(path: Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` to write; renamed over ``path`` if the block succeeds, removed if not.

    Readers never see a half-written file. ``suffix`` keeps writers that infer the format from the
    name happy (``.png``, ``.keras``, ``.weights.h5``).
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}@{host_tag()}.tmp{suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_json_atomic(path: Path, payload: Mapping) -> None:
    """Write JSON to a temporary file beside ``path`` and rename it over ``path``."""
    with replaced_atomically(path) as temporary:
        temporary.write_text(json.dumps(payload, indent=1) + "\n")
