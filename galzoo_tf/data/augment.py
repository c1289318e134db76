"""The augmentation graph of Walmsley et al. (2019, §2.5.3), in pure TF ops, one random draw per image.

Order: greyscale, random flips, rotation by U(0, 90°) with nearest-neighbour interpolation,
contrast U(98 %, 102 %), a crop at zoom U(zoom range) (random position for ``smooth``,
central for ``bar``), then resize to the target size. Every random parameter comes from
stateless ops keyed by a per-image seed, so a given (seed, epoch, image) always gets the
same augmentation, in any process: training is reproducible and resumable, and test-time
augmentation uses its own seed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import tensorflow as tf


@dataclass(frozen=True)
class AugmentConfig:
    """What the graph does; stored with the model so prediction uses the same transforms."""

    image_size: int = 128
    greyscale: bool = True
    zoom: tuple[float, float] = (1.1, 1.3)
    central_crop: bool = False
    flip: bool = True
    rotate: bool = True
    contrast: tuple[float, float] = (0.98, 1.02)
    standardise: bool = True  # zero mean, unit variance per image: much faster optimisation (not in the paper)
    arcsinh: bool = False  # arcsinh of the pixel values (GaMPEN §5): linear near the noise, logarithmic in cores

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict) -> AugmentConfig:
        return cls(**{**raw, "zoom": tuple(raw["zoom"]), "contrast": tuple(raw["contrast"])})

    @classmethod
    def for_parameters(cls, image_size: int, zoom: float = 1.0, greyscale: bool = True) -> AugmentConfig:
        """Only what leaves size and flux unchanged: a fixed central crop (1/zoom of the frame, the same for
        every image, so arcsec per pixel stays fixed), flips, then the arcsinh stretch; every band kept
        unless ``greyscale``."""
        return cls(image_size, greyscale, (zoom, zoom), True, True, False, (1.0, 1.0), False, True)

    def deterministic(self) -> AugmentConfig:
        """The same geometry without randomness: no flips or rotation, mean zoom, central crop."""
        middle = sum(self.zoom) / 2
        return AugmentConfig(self.image_size, self.greyscale, (middle, middle), True, False, False, (1.0, 1.0),
                             self.standardise, self.arcsinh)


def to_float(image: tf.Tensor) -> tf.Tensor:
    """uint8 0-255 to float32 0-1 (float images pass through)."""
    return tf.image.convert_image_dtype(image, tf.float32) if image.dtype == tf.uint8 else image


def greyscale(image: tf.Tensor) -> tf.Tensor:
    """Channel mean as float32 0-1 (the paper's greyscale: colour must not leak morphology).

    Summing per-channel slices is about 3x faster on CPU than a reduction over a last axis of 3.
    """
    channels = image.shape[-1]
    grey = tf.add_n([tf.cast(image[..., c], tf.float32) for c in range(channels)]) / channels
    return (grey / 255.0 if image.dtype == tf.uint8 else grey)[..., None]


def flip(image: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
    image = tf.image.stateless_random_flip_left_right(image, seeds[0])
    return tf.image.stateless_random_flip_up_down(image, seeds[1])


def rotate(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Rotate about the centre by U(0, 90°), nearest-neighbour interpolation, reflected edges."""
    angle = tf.random.stateless_uniform([], seed, 0.0, math.pi / 2)
    height, width = tf.cast(tf.shape(image)[0], tf.float32), tf.cast(tf.shape(image)[1], tf.float32)
    cos, sin = tf.cos(angle), tf.sin(angle)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    # output (x, y) samples input (cos x - sin y + a, sin x + cos y + b): a rotation about the centre
    transform = tf.stack([cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy, 0.0, 0.0])
    rotated = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform[None], output_shape=tf.shape(image)[:2],
        fill_value=0.0, interpolation="NEAREST", fill_mode="REFLECT")
    return rotated[0]


def contrast(image: tf.Tensor, seed: tf.Tensor, low: float, high: float) -> tf.Tensor:
    factor = tf.random.stateless_uniform([], seed, low, high)
    mean = tf.reduce_mean(image, axis=[0, 1], keepdims=True)
    return (image - mean) * factor + mean


def crop(image: tf.Tensor, seed: tf.Tensor, zoom: tuple[float, float], central: bool,
         frame: int | None = None) -> tf.Tensor:
    """Square crop of side frame/zoom, zoom ~ U(zoom); at the centre or at a uniform random position.

    ``frame`` is the side of the whole cutout the zoom refers to (default: the image's own side).
    """
    size = tf.shape(image)[0]
    reference = tf.cast(size if frame is None else frame, tf.float32)
    factor = tf.random.stateless_uniform([], seed, zoom[0], zoom[1]) if zoom[1] > zoom[0] else tf.constant(zoom[0])
    side = tf.cast(tf.round(reference / factor), tf.int32)
    slack = size - side
    if central:
        top = left = slack // 2
    else:
        offsets = tf.random.stateless_uniform([2], tf.random.experimental.stateless_fold_in(seed, 1), 0, slack + 1,
                                              dtype=tf.int32)
        top, left = offsets[0], offsets[1]
    return image[top:top + side, left:left + side]


def shrink(image: tf.Tensor, side: int) -> tf.Tensor:
    """Downscale (area averaging) to the largest size the final crop can use, so the rest works on fewer pixels."""
    if image.shape[0] is not None and image.shape[0] <= side:
        return image
    return tf.image.resize(image, [side, side], method="area")


def centre_window(image: tf.Tensor, min_zoom: float) -> tf.Tensor:
    """For central crops: keep only the centre that any rotation of the final crop can reach (side x sqrt 2).

    Rotation is about the image centre, so pixels outside this window never reach a central crop.
    """
    size = image.shape[0]
    if size is None:
        return image
    window = math.ceil(size / min_zoom * math.sqrt(2)) + 2
    window += (size - window) % 2  # same centre as the full image, to the pixel
    if window >= size:
        return image
    start = (size - window) // 2
    return image[start:start + window, start:start + window]


def augment(image: tf.Tensor, seed: tf.Tensor, config: AugmentConfig) -> tf.Tensor:
    """One image (H, W, C) -> augmented float32 (size, size, 1 or C), all random draws from ``seed``."""
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=5)
    image = greyscale(image) if config.greyscale else to_float(image)
    image = shrink(image, math.ceil(config.image_size * config.zoom[1]))
    frame = image.shape[0]  # the zoom is relative to the whole cutout, before any window is cut out
    if config.central_crop:
        image = centre_window(image, config.zoom[0])
    if config.flip:
        image = flip(image, seeds[:2])
    if config.rotate:
        image = rotate(image, seeds[2])
    if config.contrast != (1.0, 1.0):
        image = contrast(image, seeds[3], *config.contrast)
    image = crop(image, seeds[4], config.zoom, config.central_crop, frame)
    image = tf.image.resize(image, [config.image_size, config.image_size], method="area")  # antialiased, cheap
    if config.arcsinh:  # after the area resize, which averages flux linearly
        image = tf.asinh(image)
    if config.standardise:
        image = tf.image.per_image_standardization(image)
    channels = 1 if config.greyscale else None
    return tf.ensure_shape(image, [config.image_size, config.image_size, channels])
