"""tf.data pipelines from record shards to (image, vote targets) batches: parse, filter, augment, batch.

Training data is one dataset over a range of epochs: epoch e is shuffled with a seed
derived from (seed, e), and image i of it is augmented with a seed derived from
(seed, e, i). Any epoch is therefore the same in an uninterrupted run and in a run
resumed at that epoch, whatever the process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import tensorflow as tf

from galzoo_tf import records
from galzoo_tf.augment import AugmentConfig, augment
from galzoo_tf.errors import BadInputError
from galzoo_tf.heads import BinomialHead, targets

SHUFFLE_BUFFER = 2048


def check_answerable(manifest: dict, heads: Sequence[BinomialHead], folder: Path) -> None:
    """Every head's counts and total must be in the records."""
    present = set(manifest["int_features"])
    for head in heads:
        missing = [key for key in (*head.count_keys(), head.total_key) if key not in present]
        if missing:
            raise BadInputError("question not in data", f"{folder}: the records have no votes for question "
                                                        f"{head.question!r} (missing {', '.join(missing[:3])})")


def _records(folder: Path, split: str) -> tuple[dict, list[str]]:
    manifest = records.read_manifest(folder)
    if not manifest["splits"].get(split):
        raise BadInputError("empty split", f"{folder}: the {split} split is empty; prepare with a non-zero "
                                           f"{'--val-fraction' if split == 'val' else '--test-size'}")
    return manifest, records.shard_paths(folder, manifest, split)


def _keep(head: BinomialHead, min_votes: int):
    def keep(features: dict[str, tf.Tensor]) -> tf.Tensor:
        return features[head.total_key] >= max(min_votes, 1)

    return keep


def _and_in(keep, ids: Sequence[str]):
    """``keep`` and the galaxy's id is one of ``ids`` (a hash-table lookup in the graph)."""
    table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(list(ids), tf.string), tf.ones(len(ids), tf.int32)), default_value=0)

    def keep_listed(features: dict[str, tf.Tensor]) -> tf.Tensor:
        return tf.logical_and(keep(features), table.lookup(features["id"]) > 0)

    return keep_listed


def vote_targets(folder: Path, split: str, heads: Sequence[BinomialHead], min_votes: int = 0,
                 filter_head: BinomialHead | None = None, batch_size: int = 4096) -> tf.data.Dataset:
    """Batches of targets only, for the galaxies a vote dataset would keep: no image is read into a tensor."""
    folder = Path(folder)
    manifest, paths = _records(folder, split)
    check_answerable(manifest, heads, folder)
    filter_head = filter_head or heads[0]
    keys = {key for head in (*heads, filter_head) for key in (*head.count_keys(), head.total_key)}
    spec = {key: tf.io.FixedLenFeature([], tf.int64) for key in keys}
    votes = tf.data.TFRecordDataset(paths).map(lambda r: tf.io.parse_single_example(r, spec),
                                               num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return votes.filter(_keep(filter_head, min_votes)).map(lambda f: targets(f, heads)).batch(batch_size)


def epoch_seed(seed: int, epoch: int) -> tf.Tensor:
    """Key of one epoch's augmentations (epoch -1: validation and evaluation)."""
    return tf.constant([seed, epoch], tf.int64)


def vote_dataset(folder: Path, split: str, heads: Sequence[BinomialHead], config: AugmentConfig, batch_size: int,
                 seed: int, min_votes: int = 0, epochs: tuple[int, int] | None = None,
                 filter_head: BinomialHead | None = None, only_ids: Sequence[str] | None = None) -> tf.data.Dataset:
    """Batches of (augmented image, vote targets) for a split; see ``record_dataset``.

    ``only_ids`` keeps just those galaxies (an active-learning campaign's labelled set).
    """
    folder = Path(folder)
    manifest, _ = _records(folder, split)
    check_answerable(manifest, heads, folder)
    keep = _keep(filter_head or heads[0], min_votes)
    if only_ids is not None:
        keep = _and_in(keep, only_ids)
    return record_dataset(folder, split, config, batch_size, seed, keep, lambda f: targets(f, heads), epochs)


def record_dataset(folder: Path, split: str, config: AugmentConfig, batch_size: int, seed: int,
                   keep: Callable[[dict], tf.Tensor], target: Callable[[dict], tf.Tensor],
                   epochs: tuple[int, int] | None = None) -> tf.data.Dataset:
    """Batches of (augmented image, target) for the records of a split that ``keep`` accepts.

    With ``epochs=(first, stop)`` the dataset runs those training epochs back to back, each
    shuffled and augmented afresh but reproducibly; without, it is one pass in record order
    with the deterministic version of the augmentations (for validation).
    """
    manifest, paths = _records(Path(folder), split)
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
