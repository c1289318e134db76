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
from galzoo_tf.tasks.votes.heads import VoteHead, softmax_groups
from galzoo_tf.tasks.votes.loss import MemberVoteLoss, negative_log_likelihood
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
    head: VoteHead
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
        return compile_votes(model, self.training, [self.head], jit="auto")  # Keras decides: XLA on GPUs, not on CPUs

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


def feature_head(width: int, outputs: int, dropout: float, hidden: int, members: int = 1) -> keras.Model:
    """features -> [Dense(hidden, relu)] -> dropout -> logits: the vote CNN's head on a frozen trunk; or, with
    ``members`` > 1, that many such heads side by side, logits (galaxies, members, outputs), each trained with
    dropout and predicting without (an ensemble, Beluch et al. 2018)."""
    inputs = keras.Input((width,), name="features")

    def branch(suffix: str) -> keras.KerasTensor:
        x = keras.layers.Dense(hidden, activation="relu", name=f"hidden{suffix}")(inputs) if hidden else inputs
        x = MCDropout(dropout, name=f"{DROPOUT_LAYER}{suffix}")(x)
        return keras.layers.Dense(outputs, dtype="float32", name=f"{LOGITS_LAYER}{suffix}")(x)

    if members == 1:
        return keras.Model(inputs, branch(""), name="feature_head")
    stacked = keras.layers.Concatenate(axis=1)([keras.layers.Reshape((1, outputs))(branch(f"_{m}"))
                                                for m in range(members)])
    return keras.Model(inputs, stacked, name="feature_ensemble")


def shared_dropout(model: keras.Model, passes: int, seed: int) -> Callable[[tf.Tensor], tf.Tensor]:
    """features -> MC dropout logits (galaxies, passes, outputs) where pass t drops the same units for every galaxy:
    one weight sample per pass for the whole pool, as joint scores such as EPIG need (and what Gal & Ghahramani's
    weights posterior means); the masks depend only on (seed, pass), so any batching gives the same samples.
    The trunk up to the dropout and the masks are built once, for every batch the function is called on."""
    dropout, output = model.get_layer(DROPOUT_LAYER), model.get_layer(LOGITS_LAYER)
    hidden = keras.Model(model.inputs, dropout.input)
    keep = tf.random.stateless_uniform([passes, dropout.input.shape[-1]], [seed, 1]) >= dropout.rate
    masks = tf.cast(keep, tf.float32) / (1 - dropout.rate)

    def logits(features: tf.Tensor) -> tf.Tensor:
        rows = tf.cast(hidden(features, training=False), tf.float32)
        return tf.einsum("gw,tw,wo->gto", rows, masks, output.kernel) + output.bias

    return logits


@dataclass
class FeatureLearner:
    """An MC-dropout head (or an ensemble of ``members`` heads) trained from scratch for exactly ``steps`` steps on
    the labelled galaxies' features.

    ``features`` holds every record of each split, in record order, standardised by the pool's mean and spread
    (no label is used for that); a table's ``indices`` pick its rows. Samples are drawn from weights shared by
    every galaxy: the passes of MC dropout with shared masks, or the ensemble's members.
    """

    features: dict[str, np.ndarray]
    head: VoteHead
    training: TrainConfig
    steps: int
    hidden: int
    passes: int
    members: int = 1

    def build(self, seed: int, weights: Path | None) -> keras.Model:
        keras.utils.set_random_seed(seed)
        model = feature_head(self.features["train"].shape[1], self.head.size, self.training.dropout, self.hidden,
                             self.members)
        if weights is not None:
            model.load_weights(weights)
        if self.members == 1:
            return compile_votes(model, self.training, [self.head], jit=False)
        model.compile(optimizer=keras.optimizers.Adam(self.training.learning_rate),
                      loss=MemberVoteLoss(softmax_groups([self.head])),
                      jit_compile=False)
        return model

    def fit(self, model: keras.Model, labelled: VoteTable, seed: int) -> float:
        rows = self.features["train"][labelled.indices]
        dataset = tf.data.Dataset.from_tensor_slices((rows, labelled.targets)).shuffle(
            len(rows), seed=seed, reshuffle_each_iteration=True).repeat().batch(self.training.batch_size)
        history = model.fit(dataset, epochs=1, steps_per_epoch=self.steps, verbose=0, shuffle=False).history
        return float(history["loss"][-1])

    def logits(self, model: keras.Model, split: str, wanted: VoteTable, seed: int) -> np.ndarray:
        sample = (lambda rows: model(rows, training=False)) if self.members > 1 else \
            shared_dropout(model, self.passes, seed)
        rows = self.features[split][wanted.indices]
        chunks = [sample(tf.constant(rows[start:start + 8192])).numpy() for start in range(0, len(rows), 8192)]
        samples = self.members if self.members > 1 else self.passes
        return np.concatenate(chunks) if chunks else np.zeros((0, samples, self.head.size), np.float32)

    def loss(self, model: keras.Model, split: str, table: VoteTable, seed: int) -> float:
        """Mean test NLL of the deterministic prediction: dropout off, or the members' mean rho."""
        logits = model(tf.constant(self.features[split][table.indices]), training=False)
        if self.members > 1:
            mean_rho = tf.reduce_mean(self.head.rho(logits), axis=1)[..., :self.head.size]
            logits = tf.constant(self.head.logits_of(mean_rho.numpy()), tf.float32)
        return float(tf.reduce_mean(negative_log_likelihood(tf.constant(table.targets), logits,
                                                            softmax_groups([self.head]))))

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
