"""Partitioned posterior catalogues: one Parquet part per input shard, written by any engine, resumable.

``galzoo predict --out DIR`` (a folder, not a file) writes ``DIR/<shard>.parquet`` for every
record shard of the input (or block of image files), each atomically, and ``DIR/_catalogue.json``
(provenance) once every part is there. A re-run with the same options skips the parts already
written, so a cluster job killed halfway resumes where it stopped. ``--merge FILE`` then streams
the parts, in input order, into one FITS, CSV or Parquet catalogue. Galaxies keep the random
keys (their index in the whole input) they have in a single-process run, so every engine and
every partitioning gives the same numbers.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from galzoo_tf.catalogues.formats import (
    PROVENANCE,
    SETTINGS,
    catalogue_format,
    part_metadata,
    provenance_path,
    write_catalogue,
    write_parquet_part,
)
from galzoo_tf.catalogues.writer import (
    CatalogueKind,
    PredictResult,
    catalogue_settings,
    drain_rows,
    fits_keywords,
    row_count,
)
from galzoo_tf.data.inputs import FolderSource, Partition, RecordSource, partitions
from galzoo_tf.engine import Engine, worker_cache
from galzoo_tf.errors import BadInputError
from galzoo_tf.fileio import changed_keys, read_json, replaced_atomically, write_json_atomic
from galzoo_tf.outputs import remove_written, visible_entries
from galzoo_tf.tasks.registry import load_model, task_of
from galzoo_tf.training.model_dir import SavedModel


@dataclass(frozen=True)
class CatalogueJob:
    """What a worker needs to predict any partition: model directories (paths, not weights), the kind of
    catalogue (a task, or embeddings) and its options."""

    models: tuple[str, ...]
    checksums: tuple[str, ...]
    options: Any  # the kind's catalogue options
    out: str
    kind: CatalogueKind

    def rows_of(self) -> Callable:
        """The batch -> rows function, built once per worker process (models loaded, sampler traced)."""
        return worker_cache(("catalogue sampler", self), self._build)

    def _build(self) -> Callable:
        models = [load_model(path) for path in self.models]
        for model, checksum in zip(models, self.checksums, strict=True):
            if model.checksum() != checksum:
                raise BadInputError("model changed", f"{model.path}: model.keras differs from the one the run "
                                                     "started with; workers must see the same files")
        return self.kind.catalogue_rows(models, self.options, Path(self.out))


def part_path(folder: Path, name: str) -> Path:
    return Path(folder) / f"{name}.parquet"


def predict_part(part: Partition, job: CatalogueJob) -> dict:
    """Worker side: the rows of one partition, written atomically as ``<name>.parquet``; returns its metadata."""
    rows_of = job.rows_of()
    tables = [rows_of(batch) for batch in part.source.batches(job.options.batch_size) if batch.ids]
    columns = drain_rows(tables) if tables else {}
    meta = {"part": part.name, "rows": row_count(columns), "consumed": part.source.total,
            "skipped": dict(part.source.skipped)}
    path = part_path(Path(job.out), part.name)
    with replaced_atomically(path, ".parquet") as temporary:
        write_parquet_part(columns, temporary, meta)
    return meta


def written_parts(folder: Path) -> list[str]:
    """The Parquet parts in ``folder`` that galzoo wrote (their schema carries its metadata); others are left."""
    names = []
    for path in sorted(folder.glob("*.parquet")):
        try:
            part_metadata(path)
        except (OSError, KeyError, TypeError, ValueError):
            continue
        names.append(path.name)
    return names


class PartitionedCatalogue:
    """The folder of parts: refuses to mix runs with different options, knows which parts are written."""

    def __init__(self, folder: Path, settings: dict, overwrite: bool = False) -> None:
        self.folder = Path(folder)
        if self.folder.suffix.lower() in (".fits", ".fit", ".csv", ".parquet") or self.folder.is_file():
            raise BadInputError("bad option", f"{self.folder}: a partitioned catalogue is a folder; give --out DIR")
        saved_path = self.folder / SETTINGS
        if saved_path.is_file():
            changed = changed_keys(read_json(saved_path), settings)
            if changed and not overwrite:
                raise BadInputError("resume mismatch", f"{self.folder}: its parts were written with other "
                                                       f"{', '.join(changed)}; use the same options, a new "
                                                       "--out or --overwrite")
            if changed:
                remove_written(self.folder, [*written_parts(self.folder), SETTINGS, PROVENANCE])
        elif self.folder.is_dir() and visible_entries(self.folder):
            raise BadInputError("output exists", f"{self.folder} is not empty and holds no partitioned "
                                                 "catalogue; choose a new --out")
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(saved_path, settings)

    def written(self, name: str) -> dict | None:
        """The metadata of a finished part, None if it is still to do."""
        path = part_path(self.folder, name)
        return part_metadata(path) if path.is_file() else None


def predict_partitioned(models: list[SavedModel], source: RecordSource | FolderSource, out: Path, options,
                        engine: Engine,
                        overwrite: bool = False, merge: Path | None = None,
                        progress: Callable[[int, int], None] | None = None,
                        kind: CatalogueKind | None = None) -> PredictResult:
    """Predict every partition not yet written on ``engine``, then the provenance and the optional merge.

    ``kind`` makes the rows (default: the models' task, a posterior catalogue)."""
    kind = kind or task_of(models)
    if merge is not None:
        catalogue_format(merge)
    started = time.perf_counter()
    settings = catalogue_settings([m.checksum() for m in models], source, options)
    dataset = PartitionedCatalogue(out, settings, overwrite)
    names = source.partitions()
    parts = {name: dataset.written(name) for name in names}
    done = sum(p["consumed"] for p in parts.values() if p)
    job = CatalogueJob(tuple(str(m.path.resolve()) for m in models), tuple(settings["models"]), options,
                       str(Path(out).resolve()), kind)
    todo = [part for part in partitions(source) if parts[part.name] is None]
    for part, meta in engine.run(predict_part, todo, job):
        parts[part.name] = meta
        done += meta["consumed"]
        if progress:
            progress(done, source.total)
    skipped = sum((Counter(p["skipped"]) for p in parts.values()), Counter())
    source.skipped.update(skipped)
    provenance_of = kind.catalogue_provenance(models, source, options)
    provenance = {**provenance_of(sum(p["rows"] for p in parts.values())),
                  "parts": [part_path(Path(out), name).name for name in names]}
    write_json_atomic(Path(out) / PROVENANCE, provenance)
    if merge is not None:
        merge_parts(Path(out), merge, provenance)
    return PredictResult(Path(out), provenance["rows"], dict(skipped), time.perf_counter() - started)


def merge_parts(folder: Path, merge: Path, provenance: dict) -> Path:
    """The parts of a finished partitioned catalogue in one file (streamed part by part, written atomically)."""
    parts = [folder / name for name in provenance["parts"] if part_metadata(folder / name)["rows"]]
    if not parts:
        raise BadInputError("no galaxies", f"{folder}: no galaxy was predicted, nothing to merge")
    with replaced_atomically(merge, merge.suffix) as temporary:
        write_catalogue(parts, temporary, fits_keywords(provenance))
    write_json_atomic(provenance_path(merge), provenance)
    return merge
