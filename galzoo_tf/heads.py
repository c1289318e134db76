"""Model outputs <-> TFP Binomial distributions of vote counts (Walmsley et al. 2019, §2.1-2.2).

A question's head reads the logits of rho, one per answer one-vs-rest (one logit for a
two-answer question: the first answer's). The likelihood of the observed votes is
k ~ Binomial(N, rho); the loss is its negative log, computed by TFP from logits (stable at
extreme rho). Several heads side by side make the multi-question model; a question that
was never asked (N = 0) contributes nothing.

Targets travel as one tensor per batch: the k of every output, then the N of every output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from galzoo_tf.schema import Question, Schema

tfd = tfp.distributions


@dataclass(frozen=True)
class BinomialHead:
    """One question: which answers have an output logit, and where they sit in the model output."""

    question: str
    answers: tuple[str, ...]  # answers with their own logit (all but the last of a 2-answer question)
    all_answers: tuple[str, ...]
    offset: int  # first output column of this head

    @classmethod
    def for_question(cls, question: Question, offset: int = 0) -> BinomialHead:
        names = question.answer_names
        return cls(question.name, names[:1] if len(names) == 2 else names, names, offset)

    @property
    def size(self) -> int:
        return len(self.answers)

    def count_keys(self) -> list[str]:
        return [f"{self.question}/{a}/count" for a in self.answers]

    @property
    def total_key(self) -> str:
        return f"{self.question}/total"

    def logits(self, outputs: tf.Tensor) -> tf.Tensor:
        return outputs[..., self.offset:self.offset + self.size]

    def rho(self, outputs: tf.Tensor) -> tf.Tensor:
        """Typical answer probability of every answer (a 2-answer question's second is 1 - rho)."""
        rho = tf.sigmoid(self.logits(outputs))
        return tf.concat([rho, 1 - rho], axis=-1) if len(self.all_answers) == 2 else rho

    def distribution(self, outputs: tf.Tensor, total_votes: tf.Tensor) -> tfd.Binomial:
        """Binomial(N, rho) of the votes k for each answer with a logit; N broadcasts over answers."""
        total = tf.cast(total_votes, tf.float32)[..., None]
        return tfd.Binomial(total_count=total, logits=tf.cast(self.logits(outputs), tf.float32))


def heads_for(schema: Schema, questions: Sequence[str]) -> list[BinomialHead]:
    """Heads laid side by side in the output, in the order given."""
    heads, offset = [], 0
    for name in questions:
        head = BinomialHead.for_question(schema.question(name), offset)
        heads.append(head)
        offset += head.size
    return heads


def output_size(heads: Sequence[BinomialHead]) -> int:
    return sum(head.size for head in heads)


def targets(features: dict[str, tf.Tensor], heads: Sequence[BinomialHead]) -> tf.Tensor:
    """Target tensor of one record: k of every output, then N of every output (float32)."""
    counts = [features[key] for head in heads for key in head.count_keys()]
    totals = [features[head.total_key] for head in heads for _ in head.answers]
    return tf.cast(tf.stack(counts + totals), tf.float32)


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


PARAMETER_OUTPUTS = 9  # 3 means, 3 log-variances, 3 off-diagonals of L (GaMPEN §4.3)


def scale_tril(outputs: tf.Tensor) -> tf.Tensor:
    """Cholesky factor L D^(1/2) of Sigma = L D L^T from the 6 covariance outputs (GaMPEN eq. 9-11).

    L is unit lower-triangular (off-diagonals from outputs 6-8: sigma_21, sigma_31, sigma_32)
    and D = exp(outputs 3-5), so the factor's diagonal is exp(s_i / 2) > 0 for any outputs:
    Sigma is positive definite by construction.
    """
    outputs = tf.cast(outputs, tf.float32)
    log_variance, below = outputs[..., 3:6], outputs[..., 6:9]
    zero = tf.zeros_like(below[..., 0])
    one = tf.ones_like(zero)
    unit_lower = tf.stack([tf.stack([one, zero, zero], -1),
                           tf.stack([below[..., 0], one, zero], -1),
                           tf.stack([below[..., 1], below[..., 2], one], -1)], axis=-2)
    return unit_lower * tf.exp(0.5 * log_variance)[..., None, :]  # L @ diag(sqrt(D)): scales L's columns


def parameter_distribution(outputs: tf.Tensor) -> tfd.MultivariateNormalTriL:
    """N(mu, Sigma) of the scaled parameters from the 9 outputs; log_prob solves triangular systems only."""
    return tfd.MultivariateNormalTriL(loc=tf.cast(outputs[..., :3], tf.float32), scale_tril=scale_tril(outputs))


@keras.saving.register_keras_serializable(package="galzoo")
class ParameterLoss(keras.losses.Loss):
    """Keras loss: mean over galaxies of -log N(y | mu, Sigma) (GaMPEN eq. 8; L2 goes on the layers)."""

    def __init__(self, name: str = "parameter_loss", **kwargs) -> None:
        super().__init__(name=name, **kwargs)

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        return -parameter_distribution(y_pred).log_prob(tf.cast(y_true, tf.float32))
