"""What a campaign trains each iteration: the whole vote CNN on the labelled images (the paper's protocol), or
an MC-dropout head on a frozen representation's features (Zoobot's).

Both learners answer the same four calls, so the campaign loop does not know which it drives: ``build`` a
fresh (or warm-started) model, ``fit`` it on the labelled galaxies, sample its ``logits`` (galaxies, passes,
outputs) for a split's galaxies, and its mean test ``loss``. A ``FeatureLearner`` also gives the features it
learns from, which the campaign uses to measure how alike each acquired batch is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from galzoo_tf.data.augment import AugmentConfig
from galzoo_tf.data.inputs import RecordSource
from galzoo_tf.fileio import replaced_atomically
from galzoo_tf.models import MCDropout
from galzoo_tf.tasks.votes.heads import BinomialHead
from galzoo_tf.tasks.votes.loss import negative_log_likelihood
from galzoo_tf.tasks.votes.model import VoteModel
from galzoo_tf.tasks.votes.posterior import DROPOUT_LAYER, LOGITS_LAYER, Sampler
from galzoo_tf.tasks.votes.targets import VoteTable, vote_dataset
from galzoo_tf.tasks.votes.task import compile_votes, vote_network
from galzoo_tf.training.config import TrainConfig


@dataclass
class ImageLearner:
    """The vote CNN on images: ``epochs`` per iteration keeping the best validation epoch, or exactly ``steps``
    steps (the paper's fixed-step protocol, no validation)."""

    data: Path
    head: BinomialHead
    training: TrainConfig
    augmentation: AugmentConfig
    val: VoteTable
    epochs: int
    steps: int | None
    passes: int
    tta: bool

    def build(self, seed: int, weights: Path | None) -> keras.Model:
        keras.utils.set_random_seed(seed)
        model = vote_network(self.training, 1, [self.head])
        if weights is not None:  # before compiling: a fresh optimizer each iteration, its saved state unused
            model.load_weights(weights)
        return compile_votes(model, self.training, jit="auto")  # Keras decides: XLA on GPUs, not on CPUs

    def fit(self, model: keras.Model, labelled: VoteTable, seed: int) -> float:
        """Train and return the training loss of the weights kept."""
        batch = self.training.batch_size
        if self.steps is not None:
            dataset = vote_dataset(self.data, "train", [self.head], self.augmentation, batch, seed,
                                   self.training.min_votes, epochs=(0, math.ceil(self.steps * batch /
                                                                                 len(labelled.ids))),
                                   only_ids=list(labelled.ids)).take(self.steps)
            history = model.fit(dataset, epochs=1, steps_per_epoch=self.steps, verbose=0, shuffle=False).history
            return float(history["loss"][-1])
        steps = math.ceil(len(labelled.ids) / batch)
        dataset = vote_dataset(self.data, "train", [self.head], self.augmentation, batch, seed,
                               self.training.min_votes, epochs=(0, self.epochs), only_ids=list(labelled.ids)).apply(
            tf.data.experimental.assert_cardinality(steps * self.epochs))
        best = keras.callbacks.EarlyStopping(monitor="val_loss", patience=self.epochs, restore_best_weights=True)
        history = model.fit(dataset, epochs=self.epochs, steps_per_epoch=steps, verbose=0, shuffle=False,
                            validation_data=self._split_dataset("val", self.val, seed), callbacks=[best]).history
        return float(history["loss"][int(np.argmin(history["val_loss"]))])

    def _split_dataset(self, split: str, table: VoteTable, seed: int) -> tf.data.Dataset:
        """A whole split, deterministic view, with its length known (so Keras never probes for the end)."""
        batch = self.training.batch_size
        return vote_dataset(self.data, split, [self.head], self.augmentation, batch, seed,
                            self.training.min_votes).apply(
            tf.data.experimental.assert_cardinality(math.ceil(len(table.ids) / batch)))

    def logits(self, model: keras.Model, split: str, wanted: VoteTable, seed: int) -> np.ndarray:
        """MC samples of the logits (galaxies, passes, outputs) for the galaxies of ``wanted``, in its order."""
        sampler, keep = Sampler(model, self.augmentation, self.passes, self.tta, seed), set(wanted.indices.tolist())
        found: dict[int, np.ndarray] = {}
        for batch in RecordSource(self.data, split).batches(self.training.batch_size * 4):
            chosen = np.array([i in keep for i in batch.indices])
            if chosen.any():
                logits = sampler.logits(batch.images[chosen], batch.indices[chosen]).numpy()
                found.update(zip(batch.indices[chosen].tolist(), logits, strict=True))
        return np.stack([found[i] for i in wanted.indices.tolist()])

    def loss(self, model: keras.Model, split: str, table: VoteTable, seed: int) -> float:
        return float(model.evaluate(self._split_dataset(split, table, seed), verbose=0))

    def batch_similarity(self, picked: np.ndarray) -> float | None:
        """None: a CNN trained from scratch has no fixed representation to compare galaxies in."""
        return None


def feature_head(width: int, outputs: int, dropout: float, hidden: int) -> keras.Model:
    """features -> [Dense(hidden, relu)] -> MC dropout -> logits: the vote CNN's head on a frozen trunk, named
    as the Sampler expects."""
    inputs = keras.Input((width,), name="features")
    x = keras.layers.Dense(hidden, activation="relu", name="hidden")(inputs) if hidden else inputs
    x = MCDropout(dropout, name=DROPOUT_LAYER)(x)
    return keras.Model(inputs, keras.layers.Dense(outputs, dtype="float32", name=LOGITS_LAYER)(x),
                       name="feature_head")


@dataclass
class FeatureLearner:
    """An MC-dropout head trained from scratch for exactly ``steps`` steps on the labelled galaxies' features.

    ``features`` holds every record of each split, in record order, standardised by the pool's mean and spread
    (no label is used for that); a table's ``indices`` pick its rows.
    """

    features: dict[str, np.ndarray]
    head: BinomialHead
    training: TrainConfig
    augmentation: AugmentConfig  # the representation's: recorded with the samplers, never applied to features
    steps: int
    hidden: int
    passes: int

    def build(self, seed: int, weights: Path | None) -> keras.Model:
        keras.utils.set_random_seed(seed)
        model = feature_head(self.features["train"].shape[1], self.head.size, self.training.dropout, self.hidden)
        if weights is not None:
            model.load_weights(weights)
        return compile_votes(model, self.training, jit=False)

    def fit(self, model: keras.Model, labelled: VoteTable, seed: int) -> float:
        rows = self.features["train"][labelled.indices]
        dataset = tf.data.Dataset.from_tensor_slices((rows, labelled.targets)).shuffle(
            len(rows), seed=seed, reshuffle_each_iteration=True).repeat().batch(self.training.batch_size)
        history = model.fit(dataset, epochs=1, steps_per_epoch=self.steps, verbose=0, shuffle=False).history
        return float(history["loss"][-1])

    def logits(self, model: keras.Model, split: str, wanted: VoteTable, seed: int) -> np.ndarray:
        sampler = Sampler(model, self.augmentation, self.passes, False, seed)
        chunks = []
        for start in range(0, len(wanted.ids), 8192):
            indices = wanted.indices[start:start + 8192]
            hidden = sampler.trunk(tf.constant(self.features[split][indices]), training=False)
            chunks.append(sampler.logits_from_features(tf.repeat(hidden, self.passes, axis=0), indices).numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, self.passes, self.head.size), np.float32)

    def loss(self, model: keras.Model, split: str, table: VoteTable, seed: int) -> float:
        logits = model(tf.constant(self.features[split][table.indices]), training=False)
        return float(tf.reduce_mean(negative_log_likelihood(tf.constant(table.targets), logits)))

    def batch_similarity(self, picked: np.ndarray) -> float:
        """Mean pairwise cosine similarity of the pool galaxies at record positions ``picked``: near 1, a
        redundant batch of one kind of galaxy."""
        rows = self.features["train"][picked].astype(np.float64)
        rows /= np.clip(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12, None)
        if len(rows) < 2:
            return float("nan")
        similarity = rows @ rows.T
        return float((similarity.sum() - np.trace(similarity)) / (len(rows) * (len(rows) - 1)))


Learner = ImageLearner | FeatureLearner

FEATURES = "features.npz"
EMBED_BATCH = 256


def embed_split(model: VoteModel, data: Path, split: str, questions: Sequence[str], seed: int,
                progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Every record of a split through the representation's trunk, un-augmented, in record order: its features
    (records, width) float32, and its own heads' mean rho (records, answers) for ``questions`` (no dropout)."""
    sampler = model.sampler(1, False, seed)
    heads = [h for h in model.heads if h.question in questions]
    features, rho = [], {h.question: [] for h in heads}
    for batch in RecordSource(data, split).batches(EMBED_BATCH):
        trunk = sampler.features(batch.images, batch.indices)
        features.append(trunk.numpy().astype(np.float32))
        logits = sampler.logits_from_features(trunk, batch.indices, rate=0.0)
        for head in heads:
            rho[head.question].append(head.rho(logits).numpy()[:, 0])
        if progress:
            progress(len(batch.ids))
    return np.concatenate(features), {q: np.concatenate(r) for q, r in rho.items()}


def write_features(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    with replaced_atomically(path, ".npz") as temporary:
        np.savez(temporary, **arrays)


def read_features(path: Path) -> dict[str, np.ndarray]:
    """A campaign's cached features (plain arrays: never unpickled)."""
    with np.load(path, allow_pickle=False) as stored:
        return {key: stored[key] for key in stored.files}


def standardised(features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every split scaled by the pool's (train split's) per-feature mean and spread; constant features stay 0."""
    mean, spread = features["train"].mean(axis=0), features["train"].std(axis=0)
    return {split: ((rows - mean) / np.where(spread > 0, spread, 1)).astype(np.float32)
            for split, rows in features.items()}
