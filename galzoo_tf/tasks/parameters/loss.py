"""GaMPEN's likelihood (Ghosh et al. 2022, eq. 8-11): a multivariate normal of the scaled parameters.

The 9 network outputs are 3 means, 3 log-variances and 3 off-diagonals of a unit
lower-triangular L; Sigma = L D L^T is positive definite by construction. L2 regularisation
is not part of this loss: it lives on the layers (``model.losses``), and every training
loop adds it.
"""

from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


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
