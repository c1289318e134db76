"""The vote likelihood (Walmsley et al. 2019, eq. 6), masked where N = 0.

Targets travel as one tensor per batch: the k of every output, then the N of every output.
Outputs of a softmax head (``heads.softmax_groups``) share one Multinomial(N, softmax) of
their question's votes; every other output is its own Binomial(N, sigmoid) (a two-answer
question, or a one-vs-rest head of an older model). TFP computes both from logits, stable at
extreme rho; a question that was never asked (N = 0) contributes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

Groups = Sequence[Sequence[int]]  # (offset, size) of each softmax head


def negative_log_likelihood(y_true: tf.Tensor, logits: tf.Tensor, groups: Groups = ()) -> tf.Tensor:
    """Per-galaxy -log p(k | N, rho) summed over questions; questions whose N is 0 are masked out."""
    size = logits.shape[-1]
    counts, totals = y_true[..., :size], y_true[..., size:]
    logits = tf.cast(logits, tf.float32)
    binomial = np.ones(size, bool)  # outputs outside every softmax group: their own Binomial
    log_prob = tf.zeros_like(logits[..., 0])
    for offset, width in groups:
        columns = slice(offset, offset + width)
        total = totals[..., offset]
        grouped = tfd.Multinomial(total_count=total, logits=logits[..., columns]).log_prob(counts[..., columns])
        log_prob += tf.where(total > 0, grouped, tf.zeros_like(grouped))
        binomial[columns] = False
    single = tfd.Binomial(total_count=totals, logits=logits).log_prob(counts)
    single = tf.where((totals > 0) & tf.constant(binomial), single, tf.zeros_like(single))
    return -(log_prob + tf.reduce_sum(single, axis=-1))


class _GroupedLoss(keras.losses.Loss):
    """A vote loss that knows its softmax heads (saved in its config, so a loaded model trains alike)."""

    def __init__(self, groups: Groups = (), **kwargs) -> None:
        super().__init__(**kwargs)
        self.groups = tuple(tuple(int(v) for v in group) for group in groups)

    def get_config(self) -> dict:
        return {**super().get_config(), "groups": [list(group) for group in self.groups]}


@keras.saving.register_keras_serializable(package="galzoo")
class BinomialVoteLoss(_GroupedLoss):
    """Keras loss: mean over galaxies of the masked vote negative log-likelihood (eq. 6; multinomial for
    softmax heads).

    Keras divides the per-galaxy sum by the global batch size, so the loss is right under
    tf.distribute strategies too.
    """

    def __init__(self, groups: Groups = (), name: str = "binomial_vote_loss", **kwargs) -> None:
        super().__init__(groups, name=name, **kwargs)

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        return negative_log_likelihood(y_true, y_pred, self.groups)


@keras.saving.register_keras_serializable(package="galzoo")
class MemberVoteLoss(_GroupedLoss):
    """Keras loss for an ensemble's logits (galaxies, members, outputs): each member's negative
    log-likelihood, averaged over members, so every member learns from the votes alone, independently."""

    def __init__(self, groups: Groups = (), name: str = "member_vote_loss", **kwargs) -> None:
        super().__init__(groups, name=name, **kwargs)

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(negative_log_likelihood(y_true[:, None, :], y_pred, self.groups), axis=-1)
