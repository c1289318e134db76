"""Vote heads and the vote loss: exact against scipy (binomial and multinomial), stable at extreme rho, masked
where N = 0; softmax heads' answers sum to 1."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf
from scipy.special import expit
from scipy.stats import binom, multinomial

from galzoo_tf.schema import load_schema
from galzoo_tf.tasks.votes.heads import VoteHead, heads_for, output_size, softmax_groups
from galzoo_tf.tasks.votes.loss import BinomialVoteLoss, negative_log_likelihood
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
    bar = VoteHead.for_question(SCHEMA.question("bar"))
    rho = bar.rho(tf.constant([[0.0], [2.0]])).numpy()
    np.testing.assert_allclose(rho.sum(axis=1), 1)
    assert rho[1, 0] == pytest.approx(expit(2.0))


def test_targets_and_distribution_of_a_record():
    bar = VoteHead.for_question(SCHEMA.question("bar"))
    features = {"bar/bar/count": tf.constant(4, tf.int64), "bar/no_bar/count": tf.constant(6, tf.int64),
                "bar/total": tf.constant(10, tf.int64)}
    np.testing.assert_array_equal(targets(features, [bar]).numpy(), [4.0, 10.0])
    loss = negative_log_likelihood(targets(features, [bar])[None], tf.constant([[0.0]]), softmax_groups([bar]))
    assert float(loss[0]) == pytest.approx(-binom.logpmf(4, 10, 0.5), rel=1e-5)


def test_softmax_head_answers_sum_to_one_and_one_vs_rest_need_not():
    smooth = SCHEMA.question("smooth")
    logits = tf.constant(np.random.default_rng(1).normal(0, 3, (50, 3)), tf.float32)
    softmax = VoteHead.for_question(smooth).rho(logits).numpy()
    np.testing.assert_allclose(softmax.sum(axis=1), 1, rtol=1e-6)
    sigmoids = VoteHead.for_question(smooth, link="one-vs-rest").rho(logits).numpy()
    assert np.abs(sigmoids.sum(axis=1) - 1).max() > 0.1
    every = heads_for(SCHEMA, list(SCHEMA.question_names))
    outputs = tf.constant(np.random.default_rng(2).normal(0, 2, (20, output_size(every))), tf.float32)
    for head in every:
        np.testing.assert_allclose(head.rho(outputs).numpy().sum(axis=1), 1, rtol=1e-5)
        rho = head.rho(outputs).numpy()
        alone = replace(head, offset=0)
        back = alone.rho(tf.constant(head.logits_of(rho[:, :head.size]), tf.float32)).numpy()
        np.testing.assert_allclose(back, rho, atol=1e-5)  # logits_of inverts rho


def test_softmax_loss_is_the_multinomial_of_the_question_votes():
    heads = heads_for(SCHEMA, ["smooth", "bar"])
    assert softmax_groups(heads) == ((0, 3),)
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, (40, 4)).astype(np.float32)
    smooth_total = rng.integers(0, 50, 40)
    smooth = np.stack([rng.multinomial(n, [0.5, 0.4, 0.1]) for n in smooth_total]).astype(np.float32)
    bar_total = rng.integers(1, 20, 40)
    bar = rng.binomial(bar_total, 0.3).astype(np.float32)
    y = np.concatenate([smooth, bar[:, None], np.repeat(smooth_total[:, None], 3, 1), bar_total[:, None]], 1)
    got = negative_log_likelihood(tf.constant(y, tf.float32), tf.constant(logits), softmax_groups(heads)).numpy()
    probabilities = np.exp(logits[:, :3]) / np.exp(logits[:, :3]).sum(axis=1, keepdims=True)
    expected = -binom.logpmf(bar, bar_total, expit(logits[:, 3].astype(np.float64)))
    expected -= np.array([multinomial.logpmf(k, n, p) if n else 0.0
                          for k, n, p in zip(smooth, smooth_total, probabilities, strict=True)])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    loss = BinomialVoteLoss(softmax_groups(heads))
    assert BinomialVoteLoss.from_config(loss.get_config()).groups == ((0, 3),)


def test_heads_recorded_before_links_load_as_one_vs_rest():
    recorded = {"question": "smooth", "answers": ["smooth", "features", "artifact"],
                "all_answers": ["smooth", "features", "artifact"], "offset": 0}
    assert VoteHead.from_json(recorded).link == "one-vs-rest"
    assert VoteHead.from_json({**recorded, "link": "softmax"}).is_softmax
