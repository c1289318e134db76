"""Turn a validated catalogue of galaxies into sharded TFRecords plus ``manifest.json``.

Sources (``galzoo_tf.data.sources``) produce a ``Catalogue``: one row per galaxy with an image
path, vote counts and optional float features. This module assigns splits with a seed,
plans shards deterministically, decodes images in worker processes, and writes each
shard atomically. A state file records finished shards, so an interrupted run resumes
and ends with the same bytes as an uninterrupted one; re-running a finished prepare is
a no-op. ``prepare_gz2``, ``prepare_kaggle``, ``prepare_folder``, ``prepare_fits`` and
``prepare_synthetic`` are the five `galzoo prepare` commands whole: read the source with its defaults, then write.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from galzoo_tf import __version__, errors
from galzoo_tf.data import images
from galzoo_tf.data.labels import parse_min_votes
from galzoo_tf.data.layout import ENCODINGS, FORMAT, MANIFEST, SHARD_NAME, SPLITS, STATE, ImageSpec, shard_name
from galzoo_tf.data.sources.download import ByteProgress, download_gz2
from galzoo_tf.data.sources.fits_table import load_fits_parameters, native_side
from galzoo_tf.data.sources.folder import load_folder
from galzoo_tf.data.sources.gz2 import gz2_min_votes, load_gz2
from galzoo_tf.data.sources.kaggle import load_kaggle
from galzoo_tf.data.sources.table import Catalogue
from galzoo_tf.engine import Engine
from galzoo_tf.errors import BadInputError
from galzoo_tf.fileio import corrupt_files, read_json, write_json_atomic
from galzoo_tf.kaggle import KAGGLE_TREE
from galzoo_tf.kaggle import TOLERANCE as KAGGLE_TOLERANCE
from galzoo_tf.outputs import Output, remove_written, writing
from galzoo_tf.plots import record_montage
from galzoo_tf.schema import binary_schema, load_schema, manifest_tree
from galzoo_tf.signals import die_with_parent

CHUNK = 16  # images per worker task: large enough to amortise IPC, small for a smooth progress bar
MONTAGE = "montage.png"  # sample galaxies beside simulated records

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class PrepareOptions:
    """Choices that shape the records; all but ``skip_bad`` enter the fingerprint.

    ``skip_bad`` changes no finished shard (a run without it stops at the first bad image),
    so a run that stopped can be resumed with ``--skip-bad``. ``size`` None (``prepare_fits``,
    ``prepare_synthetic``): the source's own side.
    """

    size: int | None = 256
    shard_size: int = 1000
    seed: int = 0
    test_size: float = 2500
    val_fraction: float = 0.1
    encoding: str = "raw"
    skip_bad: bool = False


@dataclass
class PrepareSummary:
    """What a prepare did, for the CLI's summary table."""

    out: Path
    splits: dict[str, int]
    cuts: list[tuple[str, int]]
    skipped: Counter
    shards_written: int
    shards_reused: int
    seconds: float
    up_to_date: bool = False
    size: int = 0  # side in pixels of the stored images
    montage: Path | None = None  # sample galaxies beside the records (prepare_synthetic)
    blank_images: int = 0  # written, but every pixel 0: worth a warning


def _records():
    """galzoo_tf.data.records, imported when records are written: reading and checking a catalogue (and
    every bad-input error it finds) stays free of TensorFlow's start-up."""
    from galzoo_tf.data import records

    return records


def assign_splits(n: int, seed: int, test_size: float, val_fraction: float) -> np.ndarray:
    """Split names for n galaxies: a seeded permutation, test first, then val, the rest train."""
    if n == 0:
        raise BadInputError(errors.EMPTY_INPUT, "no galaxies left to write after the cuts")
    n_test = int(round(test_size * n)) if 0 < test_size < 1 else int(test_size)
    if n_test < 0 or n_test >= n:
        raise BadInputError("bad option", f"a test split of {n_test} galaxies needs more than the {n} galaxies "
                                          "left after cuts; pass --test-size as a count or a fraction (e.g. 0.2)")
    if not 0 <= val_fraction < 1:
        raise BadInputError("bad option", f"--val-fraction {val_fraction} must be in [0, 1)")
    n_val = int(round(val_fraction * (n - n_test)))
    order = np.random.default_rng(seed).permutation(n)
    splits = np.empty(n, dtype=object)
    splits[order[:n_test]] = "test"
    splits[order[n_test:n_test + n_val]] = "val"
    splits[order[n_test + n_val:]] = "train"
    return splits


def plan_shards(table: pd.DataFrame, seed: int, shard_size: int) -> list[tuple[str, np.ndarray]]:
    """(shard file name, row positions) for every shard; rows shuffled with the seed inside each split."""
    if shard_size < 1:
        raise BadInputError("bad option", "--shard-size must be at least 1")
    order = np.random.default_rng(seed + 1).permutation(len(table))
    split_of = table["split"].to_numpy()[order]
    plan = []
    for split in SPLITS:
        rows = order[split_of == split]
        total = -(-len(rows) // shard_size)
        plan += [(shard_name(split, i, total), rows[i * shard_size:(i + 1) * shard_size])
                 for i in range(total)]
    return plan


def image_spec(catalogue: Catalogue, options: PrepareOptions) -> ImageSpec:
    """Shape and dtype of the records: the source's own, else uint8 RGB for JPEG/PNG, float32 planes for FITS."""
    if catalogue.image_spec is not None:
        return catalogue.image_spec
    paths = catalogue.table["path"]
    fits = paths.map(images.is_fits)
    if fits.any() and not fits.all():
        raise BadInputError(errors.BAD_IMAGE_SHAPE, "the images mix FITS with JPEG/PNG; prepare them separately")
    if not fits.any():
        return ImageSpec((options.size, options.size, 3), "uint8", options.encoding)
    if options.encoding != "raw":
        raise BadInputError("bad option", "FITS images are stored as raw float32; use --encoding raw")
    first_error = None
    for path in paths:  # the first readable image gives the number of planes
        try:
            return ImageSpec(images.load_image(path, options.size).shape, "float32", "raw")
        except BadInputError as error:
            if not options.skip_bad:
                raise
            first_error = first_error or error
    raise first_error or BadInputError(errors.EMPTY_INPUT, "no galaxies to write")


class _InProcess(Executor):
    """Executor that runs tasks in the calling process (``--workers 0``: simplest, for debugging)."""

    def submit(self, fn, /, *args, **kwargs):
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # surfaced by future.result(), as a pool would
            future.set_exception(exc)
        return future


def bounded_map(executor: Executor, fn: Callable, items: Iterable, window: int) -> Iterator:
    """Like ``executor.map`` but with at most ``window`` tasks in flight, so memory stays bounded."""
    pending: deque = deque()
    for item in items:
        pending.append(executor.submit(fn, *item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def fingerprint(catalogue: Catalogue, options: PrepareOptions) -> str:
    """Hash of everything that decides the records' bytes: table content, schema and options."""
    digest = hashlib.sha256()
    shaping = {k: v for k, v in asdict(options).items() if k != "skip_bad"}
    digest.update(json.dumps([FORMAT, catalogue.schema.name, shaping], sort_keys=True).encode())
    table = catalogue.table.drop(columns=["row"], errors="ignore")  # where a galaxy was, for messages only
    digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class _Columns:
    """The catalogue as plain arrays, extracted once for all shards."""

    ids: np.ndarray
    splits: np.ndarray
    ints: np.ndarray
    floats: np.ndarray
    int_names: list[str]
    float_names: list[str]
    rows: np.ndarray  # 1-based data rows of the catalogue file (0: none, e.g. simulated galaxies)
    label: str  # the catalogue file's name, as its own checks name it

    @classmethod
    def of(cls, catalogue: Catalogue) -> _Columns:
        table = catalogue.table
        rows = table["row"].to_numpy(dtype=np.int64) if "row" in table else np.zeros(len(table), np.int64)
        return cls(table["id"].astype(str).to_numpy(), table["split"].astype(str).to_numpy(),
                   table[catalogue.int_features].to_numpy(dtype=np.int64),
                   table[catalogue.float_features].to_numpy(dtype=np.float64),
                   catalogue.int_features, catalogue.float_features, rows, catalogue.label)

    def where(self, position: int) -> str:
        """A galaxy as messages name it: its catalogue row and id, as the catalogue checks do."""
        if self.rows[position]:
            return f"{self.label}: row {self.rows[position]} (id {self.ids[position]})"
        return f"galaxy {self.ids[position]}"


def is_blank(image: bytes) -> bool:
    """A raw image whose every byte is 0 (an empty cutout: all-zero FITS or black JPEG)."""
    return image.count(0) == len(image)


def _examples(columns: _Columns, rows: np.ndarray, loaded: Iterator[list], skipped: Counter,
              skip_bad: bool, on_image: Callable[[], None]) -> Iterator[bytes]:
    """Serialised records of one shard, pulling decoded images in order from the workers; blank images are
    counted in ``skipped["blank"]`` (kept: a warning, not a refusal)."""
    position = 0
    while position < len(rows):
        for image in next(loaded):
            row = rows[position]
            position += 1
            on_image()
            if isinstance(image, BadInputError):
                if not skip_bad:
                    raise BadInputError(image.reason, f"{columns.where(row)}: {image.message}")
                skipped[image.reason] += 1
                continue
            if is_blank(image):
                skipped["blank"] += 1
            yield _records().encode_example(
                columns.ids[row], image, dict(zip(columns.int_names, columns.ints[row], strict=True)),
                dict(zip(columns.float_names, columns.floats[row], strict=True)), columns.splits[row])


def _held(path: Path, overwrite: bool) -> dict | None:
    """A state file or manifest of an earlier prepare; a damaged one is an error, unless it is to be replaced
    (then every file named as prepare names its shards is taken as the earlier run's)."""
    if not path.is_file():
        return None
    try:
        return read_json(path)
    except BadInputError:
        if overwrite:
            named = sorted(entry.name for entry in path.parent.iterdir() if SHARD_NAME.match(entry.name))
            return {"fingerprint": None, "shards": {}, "damaged_files": named}
        raise


def _load_state(out: Path, key: str, overwrite: bool) -> dict:
    """Finished shards of an earlier run with the same fingerprint; refuses to mix different runs.

    ``overwrite`` deletes only what the earlier prepare wrote (the shards its state file and manifest
    list, both files and the montage), never another file in the folder.
    """
    state, manifest = _held(out / STATE, overwrite), _held(out / MANIFEST, overwrite)
    previous = state or (manifest and {"fingerprint": manifest.get("fingerprint"), "shards": {}})
    if previous is None or previous.get("fingerprint") == key:
        return previous or {"fingerprint": key, "shards": {}}
    if not overwrite:
        raise BadInputError("output exists", f"{out} holds records from another prepare (other inputs or "
                                             "options); choose a new --out or pass --overwrite")
    shards = [info["file"] for info in (state or {}).get("shards", {}).values()]
    shards += [shard["file"] for shard in (manifest or {}).get("shards", [])]
    shards += [name for held in (state, manifest) for name in (held or {}).get("damaged_files", [])]
    remove_written(out, [*sorted(set(shards)), MANIFEST, STATE, MONTAGE])
    return {"fingerprint": key, "shards": {}}


def record_output(out: Path) -> Output:
    """A record folder as an output: galzoo's own when it holds a manifest or a prepare's state file."""
    return Output.directory(out, markers=(MANIFEST, STATE))


def _input_paths(catalogue: Catalogue) -> list[tuple[str, str]]:
    return [(name, info["path"]) for name, info in catalogue.inputs.items() if "path" in info]


def _shard_done(out: Path, info: dict | None) -> bool:
    """A shard of the state file that is on disk intact (a damaged one is written again)."""
    path = out / info["file"] if info else None
    return bool(path and path.is_file() and path.stat().st_size == info["bytes"]
                and not corrupt_files({path: info["sha256"]}))


def write_records(catalogue: Catalogue, out: Path, options: PrepareOptions, workers: int = 2,
                  progress: ProgressCallback | None = None, overwrite: bool = False,
                  engine: Engine | None = None) -> PrepareSummary:
    """Write (or resume, or confirm) the record set of ``catalogue`` in ``out``.

    With ``engine`` (Dask), every shard is one task that loads its images and writes itself;
    without, shards are written here with images decoded by ``workers`` processes. Either way the
    manifest is written once, at the end, and the bytes are the same.

    >>> from galzoo_tf.data.sources.synthetic import load_synthetic
    >>> write_records(load_synthetic(2000, seed=0), "data/synthetic",
    ...               PrepareOptions(test_size=0.125, seed=0))  # doctest: +SKIP
    """
    start, out = time.perf_counter(), Path(out)
    if options.encoding not in ENCODINGS:
        raise BadInputError("bad option", f"--encoding must be one of {ENCODINGS}")
    table = catalogue.table.reset_index(drop=True)
    if "split" not in table.columns:
        table = table.assign(split=assign_splits(len(table), options.seed, options.test_size,
                                                 options.val_fraction))
    catalogue = replace(catalogue, table=table)
    with writing([record_output(out)], _input_paths(catalogue)):
        spec = image_spec(catalogue, options)
        key = fingerprint(catalogue, options)
        out.mkdir(parents=True, exist_ok=True)
        state = _load_state(out, key, overwrite)
        plan = plan_shards(table, options.seed, options.shard_size)
        todo = [(name, rows) for name, rows in plan if not _shard_done(out, state["shards"].get(name))]
        if not todo and (out / MANIFEST).is_file():
            manifest = _records().read_manifest(out)
            if manifest.get("fingerprint") == key:
                return _summary(out, manifest, 0, len(plan), start, up_to_date=True)
        if engine is None:
            _write_shards(catalogue, out, todo, spec, options.skip_bad, workers, progress, state)
        else:
            _write_shards_on(engine, catalogue, out, todo, spec, options.skip_bad, progress, state)
        shards = [state["shards"][name] for name, _ in plan]
        manifest = build_manifest(catalogue, options, spec, key, shards)
        write_json_atomic(out / MANIFEST, manifest)
        return _summary(out, manifest, len(todo), len(plan) - len(todo), start)


def _summary(out: Path, manifest: dict, written: int, reused: int, start: float, up_to_date: bool = False
             ) -> PrepareSummary:
    return PrepareSummary(out, manifest["splits"], manifest["cuts"], Counter(manifest["skipped"]), written, reused,
                          time.perf_counter() - start, up_to_date=up_to_date, size=manifest["image"]["shape"][0],
                          blank_images=manifest.get("blank_images", 0))


WORKER_DIED = "worker died"


def _write_shards(catalogue: Catalogue, out: Path, todo: list[tuple[str, np.ndarray]], spec: ImageSpec,
                  skip_bad: bool, workers: int, progress: ProgressCallback | None, state: dict) -> None:
    """Decode images in workers and write each pending shard, recording it in the state file when done."""
    columns = _Columns.of(catalogue)
    items = catalogue.table[list(catalogue.item_columns)]
    total_images = int(sum(len(rows) for _, rows in todo))
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total_images)

    chunks = ((items.iloc[rows[i:i + CHUNK]].to_dict("records"), spec.shape, spec.encoding)
              for _, rows in todo for i in range(0, len(rows), CHUNK))
    executor: Executor = (_InProcess() if workers <= 0 else
                          ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                              initializer=die_with_parent))
    try:
        loaded = bounded_map(executor, catalogue.loader, chunks, window=4 * max(workers, 1))
        for name, rows in todo:
            _record_shard(out, state, name, _write_shard(out, name, columns, rows, loaded, skip_bad, tick))
    except BrokenProcessPool:
        raise BadInputError(WORKER_DIED, f"a worker process died (killed from outside, or by the system when "
                                         f"memory ran out); the {len(state['shards'])} finished shard(s) are "
                                         f"kept: run the same command again to resume, with fewer --workers "
                                         f"if memory is short") from None
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class ShardJob:
    """What every shard task shares: where to write, the image frame, the loader and the feature names."""

    out: str
    spec: ImageSpec
    skip_bad: bool
    loader: Callable
    int_names: list[str]
    float_names: list[str]
    label: str


@dataclass(frozen=True)
class ShardBlock:
    """The catalogue rows of one shard: the image loader's items and the values the records hold."""

    name: str
    items: list[dict]
    ids: np.ndarray
    splits: np.ndarray
    ints: np.ndarray
    floats: np.ndarray
    rows: np.ndarray


def _write_shard(out: Path, name: str, columns: _Columns, rows: np.ndarray, loaded: Iterator[list],
                 skip_bad: bool, on_image: Callable[[], None]) -> dict:
    """Write one shard atomically from its rows and their decoded images; its info for the state file."""
    skipped: Counter = Counter()
    info = _records().write_shard(out / name, _examples(columns, rows, loaded, skipped, skip_bad, on_image))
    blank = skipped.pop("blank", 0)
    return {**info, "split": name.split("-")[0], "skipped": dict(skipped), "blank": blank}


def _record_shard(out: Path, state: dict, name: str, info: dict) -> None:
    """Note a finished shard in the state file, so an interrupted run resumes after it."""
    state["shards"][name] = info
    write_json_atomic(out / STATE, state)


def write_shard_block(block: ShardBlock, job: ShardJob) -> dict:
    """Worker side: load the block's images and write its shard atomically; returns the shard's info."""
    columns = _Columns(block.ids, block.splits, block.ints, block.floats, job.int_names, job.float_names,
                       block.rows, job.label)
    loaded = (job.loader(block.items[i:i + CHUNK], job.spec.shape, job.spec.encoding)
              for i in range(0, len(block.items), CHUNK))
    return _write_shard(Path(job.out), block.name, columns, np.arange(len(block.ids)), loaded, job.skip_bad,
                        lambda: None)


def _write_shards_on(engine: Engine, catalogue: Catalogue, out: Path, todo: list[tuple[str, np.ndarray]],
                     spec: ImageSpec, skip_bad: bool, progress: ProgressCallback | None, state: dict) -> None:
    """One task per pending shard on ``engine``; the state file records each shard as it lands."""
    columns = _Columns.of(catalogue)
    items = catalogue.table[list(catalogue.item_columns)]
    job = ShardJob(str(out), spec, skip_bad, catalogue.loader, columns.int_names, columns.float_names,
                   columns.label)
    blocks = [ShardBlock(name, items.iloc[rows].to_dict("records"), columns.ids[rows], columns.splits[rows],
                         columns.ints[rows], columns.floats[rows], columns.rows[rows]) for name, rows in todo]
    total, done = sum(len(b.ids) for b in blocks), 0
    for block, info in engine.run(write_shard_block, blocks, job):
        _record_shard(out, state, block.name, info)
        done += len(block.ids)
        if progress is not None:
            progress(done, total)


def _voted_questions(catalogue: Catalogue) -> dict[str, list[str]]:
    """Answers of the questions whose votes the records hold (none for a table of parameters only)."""
    schema = catalogue.schema
    return {q.name: list(q.answer_names) for q in schema.questions
            if schema.total_key(q) in catalogue.int_features}


def build_manifest(catalogue: Catalogue, options: PrepareOptions, spec: ImageSpec, key: str,
                   shards: list[dict]) -> dict:
    """The manifest: provenance, schema, image spec, counts per split, shards with sha256."""
    splits = {split: sum(s["count"] for s in shards if s["split"] == split) for split in SPLITS}
    image_skips: Counter = Counter()
    for shard in shards:
        image_skips.update(shard.get("skipped", {}))
    cuts = [*catalogue.cuts, *[(f"skipped: {reason}", n) for reason, n in sorted(image_skips.items())]]
    return {
        "format": FORMAT,
        "galzoo_version": __version__,
        "source": catalogue.source,
        **manifest_tree(catalogue.schema),
        "questions": _voted_questions(catalogue),
        "image": spec.to_json(),
        "int_features": catalogue.int_features,
        "float_features": catalogue.float_features,
        "seed": options.seed,
        "options": asdict(options),
        "inputs": catalogue.inputs,
        "cuts": [list(cut) for cut in cuts],
        "skipped": dict(catalogue.skipped + image_skips),
        "warnings": list(catalogue.warnings),
        "blank_images": sum(shard.get("blank", 0) for shard in shards),
        "splits": splits,
        "total": sum(splits.values()),
        "shards": [{k: s[k] for k in ("file", "split", "count", "bytes", "sha256")} for s in shards],
        "fingerprint": key,
    }


def _quiet(*_: object) -> AbstractContextManager:
    return nullcontext()


@dataclass(frozen=True)
class PrepareRun:
    """How a prepare runs and shows itself, beside what it writes (nothing here changes a record).

    ``workers``: processes decoding images for the local engine (0: this process; None: one per
    core). ``engine``: starts the engine the records are written on, once the source is read
    (yielding None: the local engine). The displays are the caller's, each entered around one
    stage: ``status`` while the source is read, ``counting`` while records are written (it yields
    a ``(done, total)`` callback or None), ``transferring`` while GZ2 is downloaded (a
    ``(file, bytes done, bytes total)`` callback or None); ``warn`` gets warnings. By default a
    prepare is local, one worker a core, and quiet.
    """

    workers: int | None = None
    overwrite: bool = False
    engine: Callable[[], AbstractContextManager[Engine | None]] = _quiet
    status: Callable[[str], AbstractContextManager] = _quiet
    counting: Callable[[str], AbstractContextManager[ProgressCallback | None]] = _quiet
    transferring: Callable[[], AbstractContextManager[ByteProgress | None]] = _quiet
    warn: Callable[[str], None] = print

    def read(self, doing: str, load: Callable[[], Catalogue]) -> Catalogue:
        """The source's catalogue, read and checked under the ``status`` display; its warnings go to ``warn``."""
        with self.status(doing):
            catalogue = load()
        for warning in catalogue.warnings:
            self.warn(warning)
        return catalogue

    def write(self, catalogue: Catalogue, out: Path, options: PrepareOptions) -> PrepareSummary:
        """``write_records`` on the engine, under the ``counting`` display; blank images are one warning."""
        workers = (os.cpu_count() or 1) if self.workers is None else self.workers
        with self.engine() as engine, self.counting("writing records") as progress:
            summary = write_records(catalogue, out, options, workers=workers, progress=progress,
                                    overwrite=self.overwrite, engine=engine)
        if summary.blank_images:
            self.warn(f"{summary.blank_images:,} images are blank (every pixel 0); they are written, but check "
                      "those cutouts")
        return summary


def prepare_gz2(out: Path, options: PrepareOptions, run: PrepareRun | None = None, *, catalogue: Path | None = None,
                images: Path | None = None, mapping: Path | None = None, download: Path | None = None,
                mirror: str | None = None, keep_stripe82: bool = False,
                min_votes: Iterable[str] = ()) -> PrepareSummary:
    """`galzoo prepare gz2`: with ``download`` (a cache folder), first fetch the public catalogue, mapping and
    images there (from ``mirror`` if given) for whichever of the three are not given; then the records of the
    GZ2 catalogue with the Walmsley et al. (2019) cuts, ``min_votes`` (``QUESTION=N``) over the default one.

    >>> prepare_gz2(Path("data/gz2/records"), PrepareOptions(), catalogue=Path("gz2_hart16.csv.gz"),
    ...             images=Path("images"), mapping=Path("gz2_filename_mapping.csv"),
    ...             min_votes=["bar=10"])  # doctest: +SKIP"""
    run = run or PrepareRun()
    inputs = [("catalogue", catalogue), ("images folder", images), ("mapping", mapping), ("download folder", download)]
    with writing([record_output(out)], inputs):
        if download is not None:
            with run.transferring() as progress:
                fetched = download_gz2(download, mirror=mirror, progress=progress, warn=run.warn)
            catalogue = catalogue or fetched["catalogue"]
            mapping = mapping or fetched["mapping"]
            images = images or fetched["images"]
        if catalogue is None or images is None:
            raise BadInputError("bad option", "give --catalogue and --images, or --download")
        cuts = gz2_min_votes(min_votes)
        source = run.read("reading and checking the catalogue", lambda: load_gz2(
            catalogue, images, mapping=mapping, keep_stripe82=keep_stripe82, min_votes=cuts,
            skip_bad=options.skip_bad))
        return run.write(source, out, options)


def prepare_kaggle(solutions: Path, images: Path, out: Path, options: PrepareOptions, run: PrepareRun | None = None,
                   *, volunteers: int | None = None, tolerance: float = KAGGLE_TOLERANCE,
                   min_votes: Iterable[str] = ()) -> PrepareSummary:
    """`galzoo prepare kaggle`: the records of the Kaggle release (``training_solutions_rev1.csv`` and its
    ``GalaxyID.jpg`` images), with pseudo-counts at ``volunteers`` per galaxy and the 37 weighted fractions.

    >>> prepare_kaggle(Path("training_solutions_rev1.csv"), Path("images_training_rev1"),
    ...                Path("data/kaggle/records"), PrepareOptions())  # doctest: +SKIP"""
    run = run or PrepareRun()
    with writing([record_output(out)], [("solutions", solutions), ("images folder", images)]):
        source = run.read("reading and checking the solutions", lambda: load_kaggle(
            solutions, images, volunteers=volunteers, tolerance=tolerance,
            min_votes=parse_min_votes(min_votes, load_schema(KAGGLE_TREE)), skip_bad=options.skip_bad))
        return run.write(source, out, options)


def prepare_folder(images: Path, labels: Path, out: Path, options: PrepareOptions, run: PrepareRun | None = None, *,
                   schema: str | None = None, min_votes: Iterable[str] = (), label_column: str | None = None,
                   volunteers: int | None = None) -> PrepareSummary:
    """`galzoo prepare folder`: the records of a folder of images and a CSV of votes for the tree ``schema`` (a
    shipped name or a tree .json; default gz2), as counts, fractions with totals or fractions alone
    (pseudo-counts at ``volunteers``), without galaxies below the ``min_votes`` (``QUESTION=N``); or of a 0/1
    ``label_column`` as a one-question yes/no tree.

    >>> prepare_folder(Path("images"), Path("catalogue.csv"), Path("data/rings"), PrepareOptions(),
    ...                label_column="ring")  # doctest: +SKIP"""
    if label_column is not None and (schema is not None or volunteers is not None):
        raise BadInputError("bad option", "--label-column makes its own one-question tree of one vote per galaxy; "
                                          "--schema and --votes do not go with it")
    if volunteers is not None and volunteers < 1:
        raise BadInputError("bad option", "--votes must be at least 1")
    run = run or PrepareRun()
    tree = load_schema(schema or "gz2") if label_column is None else binary_schema(label_column.strip().lower())
    cuts = parse_min_votes(min_votes, tree)
    with writing([record_output(out)], [("images folder", images), ("labels", labels)]):
        source = run.read("reading and checking the labels", lambda: load_folder(
            images, labels, schema=tree, min_votes=cuts, skip_bad=options.skip_bad, label_column=label_column,
            volunteers=volunteers))
        return run.write(source, out, options)


def prepare_fits(images: Path, table: Path, out: Path, options: PrepareOptions,
                 run: PrepareRun | None = None) -> PrepareSummary:
    """`galzoo prepare fits`: the records of FITS cutouts and a table of morphological parameters; with
    ``options.size`` None the cutouts keep the first one's side (its pixel scale, as the table assumes)."""
    run = run or PrepareRun()
    with writing([record_output(out)], [("images folder", images), ("table", table)]):
        source = run.read("reading and checking the table",
                          lambda: load_fits_parameters(images, table, skip_bad=options.skip_bad))
        if options.size is None:
            options = replace(options, size=native_side(source.table["path"]))
        return run.write(source, out, options)


def prepare_synthetic(n: int, out: Path, options: PrepareOptions, run: PrepareRun | None = None, *,
                      survey: str = "sdss", overdispersion: float = 0.0,
                      population: str | None = None, schema: str = "gz2") -> PrepareSummary:
    """`galzoo prepare synthetic`: ``n`` simulated galaxies of ``survey`` and their volunteers answering the tree
    ``schema`` (drawn with ``options.seed``), at the survey's image size, and a montage of sample galaxies beside the
    records.

    >>> summary = prepare_synthetic(5000, Path("data/demo/synthetic"), PrepareOptions(seed=0))  # doctest: +SKIP
    >>> summary.splits, summary.montage  # doctest: +SKIP
    """
    from galzoo_tf.data.sources.synthetic import check_population, load_synthetic, survey_mix  # GalSim (~0.7 s)
    from galzoo_tf.sim.perception import perceived_orders

    run = run or PrepareRun()
    survey_mix(survey)  # a bad --survey, --population or --schema is refused before the output folder exists
    check_population(population)
    tree = load_schema(schema)
    perceived_orders(tree)
    with writing([record_output(out)]):
        source = run.read("drawing galaxies and volunteers", lambda: load_synthetic(
            n, seed=options.seed, survey=survey, overdispersion=overdispersion, population=population, schema=tree))
        summary = run.write(source, out, replace(options, size=source.image_spec.shape[0]))
        return replace(summary, montage=record_montage(out, Path(out) / MONTAGE))
