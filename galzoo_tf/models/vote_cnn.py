"""The vote model: an image in, the logits of rho for every output of the heads out.

``paper``: the CNN of Walmsley et al. (2019, Figure 3), two 3x3 conv layers of 32, max-pool,
two of 32, max-pool, two of 16, a 128-unit dense layer (linear, as the paper; models trained
before galzoo followed the paper here, the shipped base model among them, have ReLU), dropout
and the output layer.
``efficientnet`` and ``resnet50``: EfficientNetB0 and ResNet50 from keras.applications, untrained
(ImageNet weights cannot be downloaded where galzoo is tested), global-average-pooled: for GPUs,
and the ResNet50 baseline of the GZ2 lab report docs/kaggle.md cites. No Lambda layers: everything saves
to ``.keras`` and loads with ``safe_mode=True``.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from galzoo_tf.models.blocks import MCDropout

DENSE_ACTIVATIONS = ("linear", "relu")
PAPER_DENSE, LEGACY_DENSE = "linear", "relu"  # the paper's 128-unit layer, and galzoo's before it followed


def _paper_trunk(inputs: keras.KerasTensor, dense_activation: str = PAPER_DENSE) -> keras.KerasTensor:
    x = inputs
    for filters, pool in ((32, True), (32, True), (16, False)):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        if pool:
            x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    return keras.layers.Dense(128, activation=dense_activation)(x)


def _application_trunk(constructor: Callable[..., keras.Model]) -> Callable[..., keras.KerasTensor]:
    """A keras.applications network, untrained and without its classifier, pooled to one feature vector."""

    def trunk(inputs: keras.KerasTensor, dense_activation: str = PAPER_DENSE) -> keras.KerasTensor:
        network = constructor(include_top=False, weights=None, input_tensor=inputs)
        return keras.layers.GlobalAveragePooling2D()(network.output)

    return trunk


TRUNKS = {"paper": _paper_trunk, "efficientnet": _application_trunk(keras.applications.EfficientNetB0),
          "resnet50": _application_trunk(keras.applications.ResNet50)}
ARCHITECTURES = tuple(TRUNKS)


def build_vote_model(input_shape: tuple[int, int, int], outputs: int, dropout: float = 0.5,
                     architecture: str = "paper", dense_activation: str = PAPER_DENSE) -> keras.Model:
    """Functional model: image -> trunk -> MC dropout -> logits (float32 even under mixed precision)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose from {', '.join(ARCHITECTURES)}")
    inputs = keras.Input(shape=input_shape, name="image")
    features = TRUNKS[architecture](inputs, dense_activation)
    features = MCDropout(dropout, name="mc_dropout")(features)
    logits = keras.layers.Dense(outputs, dtype="float32", name="logits")(features)
    return keras.Model(inputs, logits, name=f"vote_{architecture}")


def rebuild_vote_model(trained: keras.Model, config: dict) -> keras.Model:
    """A freshly initialised model of a trained one's architecture (its input, outputs, and the dropout rate
    and trunk of its training ``config``): to ship its weights in another precision, or as a random baseline."""
    return build_vote_model(tuple(trained.input_shape[1:]), int(trained.output_shape[-1]), config["dropout"],
                            config["architecture"], config.get("dense_activation") or LEGACY_DENSE)
