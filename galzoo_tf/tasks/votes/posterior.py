"""Posteriors of vote models: MC dropout x test-time augmentation samples of rho, and of the vote count k.

Sampling is one batched graph over galaxies x passes: each galaxy's image is augmented T
times (its own seeds), the copies go through the trunk (the model up to its MC dropout
layer) together, each gets its own dropout mask, and the logits come back as (galaxies, T,
outputs). Without test-time augmentation the trunk runs once per galaxy and only the
dropout and output layers run T times: the same samples (the trunk is deterministic and the
masks are keyed by galaxy and pass), about T times cheaper.

The posterior of k given N is the mixture (1/T) sum_t Binomial(k | N, rho_t) (Walmsley et
al. 2019, eq. 8-9); the single-network posterior is Binomial(k | N, mean rho).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from galzoo_tf.data.augment import AugmentConfig, augment
from galzoo_tf.models import MCDropout

tfd = tfp.distributions
DROPOUT_LAYER, LOGITS_LAYER = "mc_dropout", "logits"


def dropout_layer(model: keras.Model) -> MCDropout:
    layer = model.get_layer(DROPOUT_LAYER)
    if not isinstance(layer, MCDropout):
        raise ValueError(f"{model.name}: layer {DROPOUT_LAYER!r} is not an MCDropout layer")
    return layer


@dataclass
class Sampler:
    """MC dropout sampler of a vote model: logits (galaxies, passes, outputs) for a batch of raw images.

    Every random draw is keyed by (seed, galaxy index): a galaxy gets the same samples
    whatever the batch it falls in, so a resumed prediction equals an uninterrupted one.
    ``rate`` is the test-time dropout rate (default: the model's) and ``spread`` scales each
    galaxy's logit samples about their mean (1: as drawn); calibration tunes both.
    """

    model: keras.Model
    augmentation: AugmentConfig
    passes: int = 30
    tta: bool = True
    seed: int = 0
    rate: float | None = None
    spread: float = 1.0

    def __post_init__(self) -> None:
        if self.passes < 1:
            raise ValueError(f"passes must be at least 1, not {self.passes}")
        dropout = dropout_layer(self.model)
        self.rate = float(dropout.rate if self.rate is None else self.rate)
        if not 0 <= self.rate < 1:
            raise ValueError(f"the dropout rate must be in [0, 1), not {self.rate}")
        self.trunk = keras.Model(self.model.inputs, dropout.input, name="trunk")
        self.output_layer = self.model.get_layer(LOGITS_LAYER)
        self._compiled_features = tf.function(self._features, reduce_retracing=True)
        self._compiled_head = tf.function(self._head, reduce_retracing=True)

    def _keys(self, indices: tf.Tensor) -> tf.Tensor:
        """One (seed, galaxy index) key per galaxy of the batch."""
        return tf.stack([tf.fill(tf.shape(indices), tf.constant(self.seed, tf.int64)), indices], axis=1)

    def _augmented(self, images: tf.Tensor, keys: tf.Tensor) -> tf.Tensor:
        """(galaxies, ...) raw images -> (galaxies * passes, size, size, channels), passes of a galaxy together."""
        config = self.augmentation if self.tta else self.augmentation.deterministic()
        pass_keys = tf.map_fn(lambda key: tf.cast(tf.random.experimental.stateless_split(
            tf.random.experimental.stateless_fold_in(key, 0), self.passes), tf.int64), keys)
        channels = 1 if config.greyscale else images.shape[-1]
        return tf.map_fn(lambda args: augment(args[0], args[1], config),
                         (tf.repeat(images, self.passes, axis=0), tf.reshape(pass_keys, [-1, 2])),
                         fn_output_signature=tf.TensorSpec([config.image_size, config.image_size, channels],
                                                           tf.float32))

    def _dropout(self, features: tf.Tensor, keys: tf.Tensor, rate: tf.Tensor) -> tf.Tensor:
        """Inverted dropout at ``rate`` with one mask per (galaxy, pass), drawn from the galaxy's key."""
        width = features.shape[-1]
        rate = tf.cast(rate, tf.float32)  # masks are drawn in float32 whatever the model's compute dtype
        keep = tf.map_fn(lambda key: tf.random.stateless_uniform(
            [self.passes, width], tf.random.experimental.stateless_fold_in(key, 1)) >= rate, keys,
            fn_output_signature=tf.bool)
        scale = tf.cast(tf.cast(tf.reshape(keep, [-1, width]), tf.float32) / (1 - rate), features.dtype)
        return features * scale

    def _features(self, images: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
        if self.tta:
            return self.trunk(self._augmented(images, self._keys(indices)), training=False)
        # the trunk is deterministic: run it once per galaxy, repeat its features per pass
        config = self.augmentation.deterministic()
        once = tf.map_fn(lambda image: augment(image, tf.zeros([2], tf.int64), config), images,
                         fn_output_signature=tf.float32)
        return tf.repeat(self.trunk(once, training=False), self.passes, axis=0)

    def _head(self, features: tf.Tensor, indices: tf.Tensor, rate: tf.Tensor, spread: tf.Tensor) -> tf.Tensor:
        samples = self.output_layer(self._dropout(features, self._keys(indices), rate))
        samples = tf.reshape(tf.cast(samples, tf.float32), [tf.size(indices), self.passes, -1])
        centre = tf.reduce_mean(samples, axis=1, keepdims=True)
        return centre + spread * (samples - centre)

    def features(self, images, indices: np.ndarray | None = None) -> tf.Tensor:
        """Trunk features of every pass, (galaxies * passes, width): what dropout acts on."""
        return self._compiled_features(tf.convert_to_tensor(images), _indices(indices, len(images)))

    def logits_from_features(self, features: tf.Tensor, indices: np.ndarray | None = None,
                             rate: float | None = None, spread: float | None = None) -> tf.Tensor:
        """Dropout (at ``rate``, default the sampler's), the output layer on trunk features, and the samples'
        spread about each galaxy's mean logit scaled by ``spread`` (default the sampler's)."""
        return self._compiled_head(features, _indices(indices, len(features) // self.passes),
                                   tf.constant(self.rate if rate is None else rate, features.dtype),
                                   tf.constant(self.spread if spread is None else spread, tf.float32))

    def logits(self, images, indices: np.ndarray | None = None) -> tf.Tensor:
        """Logits of every pass, (galaxies, passes, outputs); ``indices`` (default 0..) key each galaxy's draws."""
        return self.logits_from_features(self.features(images, indices), indices)


def _indices(indices: np.ndarray | None, count: int) -> tf.Tensor:
    return tf.constant(np.arange(count) if indices is None else np.asarray(indices), tf.int64)


def pass_count_probabilities(rho: np.ndarray, total_votes: np.ndarray) -> np.ndarray:
    """Each pass's Binomial(k | N, rho_t) on k = 0..max N, (galaxies, T, max N + 1); zero where k > N."""
    total_votes = np.asarray(total_votes)
    k = np.arange(int(total_votes.max()) + 1, dtype=np.float64)
    totals = tf.constant(total_votes.astype(np.float64)[:, None, None])
    probabilities = tfd.Binomial(total_count=totals, probs=tf.convert_to_tensor(rho, tf.float64)[..., None]).prob(k)
    return np.where(k <= total_votes[:, None, None], probabilities.numpy(), 0.0)


def count_probabilities(rho: np.ndarray, total_votes: np.ndarray) -> np.ndarray:
    """p(k | N) = (1/T) sum_t Binomial(k | N, rho_t) on k = 0..max N (eq. 8-9), (galaxies, max N + 1)."""
    return pass_count_probabilities(rho, total_votes).mean(axis=1)


@dataclass(frozen=True)
class CountSummary:
    """Summary of p(k | N) per galaxy: mean, most likely k, and a central interval."""

    mean: np.ndarray
    mode: np.ndarray
    low: np.ndarray
    high: np.ndarray


def summarise_counts(probabilities: np.ndarray, coverage: float = 0.9) -> CountSummary:
    """Mean, most likely k and the central ``coverage`` interval of each row of ``count_probabilities``."""
    k = np.arange(probabilities.shape[1])
    cumulative = np.cumsum(probabilities, axis=1)
    tail = (1 - coverage) / 2
    low = (cumulative < tail - 1e-12).sum(axis=1)
    high = (cumulative < 1 - tail - 1e-12).sum(axis=1)
    return CountSummary(probabilities @ k, probabilities.argmax(axis=1), low, high)
