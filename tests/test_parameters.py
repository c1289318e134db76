"""GaMPEN pieces: targets, MVN head, spatial transformer, sampler, summaries and coverage."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from galzoo_tf.errors import BadInputError
from galzoo_tf.models.gampen import SpatialTransformer, build_gampen_model, freeze
from galzoo_tf.tasks.parameters.calibrate import flag_metrics
from galzoo_tf.tasks.parameters.loss import ParameterLoss, parameter_distribution, scale_tril
from galzoo_tf.tasks.parameters.posterior import (
    LEVELS,
    ParameterSampler,
    highest_density_intervals,
    interval_coverage,
    kde_modes,
    summarise_parameters,
)
from galzoo_tf.tasks.parameters.targets import EPSILON, ParameterScaler


def test_mvn_loss_equals_scipy_logpdf():
    rng = np.random.default_rng(0)
    outputs = rng.normal(size=(20, 9)).astype(np.float32)
    targets = rng.normal(size=(20, 3)).astype(np.float32)
    factor = scale_tril(outputs).numpy().astype(np.float64)
    covariance = factor @ np.transpose(factor, (0, 2, 1))
    expected = [scipy.stats.multivariate_normal(outputs[i, :3], covariance[i]).logpdf(targets[i]) for i in range(20)]
    np.testing.assert_allclose(-ParameterLoss().call(targets, outputs).numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(parameter_distribution(outputs).log_prob(targets).numpy(), expected, rtol=1e-5,
                               atol=1e-5)


def test_ldl_covariance_is_positive_definite_for_any_outputs():
    rng = np.random.default_rng(1)
    outputs = (rng.normal(size=(500, 9)) * np.r_[np.ones(3), 4 * np.ones(3), 10 * np.ones(3)]).astype(np.float32)
    factor = scale_tril(outputs).numpy().astype(np.float64)
    assert np.all(np.diagonal(factor, axis1=1, axis2=2) > 0)
    assert np.all(np.triu(factor, 1) == 0)
    covariance = factor @ np.transpose(factor, (0, 2, 1))
    assert np.all(np.linalg.eigvalsh(covariance) > 0)
    # Sigma = L D L^T with D = exp(log-variances): its determinant is the product of D
    moderate = outputs / np.r_[np.ones(6), 3 * np.ones(3)].astype(np.float32)
    factor = scale_tril(moderate).numpy().astype(np.float64)
    log_det = np.linalg.slogdet(factor @ np.transpose(factor, (0, 2, 1)))[1]
    np.testing.assert_allclose(log_det, moderate[:, 3:6].sum(axis=1), atol=1e-3)


def test_target_transform_round_trips_and_stays_physical():
    rng = np.random.default_rng(2)
    physical = np.column_stack([rng.uniform(EPSILON, 1 - EPSILON, 200), 10 ** rng.uniform(-1, 1, 200),
                                10 ** rng.uniform(1, 5, 200)])
    scaler = ParameterScaler.fit(physical)
    scaled = scaler.forward(physical).numpy()
    np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(scaled.std(axis=0), 1, atol=1e-4)
    np.testing.assert_allclose(scaler.inverse(scaled), physical, rtol=1e-4)
    clipped = scaler.inverse(scaler.forward(np.array([[0.0, 1.0, 10.0], [1.0, 1.0, 10.0]])).numpy())
    np.testing.assert_allclose(clipped[:, 0], [EPSILON, 1 - EPSILON], rtol=1e-3)
    extreme = scaler.inverse(np.array([[-40.0, -40.0, -40.0], [40.0, 40.0, 40.0]]))
    assert np.all((extreme[:, 0] >= 0) & (extreme[:, 0] <= 1)) and np.all(extreme[:, 1:] > 0)
    assert ParameterScaler.from_json(scaler.to_json()) == scaler


def test_stn_is_the_identity_at_initialisation_and_differentiable_in_s():
    images = tf.random.uniform((2, 32, 32, 1), seed=3)
    stn = SpatialTransformer(width=0.125)
    out, scale = stn.crop(images)
    np.testing.assert_allclose(scale.numpy(), 1.0)
    np.testing.assert_allclose(out.numpy(), images.numpy(), atol=1e-5)
    # any s: eq. 5 written out as the double sum over input pixels
    scale = np.array([0.5, 1.3], np.float32)
    target = np.linspace(-1, 1, 32)
    source = (scale[:, None] * target[None] + 1) * 31 / 2  # (batch, 32) pixel coordinates, rows and columns
    kernel = np.maximum(0, 1 - np.abs(source[:, :, None] - np.arange(32)))  # (batch, out, in)
    expected = np.einsum("bin,bnm,bjm->bij", kernel, images.numpy()[..., 0], kernel)
    np.testing.assert_allclose(stn.sample(images, tf.constant(scale)).numpy()[..., 0], expected, atol=1e-5)
    with tf.GradientTape() as tape:
        s = tf.Variable([0.7, 0.9])
        loss = tf.reduce_sum(stn.sample(images, s) ** 2)
    gradient = tape.gradient(loss, s)
    assert gradient is not None and np.all(np.isfinite(gradient.numpy())) and np.any(gradient.numpy() != 0)


def test_gampen_follows_table_3_and_round_trips_in_safe_mode(tmp_path):
    import keras

    model = build_gampen_model((32, 32, 1), dropout=0.1, width=0.125, l2=1e-4)
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    dropouts = [layer for layer in model.layers if "mc_dropout" in layer.name]
    assert len(convolutions) == 13 and len(dropouts) == 12 + 2  # before every conv but the first, FC2 and FC3
    assert model.output_shape == (None, 9) and model.losses  # L2 on the weights
    model.compile(loss=ParameterLoss())
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    images = np.random.default_rng(4).uniform(size=(2, 32, 32, 1)).astype(np.float32)
    np.testing.assert_allclose(loaded(images).numpy(), model(images).numpy(), rtol=1e-6)


def test_freeze_keeps_named_groups_fixed_and_refuses_unknown_groups():
    model = build_gampen_model((32, 32, 1), width=0.125)
    freeze(model, ("stn", "block1"))
    frozen = {layer.name for layer in model.layers if not layer.trainable}
    assert frozen == {"stn", "conv1_1", "conv1_2"}
    with pytest.raises(BadInputError, match="choose from"):
        freeze(model, ("block9",))


def test_highest_density_interval_of_a_gaussian_and_kde_mode_match_references():
    rng = np.random.default_rng(5)
    samples = rng.normal(size=(4, 20000))
    low, high = highest_density_intervals(samples, 0.6827)
    np.testing.assert_allclose(high - low, 2, atol=0.06)  # the shortest 68.27 % interval of N(0, 1) is [-1, 1]
    np.testing.assert_allclose((high + low) / 2, 0, atol=0.1)
    skewed = rng.gamma(2.0, size=(3, 500))
    for row, mode in zip(skewed, kde_modes(skewed), strict=True):
        grid = np.linspace(row.min(), row.max(), 256)
        assert mode == pytest.approx(grid[scipy.stats.gaussian_kde(row)(grid).argmax()])


def test_coverage_is_the_level_when_the_posterior_is_calibrated():
    """Truth drawn from each galaxy's own posterior lies in its p-HDI for a fraction p of galaxies."""
    rng = np.random.default_rng(6)
    galaxies, passes = 4000, 400
    centre, spread = rng.normal(size=(galaxies, 1, 3)), rng.uniform(0.1, 2, (galaxies, 1, 3))
    samples = centre + spread * rng.normal(size=(galaxies, passes, 3))
    truth = centre[:, 0] + spread[:, 0] * rng.normal(size=(galaxies, 3))
    coverage = interval_coverage(summarise_parameters(samples), truth)
    for level in LEVELS:
        tolerance = 4 * np.sqrt(level * (1 - level) / galaxies) + 0.01  # binomial noise + finite samples
        np.testing.assert_allclose(coverage[level], level, atol=tolerance)
    overconfident = interval_coverage(summarise_parameters(centre + 0.5 * (samples - centre)), truth)
    assert np.all(overconfident[LEVELS[0]] < LEVELS[0] - 0.1)


def test_sampler_is_keyed_per_galaxy_and_uses_the_test_time_rate():
    import keras

    from galzoo_tf.data.augment import AugmentConfig

    keras.utils.set_random_seed(0)  # an untrained network: its weights were unseeded, so the test was flaky
    model = build_gampen_model((32, 32, 1), dropout=0.2, width=0.125)
    scaler = ParameterScaler((0.0, 0.0, 5.0), (1.0, 1.0, 1.0))
    images = np.random.default_rng(7).uniform(0, 5, (3, 48, 48, 1)).astype(np.float32)
    sampler = ParameterSampler(model, AugmentConfig.for_parameters(32), scaler, passes=50, seed=1)
    all_three = sampler.samples(images, np.array([10, 11, 12]))
    assert all_three.shape == (3, 50, 3)
    np.testing.assert_array_equal(sampler.samples(images[1:2], np.array([11])), all_three[1:2])
    assert not np.array_equal(all_three[0], all_three[1])
    assert np.all((all_three[..., 0] > 0) & (all_three[..., 0] < 1)) and np.all(all_three[..., 1:] > 0)
    # rate 0: every pass has the same network output, so only the MVN draws differ; a high rate spreads more
    quiet = ParameterSampler(model, AugmentConfig.for_parameters(32), scaler, passes=200, seed=1, rate=0.0)
    loud = ParameterSampler(model, AugmentConfig.for_parameters(32), scaler, passes=200, seed=1, rate=0.6)
    spread = [np.log(s.samples(images, np.arange(3))[..., 2]).std(axis=1).mean() for s in (quiet, loud)]
    assert spread[1] > spread[0]
    assert [layer.rate for layer in sampler.dropout] == [0.2] * len(sampler.dropout)  # restored afterwards


def test_flag_precision_and_recall_on_a_hand_made_case():
    """Ten galaxies, four truly bulge-dominated; the flag fires on five, three of them right: precision 3/5,
    recall 3/4. A flag that never fires has no precision and zero recall (accuracy would have said 60 %)."""
    true = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], bool)
    predicted = np.array([1, 1, 1, 0, 1, 1, 0, 0, 0, 0], bool)
    metrics = flag_metrics(predicted, true)
    assert metrics["precision"] == pytest.approx(3 / 5) and metrics["recall"] == pytest.approx(3 / 4)
    assert (metrics["predicted"], metrics["true"], metrics["both"]) == (5, 4, 3)
    silent = flag_metrics(np.zeros(10, bool), true)
    assert np.isnan(silent["precision"]) and silent["recall"] == 0
