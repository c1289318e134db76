"""Small file helpers with no TensorFlow import: checksums and atomic JSON writes."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so large shards and archives never sit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


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
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_json_atomic(path: Path, payload: Mapping) -> None:
    """Write JSON to a temporary file beside ``path`` and rename it over ``path``."""
    with replaced_atomically(path) as temporary:
        temporary.write_text(json.dumps(payload, indent=1) + "\n")
