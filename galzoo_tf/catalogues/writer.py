"""The streaming catalogue writer every task shares: rows flushed in parts, resumable, with provenance.

A task supplies the rows of a batch and the provenance of the finished catalogue; the
writer streams the source, flushes rows to disk in parts (so memory is bounded by the
batch and an interrupted run resumes), and writes the catalogue and its JSON atomically.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from galzoo_tf import __version__
from galzoo_tf.catalogues.formats import PartialCatalogue, catalogue_format, provenance_path
from galzoo_tf.data.inputs import Batch, FolderSource, RecordSource
from galzoo_tf.fileio import write_json_atomic


class CatalogueKind(Protocol):
    """What makes a catalogue's rows and provenance from loaded models: a task (posteriors) or embeddings."""

    def catalogue_rows(self, models: Sequence, options: Any, out: Path) -> Callable[[Batch], dict[str, np.ndarray]]:
        ...

    def catalogue_provenance(self, models: Sequence, source: RecordSource | FolderSource,
                             options: Any) -> Callable[[int], dict]: ...


@dataclass(frozen=True)
class PredictResult:
    path: Path
    rows: int
    skipped: dict
    seconds: float
    samples_per_galaxy: int = 0  # posterior samples behind each row (passes x models)

    @property
    def galaxies_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else float("nan")


def catalogue_settings(checksums: list[str], source: RecordSource | FolderSource, options) -> dict:
    """What must match for a run to resume: every option that shapes a number, the models and the input."""
    ignored = ("batch_size", "part_rows", "corner_ids")
    chosen = {k: v for k, v in asdict(options).items() if k not in ignored}
    return {**chosen, "models": checksums, "input": source.identity()}


def row_count(columns: dict[str, np.ndarray]) -> int:
    """Rows of a batch of catalogue columns (every column has one value per galaxy; none: 0)."""
    return len(next(iter(columns.values()), ()))


def drain_rows(rows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The batches' rows joined column by column; the list is emptied (it is the pending buffer)."""
    joined = {name: np.concatenate([r[name] for r in rows]) for name in rows[0]}
    rows.clear()
    return joined


def stream_catalogue(source: RecordSource | FolderSource, out: Path, settings: dict, options,
                     columns_of: Callable[[Batch], dict[str, np.ndarray]], provenance_of: Callable[[int], dict],
                     resume: bool, overwrite: bool, progress: Callable[[int, int], None] | None) -> PredictResult:
    """Rows of every batch of ``source``, flushed in parts of ``options.part_rows`` (resumable), then the
    catalogue and its provenance JSON, both written atomically."""
    catalogue_format(out)
    partial = PartialCatalogue(out, settings, resume, overwrite)
    started, done, pending, pending_consumed = time.perf_counter(), partial.consumed, [], 0
    for batch in source.batches(options.batch_size, skip=partial.consumed):
        if batch.ids:
            pending.append(columns_of(batch))
        pending_consumed += batch.consumed
        done += batch.consumed
        if pending and sum(row_count(p) for p in pending) >= options.part_rows:
            partial.add(drain_rows(pending), pending_consumed)
            pending_consumed = 0
        if progress:
            progress(done, source.total)
    if pending:
        partial.add(drain_rows(pending), pending_consumed)
    seconds = time.perf_counter() - started
    provenance = provenance_of(partial.rows)
    partial.finish(fits_keywords(provenance))
    write_json_atomic(provenance_path(out), provenance)
    return PredictResult(out, provenance["rows"], dict(source.skipped), seconds)


def catalogue_provenance(source: RecordSource | FolderSource, options, rows: int, models: list[dict],
                         columns: dict[str, str], task: str | None = None, **settings) -> dict:
    """A catalogue's sidecar: version, seed, rows, options and task settings, models and input, columns."""
    return {"galzoo_version": __version__, **({"task": task} if task else {}), "seed": options.seed, "rows": rows,
            "skipped": dict(source.skipped), "options": asdict(options), **settings, "models": models,
            "input": source.describe(), "columns": columns}


def fits_keywords(provenance: dict) -> dict:
    """The provenance that fits in FITS keywords (the rest is in the JSON beside the catalogue)."""
    inputs = provenance["input"]
    return {"GZVERSN": provenance["galzoo_version"], "GZSEED": provenance["seed"],
            "GZPASSES": provenance["options"].get("passes", 1), "GZTTA": provenance["options"].get("tta", False),
            "GZMODEL": provenance["models"][0]["sha256"], "GZINPUT": inputs.get("fingerprint") or inputs["sha256"]}
