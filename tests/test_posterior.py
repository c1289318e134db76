"""Posterior sampling and the mixture posterior of vote counts."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from scipy.stats import binom

from galzoo_tf.data.augment import AugmentConfig
from galzoo_tf.models import build_vote_model
from galzoo_tf.tasks.votes.posterior import Sampler, count_probabilities, summarise_counts

IMAGES = tf.constant(np.random.default_rng(0).integers(0, 256, (3, 48, 48, 3), dtype=np.uint8))


def test_mixture_equals_the_mean_of_binomial_pmfs():
    rng = np.random.default_rng(1)
    rho = rng.uniform(0.01, 0.99, (4, 30))
    totals = np.array([40, 10, 3, 0])
    probabilities = count_probabilities(rho, totals)
    for galaxy, total in enumerate(totals):
        direct = binom.pmf(np.arange(41)[:, None], total, rho[galaxy][None]).mean(axis=1)
        direct[np.arange(41) > total] = 0
        np.testing.assert_allclose(probabilities[galaxy], direct, atol=1e-10)
    assert float(probabilities[0] @ np.arange(41)) == pytest.approx(40 * rho[0].mean())  # the mixture's mean


def test_count_summary_mean_mode_and_central_interval():
    probabilities = np.array([[0.1, 0.2, 0.4, 0.2, 0.1]])
    summary = summarise_counts(probabilities, coverage=0.6)
    assert summary.mean[0] == pytest.approx(2.0) and summary.mode[0] == 2
    assert (summary.low[0], summary.high[0]) == (1, 3)


def sampler(tta: bool, passes: int = 5, rate: float | None = None) -> Sampler:
    model = build_vote_model((32, 32, 1), 1, dropout=0.5)
    config = AugmentConfig(image_size=32, zoom=(1.2, 1.2), central_crop=True).deterministic()
    return Sampler(model, config, passes=passes, tta=tta, seed=3, rate=rate)


def test_samples_have_one_row_per_galaxy_and_pass_and_differ_between_passes():
    logits = sampler(tta=True).logits(IMAGES).numpy()
    assert logits.shape == (3, 5, 1)
    assert np.unique(logits[0, :, 0]).size == 5  # each pass its own dropout mask


def test_trunk_once_equals_full_passes_when_augmentation_is_off():
    full = sampler(tta=True, passes=7)
    once = Sampler(full.model, full.augmentation, passes=7, tta=False, seed=3)
    np.testing.assert_allclose(full.logits(IMAGES).numpy(), once.logits(IMAGES).numpy(), rtol=1e-5, atol=1e-6)


def test_a_galaxy_gets_the_same_samples_in_any_batch():
    draw = sampler(tta=True)
    whole = draw.logits(IMAGES).numpy()
    np.testing.assert_allclose(draw.logits(IMAGES[2:], indices=[2]).numpy(), whole[2:], rtol=1e-6)
    assert not np.allclose(draw.logits(IMAGES[2:]).numpy(), whole[2:])


def test_test_time_dropout_rate_sets_the_spread():
    low, high = sampler(tta=False, passes=200, rate=0.05), sampler(tta=False, passes=200, rate=0.6)
    high.model.set_weights(low.model.get_weights())
    spread = [s.logits(IMAGES).numpy().std(axis=1).mean() for s in (low, high)]
    assert spread[1] > 2 * spread[0]
    assert sampler(tta=False, rate=0.0).logits(IMAGES).numpy().std(axis=1).max() < 1e-6
