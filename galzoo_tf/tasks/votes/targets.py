"""Vote targets: the k and N of every output, read from records into tf.data batches or numpy tables.

Targets travel as one tensor per galaxy: the k of every output, then the N of every output.
A galaxy is used when the filter question (the model's question, or the root for a model of
every question) has at least ``min_votes`` votes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from galzoo_tf.data.augment import AugmentConfig
from galzoo_tf.data.inputs import RecordSource
from galzoo_tf.data.pipeline import record_dataset, split_manifest
from galzoo_tf.errors import BadInputError
from galzoo_tf.tasks.votes.heads import VoteHead


def targets(features: dict[str, tf.Tensor], heads: Sequence[VoteHead]) -> tf.Tensor:
    """Target tensor of one record: k of every output, then N of every output (float32)."""
    counts = [features[key] for head in heads for key in head.count_keys()]
    totals = [features[head.total_key] for head in heads for _ in head.answers]
    return tf.cast(tf.stack(counts + totals), tf.float32)


def check_answerable(manifest: dict, heads: Sequence[VoteHead], folder: Path) -> None:
    """Every head's counts and total must be in the records."""
    present = set(manifest["int_features"])
    for head in heads:
        missing = [key for key in (*head.count_keys(), head.total_key) if key not in present]
        if missing:
            raise BadInputError("question not in data", f"{folder}: the records have no votes for question "
                                                        f"{head.question!r} (missing {', '.join(missing[:3])})")


def _keep(head: VoteHead, min_votes: int):
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


@dataclass
class VoteTable:
    """Ids, record positions, vote targets (k then N of every output) and true rho of a split's usable galaxies."""

    ids: np.ndarray
    indices: np.ndarray  # position in the split's records
    targets: np.ndarray
    truth: np.ndarray | None  # true rho of the first head's first answer (simulated records only)

    @property
    def observed_fraction(self) -> np.ndarray:
        """k / N of the first output."""
        return self.targets[:, 0] / self.targets[:, self.targets.shape[1] // 2]


def vote_table(folder: Path, split: str, heads: Sequence[VoteHead], min_votes: int = 0,
               filter_head: VoteHead | None = None) -> VoteTable:
    """The targets of the galaxies a vote dataset would keep, read without decoding a single image."""
    folder, filter_head = Path(folder), filter_head or heads[0]
    manifest = split_manifest(folder, split)
    check_answerable(manifest, [*heads, filter_head], folder)
    truth_key = f"truth/rho/{heads[0].question}/{heads[0].answers[0]}"
    truth = truth_key if truth_key in manifest.get("float_features", []) else None
    keys = dict.fromkeys(key for head in (*heads, filter_head) for key in (*head.count_keys(), head.total_key))
    columns = RecordSource(folder, split, [*keys, *([truth] if truth else [])]).columns()
    counts = [columns[key] for head in heads for key in head.count_keys()]
    totals = [columns[head.total_key] for head in heads for _ in head.answers]
    usable = columns[filter_head.total_key] >= max(min_votes, 1)
    table = np.stack(counts + totals, axis=1).astype(np.float32)
    return VoteTable(columns["id"][usable], np.flatnonzero(usable), table[usable],
                     columns[truth][usable] if truth else None)


def vote_dataset(folder: Path, split: str, heads: Sequence[VoteHead], config: AugmentConfig, batch_size: int,
                 seed: int, min_votes: int = 0, epochs: tuple[int, int] | None = None,
                 filter_head: VoteHead | None = None, only_ids: Sequence[str] | None = None) -> tf.data.Dataset:
    """Batches of (augmented image, vote targets) for a split; see ``record_dataset``.

    ``only_ids`` keeps just those galaxies (an active-learning campaign's labelled set).
    """
    folder = Path(folder)
    check_answerable(split_manifest(folder, split), heads, folder)
    keep = _keep(filter_head or heads[0], min_votes)
    if only_ids is not None:
        keep = _and_in(keep, only_ids)
    return record_dataset(folder, split, config, batch_size, seed, keep, lambda f: targets(f, heads), epochs)
