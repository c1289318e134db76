"""The record pipeline: tf.data from record shards to (augmented image, target) batches for any task.

Training data is one dataset over a range of epochs: epoch e is shuffled with a seed
derived from (seed, e), and image i of it is augmented with a seed derived from
(seed, e, i). Any epoch is therefore the same in an uninterrupted run and in a run
resumed at that epoch, whatever the process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import tensorflow as tf

from galzoo_tf.data import records
from galzoo_tf.data.augment import AugmentConfig, augment
from galzoo_tf.errors import BadInputError

SHUFFLE_BUFFER = 2048


def split_manifest(folder: Path, split: str) -> dict:
    """The manifest of a record folder whose ``split`` holds galaxies; else a clear error."""
    manifest = records.read_manifest(folder)
    if not manifest["splits"].get(split):
        raise BadInputError("empty split", f"{folder}: the {split} split is empty; prepare with a non-zero "
                                           f"{'--val-fraction' if split == 'val' else '--test-size'}")
    return manifest


def epoch_seed(seed: int, epoch: int) -> tf.Tensor:
    """Key of one epoch's augmentations (epoch -1: validation and evaluation)."""
    return tf.constant([seed, epoch], tf.int64)


def record_dataset(folder: Path, split: str, config: AugmentConfig, batch_size: int, seed: int,
                   keep: Callable[[dict], tf.Tensor], target: Callable[[dict], tf.Tensor],
                   epochs: tuple[int, int] | None = None) -> tf.data.Dataset:
    """Batches of (augmented image, target) for the records of a split that ``keep`` accepts.

    With ``epochs=(first, stop)`` the dataset runs those training epochs back to back, each
    shuffled and augmented afresh but reproducibly; without, it is one pass in record order
    with the deterministic version of the augmentations (for validation).
    """
    manifest = split_manifest(Path(folder), split)
    paths = records.shard_paths(Path(folder), manifest, split)
    parse = records.parser(manifest)

    def prepared(dataset: tf.data.Dataset, key: tf.Tensor, transform: AugmentConfig) -> tf.data.Dataset:
        dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).filter(keep)
        return dataset.enumerate().map(
            lambda i, f: (augment(f["image"], tf.random.experimental.stateless_fold_in(key, i), transform),
                          target(f)),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    if epochs is None:
        dataset = prepared(tf.data.TFRecordDataset(paths), epoch_seed(seed, -1), config.deterministic())
        dataset = dataset.batch(batch_size)
    else:
        def one_epoch(epoch: int) -> tf.data.Dataset:
            shuffled = tf.data.TFRecordDataset(paths).shuffle(
                SHUFFLE_BUFFER, seed=seed * 100_003 + epoch, reshuffle_each_iteration=False)
            return prepared(shuffled, epoch_seed(seed, epoch), config).batch(batch_size)  # never straddle epochs

        dataset = functools.reduce(tf.data.Dataset.concatenate, map(one_epoch, range(*epochs)))
    return dataset.prefetch(tf.data.AUTOTUNE)
