"""Galaxies to predict on, streamed in batches: prepared records, or a folder of images or FITS files.

A source yields batches in a fixed order and can start after the first ``skip`` galaxies,
so an interrupted prediction resumes where its written rows end. Memory is bounded by the
batch: records stream through tf.data, image files are decoded a batch at a time.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from galzoo_tf.data import records
from galzoo_tf.data.images import is_fits, load_image
from galzoo_tf.data.layout import ImageSpec
from galzoo_tf.errors import BadInputError

FOLDER_PART_FILES = 1000  # image files per partition of a folder (the unit of shard-parallel work)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".fits", ".fit", ".fits.gz", ".fit.gz")
FITS_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz")


@dataclass
class Batch:
    """The next galaxies of the input (bad images skipped, when asked)."""

    consumed: int  # input items this batch used up, bad images included
    ids: list[str]
    images: np.ndarray
    indices: np.ndarray  # input index of each galaxy: keys its random draws
    columns: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Partition:
    """One unit of shard-parallel work: a named part of a source (a record shard or a block of files)."""

    name: str
    source: RecordSource | FolderSource


def partitions(source: RecordSource | FolderSource) -> list[Partition]:
    """Every partition of ``source`` in input order."""
    return [Partition(name, source.part(name)) for name in source.partitions()]


class RecordSource:
    """Prepared records (one split or all), with any stored int/float features asked for."""

    def __init__(self, folder: Path, split: str | None = None, keys: Sequence[str] = ()) -> None:
        self.folder = Path(folder)
        self.manifest = records.read_manifest(self.folder)
        if split is not None and not self.manifest["splits"].get(split):
            raise BadInputError("empty split", f"{self.folder}: no galaxies in the {split!r} split")
        self.split, self.keys = split, tuple(keys)
        self.paths = records.shard_paths(self.folder, self.manifest, split)
        self.counts = [s["count"] for s in self.manifest["shards"] if split is None or s["split"] == split]
        self.total = self.manifest["splits"][split] if split else self.manifest["total"]
        self.offset = 0  # index of the first galaxy within the whole source (non-zero for one partition)
        self.skipped: dict[str, int] = {}

    def partitions(self) -> list[str]:
        """Names of the units of shard-parallel work: the shard files (without suffix)."""
        return [Path(path).stem for path in self.paths]

    def part(self, name: str) -> RecordSource:
        """One shard of this source; its galaxies keep the indices (random keys) they have in the whole source."""
        position = self.partitions().index(name)
        part = copy.copy(self)
        part.manifest = {**self.manifest, "shards": [s for s in self.manifest["shards"]
                                                     if Path(s["file"]).stem == name]}
        part.paths, part.counts = [self.paths[position]], [self.counts[position]]
        part.total, part.offset, part.skipped = self.counts[position], sum(self.counts[:position]), {}
        return part

    def describe(self) -> dict:
        return {"records": str(self.folder.resolve()), "split": self.split or "all",
                "fingerprint": self.manifest["fingerprint"]}

    def identity(self) -> dict:
        """What a resumed run must find again (cheap to compute)."""
        return self.describe()

    def _spec(self) -> dict[str, tf.io.FixedLenFeature]:
        spec = records.feature_spec(self.manifest)
        missing = [key for key in self.keys if key not in spec]
        if missing:
            raise BadInputError("missing column", f"{self.folder}: records have no {', '.join(missing[:4])}")
        return {key: spec[key] for key in ("id", "image", "split", *self.keys)}

    def columns(self) -> dict[str, np.ndarray]:
        """The id (as str) and the asked features of every galaxy, in record order; no image is decoded."""
        spec = {key: value for key, value in self._spec().items() if key != "image"}
        dataset = tf.data.TFRecordDataset(self.paths).map(lambda r: tf.io.parse_single_example(r, spec),
                                                          num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        batches = list(dataset.batch(4096).as_numpy_iterator())
        columns = {key: np.concatenate([b[key] for b in batches]) for key in spec}
        return {**columns, "id": columns["id"].astype(str), "split": columns["split"].astype(str)}

    def batches(self, batch_size: int, skip: int = 0) -> Iterator[Batch]:
        spec, image = self._spec(), ImageSpec.from_json(self.manifest["image"])

        def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
            features = tf.io.parse_single_example(serialized, spec)
            return {**features, "image": records.decode_image(features["image"], image)}

        dataset = tf.data.TFRecordDataset(self.paths).skip(skip)  # skips raw bytes: nothing decoded
        dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        index = self.offset + skip
        for batch in dataset.batch(batch_size).prefetch(2).as_numpy_iterator():
            count = len(batch["id"])
            yield Batch(count, [i.decode() for i in batch["id"]], batch["image"],
                        np.arange(index, index + count), {"split": batch["split"].astype(str),
                                                          **{key: batch[key] for key in self.keys}})
            index += count


class FolderSource:
    """Image files under a folder (sorted by relative path); the id is the relative path without suffix."""

    def __init__(self, root: Path, image: ImageSpec, fits_only: bool = False, skip_bad: bool = False,
                 threads: int = 4) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise BadInputError("missing folder", f"{self.root}: no such folder of images")
        suffixes = FITS_SUFFIXES if fits_only else IMAGE_SUFFIXES
        self.files = sorted(p for p in self.root.rglob("*") if p.is_file() and p.name.lower().endswith(suffixes))
        if not self.files:
            raise BadInputError("no images", f"{self.root}: no {' / '.join(suffixes)} files found")
        self.image, self.skip_bad, self.threads = image, skip_bad, threads
        self.total, self.skipped, self.offset = len(self.files), {}, 0

    def partitions(self) -> list[str]:
        """Names of the units of shard-parallel work: blocks of ``FOLDER_PART_FILES`` files in path order."""
        return [f"part-{i:05d}" for i in range(-(-self.total // FOLDER_PART_FILES))]

    def part(self, name: str) -> FolderSource:
        """One block of files; its galaxies keep the indices (random keys) they have in the whole folder."""
        start = self.partitions().index(name) * FOLDER_PART_FILES
        part = copy.copy(self)
        part.files = self.files[start:start + FOLDER_PART_FILES]
        part.total, part.offset, part.skipped = len(part.files), self.offset + start, {}
        return part

    def describe(self) -> dict:
        """The folder and a checksum over every file's name and content."""
        digest = hashlib.sha256()
        for path in self.files:
            digest.update(path.relative_to(self.root).as_posix().encode() + b"\0" + path.read_bytes())
        return {"images": str(self.root.resolve()), "files": self.total, "sha256": digest.hexdigest()}

    def identity(self) -> dict:
        """What a resumed run must find again: the folder and its files (contents are hashed at the end)."""
        return {"images": str(self.root.resolve()), "files": self.total}

    def galaxy_id(self, path: Path) -> str:
        name = path.relative_to(self.root).as_posix()
        suffix = next(s for s in FITS_SUFFIXES + IMAGE_SUFFIXES if name.lower().endswith(s))
        return name[: -len(suffix)]

    def _load(self, path: Path) -> np.ndarray | BadInputError:
        """The image as float32 0-1 (JPEG/PNG) or flux (FITS) with the model's channel count."""
        try:
            pixels = load_image(path, self.image.shape[0])
        except BadInputError as error:
            return error
        pixels = pixels.astype(np.float32) / 255 if pixels.dtype == np.uint8 else pixels
        channels = self.image.shape[-1]
        if pixels.shape[-1] == 1 and channels > 1:
            pixels = np.repeat(pixels, channels, axis=-1)
        if pixels.shape[-1] != channels:
            kind = "FITS planes" if is_fits(path) else "colours"
            return BadInputError("bad image shape", f"{path}: {pixels.shape[-1]} {kind}; the model was trained "
                                                    f"on {channels}")
        return pixels

    def batches(self, batch_size: int, skip: int = 0) -> Iterator[Batch]:
        with ThreadPoolExecutor(self.threads) as pool:
            for start in range(skip, self.total, batch_size):
                chunk = self.files[start:start + batch_size]
                loaded = list(pool.map(self._load, chunk))
                kept = [i for i, item in enumerate(loaded) if not isinstance(item, BadInputError)]
                for item in loaded:
                    if isinstance(item, BadInputError):
                        if not self.skip_bad:
                            raise item
                        self.skipped[item.reason] = self.skipped.get(item.reason, 0) + 1
                images = np.stack([loaded[i] for i in kept]) if kept else \
                    np.zeros((0, *self.image.shape), np.float32)
                yield Batch(len(chunk), [self.galaxy_id(chunk[i]) for i in kept], images,
                            np.array([self.offset + start + i for i in kept], dtype=np.int64))


@dataclass(frozen=True)
class ImageInputs:
    """Where the galaxies of a command come from: exactly one of records, an image folder or a FITS folder."""

    records: Path | None = None
    images: Path | None = None
    fits: Path | None = None
    split: str | None = None  # with records: only this split
    skip_bad: bool = False  # with folders: skip unreadable or wrong-size images (counted)

    def paths(self) -> list[tuple[str, Path | None]]:
        """The inputs by name, for the check that no output replaces them."""
        return [("records", self.records), ("images folder", self.images), ("FITS folder", self.fits)]

    def open(self, image: ImageSpec) -> RecordSource | FolderSource:
        """The source, with folder images resized to ``image`` (the frame a model was trained on)."""
        given = [p for p in (self.records, self.images, self.fits) if p is not None]
        if len(given) != 1:
            raise BadInputError("bad option", "give exactly one input: --data RECORDS, --images DIR or --fits DIR")
        if self.records is not None:
            return RecordSource(self.records, self.split)
        return FolderSource(self.images or self.fits, image, fits_only=self.fits is not None, skip_bad=self.skip_bad)
