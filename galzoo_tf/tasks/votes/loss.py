"""The vote likelihood (Walmsley et al. 2019, eq. 6): -log Binomial(k | N, rho), masked where N = 0.

Targets travel as one tensor per batch: the k of every output, then the N of every output.
TFP computes the log-probability from logits, stable at extreme rho; a question that was
never asked (N = 0) contributes nothing.
"""

from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def negative_log_likelihood(y_true: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Per-galaxy -log p(k | N, rho) summed over outputs; outputs whose N is 0 are masked out."""
    size = tf.shape(logits)[-1]
    counts, totals = y_true[..., :size], y_true[..., size:]
    logits = tf.cast(logits, tf.float32)
    log_prob = tfd.Binomial(total_count=totals, logits=logits).log_prob(counts)
    return -tf.reduce_sum(tf.where(totals > 0, log_prob, tf.zeros_like(log_prob)), axis=-1)


@keras.saving.register_keras_serializable(package="galzoo")
class BinomialVoteLoss(keras.losses.Loss):
    """Keras loss: mean over galaxies of the masked binomial negative log-likelihood (eq. 6).

    Keras divides the per-galaxy sum by the global batch size, so the loss is right under
    tf.distribute strategies too.
    """

    def __init__(self, name: str = "binomial_vote_loss", **kwargs) -> None:
        super().__init__(name=name, **kwargs)

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        return negative_log_likelihood(y_true, y_pred)


@keras.saving.register_keras_serializable(package="galzoo")
class MemberVoteLoss(keras.losses.Loss):
    """Keras loss for an ensemble's logits (galaxies, members, outputs): each member's binomial negative
    log-likelihood, averaged over members, so every member learns from the votes alone, independently."""

    def __init__(self, name: str = "member_vote_loss", **kwargs) -> None:
        super().__init__(name=name, **kwargs)

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(negative_log_likelihood(y_true[:, None, :], y_pred), axis=-1)
