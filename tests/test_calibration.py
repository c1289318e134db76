"""Coverage error (Walmsley et al. 2019, eq. 11-13): a hand-computed case and a perfectly calibrated simulation."""

from __future__ import annotations

import numpy as np
import pytest

from galzoo_tf.tasks.votes.coverage import coverage, coverage_table
from galzoo_tf.tasks.votes.posterior import count_probabilities, summarise_counts


def test_hand_computed_coverage():
    # two galaxies, N = 4 and N = 2, posteriors over k = 0..4
    probabilities = np.array([[0.1, 0.2, 0.4, 0.2, 0.1],
                              [0.25, 0.5, 0.25, 0.0, 0.0]])
    predicted, observed, totals = np.array([2, 1]), np.array([3, 1]), np.array([4, 2])
    # epsilon 0.3: galaxy 1 accepts |k - 2| < 1.2 -> k in {1, 2, 3}: 0.8; galaxy 2 |k - 1| < 0.6 -> k = 1: 0.5
    result = coverage(probabilities, predicted, observed, totals, 0.3)
    assert result.expected == pytest.approx(1.3)
    assert result.actual == 2  # k = 3 is within 1.2 of 2; k = 1 equals the prediction
    assert result.error == pytest.approx((1.3 - 2) / 2)
    tight = coverage(probabilities, predicted, observed, totals, 0.1)  # only k = k_hat counts
    assert (tight.expected, tight.actual) == (pytest.approx(0.9), 1)


def test_a_perfectly_calibrated_posterior_has_coverage_error_near_zero():
    rng = np.random.default_rng(0)
    galaxies, passes = 20000, 10
    totals = rng.integers(5, 45, galaxies)
    rho = np.clip(rng.beta(2, 3, galaxies)[:, None] + rng.normal(0, 0.05, (galaxies, passes)), 0.01, 0.99)
    probabilities = count_probabilities(rho, totals)
    # observed k drawn from the model's own posterior: pick a pass, then a binomial draw
    chosen = rho[np.arange(galaxies), rng.integers(0, passes, galaxies)]
    observed = rng.binomial(totals, chosen)
    predicted = summarise_counts(probabilities).mode
    for result in coverage_table(probabilities, predicted, observed, totals):
        assert abs(result.error) < 0.03, result
    single = count_probabilities(rho.mean(axis=1, keepdims=True), totals)  # Binomial(N, mean rho): narrower
    narrow = coverage_table(single, summarise_counts(single).mode, observed, totals)
    assert narrow[0].error > 0.03  # ignoring the spread between passes makes the posterior overconfident


def test_undefined_coverage_errors_are_null_in_json_and_never_the_tuned_best():
    from galzoo_tf.fileio import nan_to_null
    from galzoo_tf.tasks.votes.calibrate import calibration_score

    errors = {"0.02": float("nan"), "0.05": 0.1, "0.10": 0.1, "0.20": 0.1}
    assert nan_to_null({"mc": errors, "counts": [1.0, float("inf")], "n": 3}) == {
        "mc": {**errors, "0.02": None}, "counts": [1.0, None], "n": 3}
    assert calibration_score({"coverage_error": {"mc": errors}}) == float("inf")
