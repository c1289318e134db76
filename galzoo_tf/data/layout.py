"""Names of a prepared record folder, shared by writers and readers (no TensorFlow import)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass

FORMAT = "galzoo-records/1"
MANIFEST = "manifest.json"
STATE = ".prepare-state.json"
SPLITS = ("train", "val", "test")
ENCODINGS = ("raw", "png")


def shard_name(split: str, index: int, total: int) -> str:
    """``train-00003-of-00012.tfrecord``: sorts in order and says how many shards the split has."""
    return f"{split}-{index:05d}-of-{total:05d}.tfrecord"


SHARD_NAME = re.compile(rf"^(?:{'|'.join(SPLITS)})-\d{{5}}-of-\d{{5}}\.tfrecord$")  # every name shard_name gives


@dataclass(frozen=True)
class ImageSpec:
    """Shape, dtype and encoding shared by every image of a record set."""

    shape: tuple[int, int, int]
    dtype: str = "uint8"
    encoding: str = "raw"

    @classmethod
    def from_json(cls, raw: Mapping) -> ImageSpec:
        return cls(tuple(int(v) for v in raw["shape"]), raw["dtype"], raw["encoding"])

    def to_json(self) -> dict:
        return {**asdict(self), "shape": list(self.shape)}
