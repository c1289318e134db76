"""Posteriors of vote models: MC dropout x test-time augmentation samples of rho, and of the vote count k.

Sampling is one batched graph over galaxies x passes: each galaxy's image is augmented T
times (its own seeds), the copies go through the model together with the MC dropout layer
switched on, and the logits come back as (galaxies, T, outputs). Without test-time
augmentation the convolutional trunk runs once per galaxy and only the dropout and output
layers run T times, which gives exactly the same samples for this architecture when the
same dropout masks are drawn (the trunk is deterministic) and is about T times cheaper.

The posterior of k given N is the mixture (1/T) sum_t Binomial(k | N, rho_t) (Walmsley et
al. 2019, eq. 8-9); the single-network posterior is Binomial(k | N, mean rho).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from galzoo_tf.augment import AugmentConfig, augment
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
    """MC dropout sampler of a vote model: logits (galaxies, passes, outputs) for a batch of raw images."""

    model: keras.Model
    augmentation: AugmentConfig
    passes: int = 30
    tta: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        dropout = dropout_layer(self.model)
        dropout.sampling = True  # dropout on; everything else stays in inference mode
        self.trunk = keras.Model(self.model.inputs, dropout.input, name="trunk")
        self.dropout, self.output_layer = dropout, self.model.get_layer(LOGITS_LAYER)

    def _images(self, images: tf.Tensor, first_index: int) -> tf.Tensor:
        """(galaxies, ...) raw images -> (galaxies * passes, size, size, channels), pass-major within a galaxy."""
        count = tf.shape(images)[0]
        galaxy = tf.repeat(tf.range(count, dtype=tf.int64) + first_index, self.passes)
        passes = tf.tile(tf.range(self.passes, dtype=tf.int64), [count])
        keys = tf.stack([tf.fill(tf.shape(galaxy), tf.constant(self.seed, tf.int64)), galaxy * 100_003 + passes], 1)
        config = self.augmentation if self.tta else self.augmentation.deterministic()
        return tf.map_fn(lambda args: augment(args[0], args[1], config),
                         (tf.repeat(images, self.passes, axis=0), keys),
                         fn_output_signature=tf.TensorSpec(
                             [config.image_size, config.image_size, 1 if config.greyscale else images.shape[-1]],
                             tf.float32))

    def logits(self, images: tf.Tensor, first_index: int = 0) -> tf.Tensor:
        """Logits of every pass for a batch of raw images; ``first_index`` keys the augmentations."""
        count = tf.shape(images)[0]
        if self.tta:
            samples = self.model(self._images(images, first_index), training=False)
        else:
            config = self.augmentation.deterministic()
            once = tf.map_fn(lambda image: augment(image, tf.constant([0, 0], tf.int64), config), images,
                             fn_output_signature=tf.float32)
            features = tf.repeat(self.trunk(once, training=False), self.passes, axis=0)
            samples = self.output_layer(self.dropout(features, training=False))
        return tf.reshape(samples, [count, self.passes, -1])


def mixture_posterior(rho: np.ndarray, total_votes: np.ndarray) -> tfd.MixtureSameFamily:
    """p(k | N) = (1/T) sum_t Binomial(k | N, rho_t) for each galaxy; rho has shape (galaxies, T)."""
    rho = tf.convert_to_tensor(rho, tf.float64)
    totals = tf.cast(tf.convert_to_tensor(total_votes), tf.float64)[:, None]
    mixture = tfd.Categorical(logits=tf.zeros_like(rho))
    return tfd.MixtureSameFamily(mixture, tfd.Binomial(total_count=totals * tf.ones_like(rho), probs=rho))


def count_probabilities(rho: np.ndarray, total_votes: np.ndarray) -> np.ndarray:
    """p(k) on k = 0..max N, shape (galaxies, max N + 1); zero where k > N of the galaxy."""
    total_votes = np.asarray(total_votes)
    k = np.arange(int(total_votes.max()) + 1, dtype=np.float64)
    posterior = mixture_posterior(rho, total_votes)
    probabilities = np.exp(posterior.log_prob(np.broadcast_to(k[:, None], (k.size, len(total_votes)))).numpy()).T
    return np.where(k[None] <= total_votes[:, None], probabilities, 0.0)


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
