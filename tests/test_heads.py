"""Binomial heads and the vote loss: exact against scipy, stable at extreme rho, masked where N = 0."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from scipy.special import expit
from scipy.stats import binom

from galzoo_tf.schema import load_schema
from galzoo_tf.tasks.votes.heads import BinomialHead, heads_for, output_size
from galzoo_tf.tasks.votes.loss import negative_log_likelihood
from galzoo_tf.tasks.votes.targets import targets

SCHEMA = load_schema("gz2")


def test_loss_equals_scipy_binomial_logpmf_including_extreme_logits():
    rng = np.random.default_rng(0)
    totals = rng.integers(1, 60, 200).astype(np.float32)
    counts = np.floor(rng.uniform(0, 1, 200) * (totals + 1)).astype(np.float32)
    logits = rng.uniform(-30, 30, 200).astype(np.float32)
    y = np.stack([counts, totals], axis=1)
    got = negative_log_likelihood(tf.constant(y), tf.constant(logits[:, None])).numpy()
    expected = -binom.logpmf(counts, totals, expit(logits.astype(np.float64)))
    finite = np.isfinite(expected)  # scipy underflows to -inf where TFP still has the log
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-3, atol=1e-3)
    assert np.isfinite(got).all()


def test_questions_never_asked_contribute_nothing():
    y = tf.constant([[3.0, 0.0, 10.0, 0.0]])  # k for two outputs, then N: the second was not asked
    logits = tf.constant([[0.5, 123.0]])
    alone = negative_log_likelihood(tf.constant([[3.0, 10.0]]), tf.constant([[0.5]]))
    np.testing.assert_allclose(negative_log_likelihood(y, logits).numpy(), alone.numpy(), rtol=1e-6)


def test_two_answer_questions_have_one_logit_and_others_one_per_answer():
    heads = heads_for(SCHEMA, list(SCHEMA.question_names))
    assert [h.size for h in heads] == [3, 1, 1, 1, 4, 1, 3, 7, 3, 3, 6]
    assert output_size(heads) == 33 and heads[2].offset == 4
    bar = BinomialHead.for_question(SCHEMA.question("bar"))
    rho = bar.rho(tf.constant([[0.0], [2.0]])).numpy()
    np.testing.assert_allclose(rho.sum(axis=1), 1)
    assert rho[1, 0] == pytest.approx(expit(2.0))


def test_targets_and_distribution_of_a_record():
    bar = BinomialHead.for_question(SCHEMA.question("bar"))
    features = {"bar/bar/count": tf.constant(4, tf.int64), "bar/no_bar/count": tf.constant(6, tf.int64),
                "bar/total": tf.constant(10, tf.int64)}
    np.testing.assert_array_equal(targets(features, [bar]).numpy(), [4.0, 10.0])
    distribution = bar.distribution(tf.constant([[0.0]]), tf.constant([10]))
    assert float(distribution.mean()[0, 0]) == pytest.approx(5.0)
