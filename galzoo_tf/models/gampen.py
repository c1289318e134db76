"""GaMPEN (Ghosh et al. 2022, §3 and Table 3): a spatial transformer, then a VGG-16-like CNN with MC dropout.

The spatial transformer learns one zoom per image: a localisation network predicts s, the
constrained affine [[s, 0, 0], [0, s, 0]] (eq. 4) maps the output grid into the input, and a
bilinear sampler (eq. 5) reads the input there; s = 1 is the identity, s < 1 a crop. The
CNN follows Table 3: 13 3x3 convolutions in 5 blocks with dropout before every one but the
first, two dense layers with dropout before the second and third, and 9 linear outputs (the
mean and covariance factors of ``heads.parameter_distribution``). ``width`` scales every
layer's filters and units, so tests and CPU runs use a slim copy of the same network.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from galzoo_tf.errors import BadInputError
from galzoo_tf.models.blocks import MCDropout

PARAMETER_OUTPUTS = 9  # 3 means, 3 log-variances, 3 off-diagonals of L (GaMPEN §4.3)

VGG_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # (filters, convolutions) per block
DENSE_UNITS = 4096

STN_LAYER = "stn"  # the spatial transformer: GaMPEN's first layer, which crops each galaxy


def scaled(units: int, width: float) -> int:
    return max(1, round(units * width))


def bilinear_weights(source: tf.Tensor, size: int) -> tf.Tensor:
    """(batch, out) source pixel coordinates -> (batch, out, size) weights max(0, 1 - |x_s - m|) (eq. 5)."""
    pixels = tf.range(size, dtype=source.dtype)
    return tf.nn.relu(1 - tf.abs(source[..., None] - pixels))


@keras.saving.register_keras_serializable(package="galzoo")
class SpatialTransformer(keras.layers.Layer):
    """Learnt per-image zoom: localisation network -> s -> bilinear resampling of the whole image.

    The output grid spans [-1, 1] in normalised coordinates; source = s * target. Because the
    transform has no rotation or shear, eq. 5's double sum factorises into two small matrix
    products (rows, then columns), exact and differentiable in s. Pixels that map outside
    the input (s > 1) read zeros. The localisation network predicts ln s (the paper: s
    itself): a linear s drifted through 0 in training here, mirroring or collapsing images.
    Initialised to the identity: the last layer's kernel and bias are zero, so s = 1. The
    localisation layers pad ("same"), so any input size of 16 px or more works (Table 3
    leaves the padding open).
    """

    def __init__(self, width: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.width = width
        self.localisation = [
            keras.layers.Conv2D(scaled(64, width), 11, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(3, 2, padding="same"),
            keras.layers.Conv2D(scaled(96, width), 9, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(3, 2, padding="same"),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1, kernel_initializer="zeros", bias_initializer="zeros", dtype="float32"),
        ]

    def build(self, input_shape) -> None:
        shape = tuple(input_shape)
        for layer in self.localisation:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def scale(self, images: tf.Tensor) -> tf.Tensor:
        """s per image, (batch,)."""
        x = images
        for layer in self.localisation:
            x = layer(x)
        return tf.exp(tf.cast(x[:, 0], tf.float32))  # s > 0: a linear s crossed 0 and flipped or collapsed images

    def sample(self, images: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
        """The images resampled on the grid scaled by ``scale`` about the centre (same size)."""
        height, width = images.shape[1], images.shape[2]

        def source(size: int) -> tf.Tensor:  # normalised target grid -> source pixel coordinates
            target = tf.linspace(-1.0, 1.0, size)
            return (scale[:, None] * target[None] + 1) * (size - 1) / 2

        rows, columns = bilinear_weights(source(height), height), bilinear_weights(source(width), width)
        images32 = tf.cast(images, tf.float32)
        out = tf.einsum("bin,bnmc,bjm->bijc", rows, images32, columns)
        return tf.cast(out, images.dtype)

    def call(self, images: tf.Tensor) -> tf.Tensor:
        return self.sample(images, self.scale(images))

    def crop(self, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(what the CNN sees, s) for plotting: the learnt crops of a batch."""
        scale = self.scale(images)
        return self.sample(images, scale), scale

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "width": self.width}


def _regulariser(l2: float) -> keras.regularizers.Regularizer | None:
    return keras.regularizers.L2(l2) if l2 > 0 else None


def build_gampen_model(input_shape: tuple[int, int, int], dropout: float = 7e-4, width: float = 1.0,
                       l2: float = 0.0) -> keras.Model:
    """Functional GaMPEN: image -> STN -> VGG trunk (MC dropout throughout) -> 9 float32 outputs."""
    regulariser = _regulariser(l2)
    inputs = keras.Input(shape=input_shape, name="image")
    x = SpatialTransformer(width, name=STN_LAYER)(inputs)
    first, count = True, 0
    for block, (filters, convolutions) in enumerate(VGG_BLOCKS):
        for conv in range(convolutions):
            if not first:
                count += 1
                x = MCDropout(dropout, name=f"mc_dropout_{count}")(x)
            first = False
            x = keras.layers.Conv2D(scaled(filters, width), 3, padding="same", activation="relu",
                                    kernel_regularizer=regulariser, name=f"conv{block + 1}_{conv + 1}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{block + 1}")(x)
    x = keras.layers.Flatten()(x)
    for index in range(2):
        if index:
            count += 1
            x = MCDropout(dropout, name=f"mc_dropout_{count}")(x)
        x = keras.layers.Dense(scaled(DENSE_UNITS, width), activation="relu", kernel_regularizer=regulariser,
                               name=f"dense{index + 1}")(x)
    x = MCDropout(dropout, name=f"mc_dropout_{count + 1}")(x)
    outputs = keras.layers.Dense(PARAMETER_OUTPUTS, dtype="float32", kernel_regularizer=regulariser,
                                 kernel_initializer=keras.initializers.VarianceScaling(0.1), name="parameters")(x)
    return keras.Model(inputs, outputs, name="gampen")


def mc_dropout_layers(model: keras.Model) -> list[MCDropout]:
    return [layer for layer in model.layers if isinstance(layer, MCDropout)]


FREEZABLE = ("stn", "block1", "block2", "block3", "block4", "block5", "dense")


def freeze(model: keras.Model, groups) -> None:
    """Keep layer groups fixed while fine-tuning: the STN, a VGG block (its convolutions) or the dense layers."""
    unknown = [g for g in groups if g not in FREEZABLE]
    if unknown:
        raise BadInputError("bad option", f"--freeze: cannot freeze {', '.join(unknown)}; "
                                          f"choose from {', '.join(FREEZABLE)}")
    prefixes = {"stn": ("stn",), "dense": ("dense1", "dense2"),
                **{f"block{i}": (f"conv{i}_",) for i in range(1, len(VGG_BLOCKS) + 1)}}
    for group in groups:
        for layer in model.layers:
            if layer.name.startswith(prefixes[group]):
                layer.trainable = False
