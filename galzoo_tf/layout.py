"""Names of a prepared record folder, shared by writers and readers (no TensorFlow import)."""

from __future__ import annotations

FORMAT = "galzoo-records/1"
MANIFEST = "manifest.json"
STATE = ".prepare-state.json"
SPLITS = ("train", "val", "test")
ENCODINGS = ("raw", "png")


def shard_name(split: str, index: int, total: int) -> str:
    """``train-00003-of-00012.tfrecord``: sorts in order and says how many shards the split has."""
    return f"{split}-{index:05d}-of-{total:05d}.tfrecord"
