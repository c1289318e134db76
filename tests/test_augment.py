"""The augmentation graph: per-image randomness from a seed, and each transform's invariants."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from galzoo_tf.data.augment import AugmentConfig, augment, crop, flip, greyscale, rotate, shrink

RNG = np.random.default_rng(0)
IMAGE = tf.constant(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8))
FLOAT = tf.image.convert_image_dtype(IMAGE, tf.float32)


def seed(i: int) -> tf.Tensor:
    return tf.constant([0, i], tf.int64)


@pytest.mark.parametrize("i", range(4))
def test_flips_keep_the_pixel_multiset_exactly(i):
    flipped = flip(FLOAT, tf.random.experimental.stateless_split(seed(i), 2)).numpy()
    np.testing.assert_array_equal(np.sort(flipped, axis=None), np.sort(FLOAT.numpy(), axis=None))


def test_rotation_uses_only_input_values_and_keeps_the_histogram():
    smooth = tf.constant(np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))[..., None])
    for i in range(5):
        rotated = rotate(smooth, seed(i)).numpy()
        assert set(np.unique(rotated)) <= set(np.unique(smooth.numpy()))  # nearest neighbour: no new values
        assert rotated.mean() == pytest.approx(smooth.numpy().mean(), abs=0.06)
    angles = {float(np.abs(rotate(smooth, seed(i)).numpy() - smooth.numpy()).sum()) for i in range(5)}
    assert len(angles) == 5  # a different angle per image


def test_central_crop_for_bar_is_exactly_the_centre():
    cropped = crop(FLOAT, seed(1), (2.0, 2.0), central=True).numpy()
    np.testing.assert_array_equal(cropped, FLOAT.numpy()[16:48, 16:48])
    for i in range(3):
        np.testing.assert_array_equal(crop(FLOAT, seed(i), (2.0, 2.0), central=True).numpy(), cropped)


def test_random_crop_for_smooth_moves_and_keeps_its_size():
    crops = [crop(FLOAT, seed(i), (1.1, 1.3), central=False).numpy() for i in range(6)]
    assert all(64 / 1.3 - 1 <= c.shape[0] <= 64 / 1.1 + 1 and c.shape[0] == c.shape[1] for c in crops)
    assert len({c.tobytes() for c in crops}) == 6


def test_output_shape_dtype_and_determinism():
    config = AugmentConfig(image_size=32, zoom=(1.7, 1.9), central_crop=True)
    first = augment(IMAGE, seed(3), config)
    assert first.shape == (32, 32, 1) and first.dtype == tf.float32
    np.testing.assert_array_equal(first.numpy(), augment(IMAGE, seed(3), config).numpy())
    assert not np.array_equal(first.numpy(), augment(IMAGE, seed(4), config).numpy())
    coloured = augment(IMAGE, seed(3), AugmentConfig(image_size=32, greyscale=False))
    assert coloured.shape == (32, 32, 3)
    assert abs(float(tf.reduce_mean(first))) < 1e-4 and float(tf.math.reduce_std(first)) == pytest.approx(1, abs=1e-3)


def test_greyscale_is_the_channel_mean_and_the_deterministic_version_has_no_randomness():
    config = AugmentConfig(image_size=64, zoom=(1.0, 1.0), standardise=False).deterministic()
    out = augment(IMAGE, seed(0), config).numpy()
    np.testing.assert_allclose(out[..., 0], FLOAT.numpy().mean(axis=-1), atol=1e-5)
    np.testing.assert_array_equal(out, augment(IMAGE, seed(99), config).numpy())


def test_central_window_shortcut_equals_rotating_the_whole_image():
    config = AugmentConfig(image_size=40, zoom=(1.7, 1.9), central_crop=True, contrast=(1.0, 1.0),
                           standardise=False)
    big = tf.constant(RNG.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    for i in range(4):
        seeds = tf.random.experimental.stateless_split(seed(i), num=5)
        image = shrink(greyscale(big), 76)  # ceil(40 * 1.9)
        image = rotate(flip(image, seeds[:2]), seeds[2])
        expected = tf.image.resize(crop(image, seeds[4], config.zoom, True), [40, 40], method="area")
        np.testing.assert_allclose(augment(big, seed(i), config).numpy(), expected.numpy(), atol=1e-6)
