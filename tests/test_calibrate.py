"""`galzoo calibrate`: the report's keys and figures, dropout tuning stored for predict, ensembles."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from galzoo_tf.errors import BadInputError
from galzoo_tf.tasks.registry import load_model
from galzoo_tf.tasks.votes.calibrate import (
    CalibrateOptions,
    Scored,
    calibrate,
    calibration_score,
    most_confident,
    outcomes,
    rho_samples,
    sample_split,
)

PAPER_KEYS = ("0.02", "0.05", "0.10", "0.20")


@pytest.fixture
def model_copy(tiny_bar, tmp_path):
    """A copy of the tiny model: tuning writes into its galzoo.json."""
    shutil.copytree(tiny_bar[1], tmp_path / "model")
    return tiny_bar[0], tmp_path / "model"


def test_report_has_the_paper_keys_truth_metrics_and_figures(model_copy, tmp_path):
    records, model_dir = model_copy
    report = calibrate(load_model(model_dir, "votes"), records, tmp_path / "report", CalibrateOptions(passes=6))
    saved = json.loads((tmp_path / "report" / "calibration.json").read_text())
    assert saved["galaxies"] == report["galaxies"] > 0
    for block in ("coverage_error", "expected_count", "actual_count"):
        for kind in ("mc", "single"):
            assert set(saved[block][kind]) == set(PAPER_KEYS)
    for key in PAPER_KEYS:  # the single network ignores the spread between passes: it expects more
        assert saved["expected_count"]["single"][key] >= saved["expected_count"]["mc"][key] - 1e-6
        actual = saved["actual_count"]["mc"][key]
        assert saved["coverage_error"]["mc"][key] == pytest.approx((saved["expected_count"]["mc"][key] - actual)
                                                                   / actual)
    assert set(saved["truth"]["coverage_error"]["mc"]) == set(PAPER_KEYS)
    assert saved["rmse"]["noise_floor"] > 0 and saved["rmse"]["noise_floor_from"] == "true rho"
    assert {"coverage.png", "posteriors.png", "distributions.png", "roc-bar.png", "confusion-bar.png",
            "roc-bar-confident.png", "confusion-bar-confident.png"} == set(saved["figures"])
    assert "by_answer" not in saved  # one output: the pooled report is the answer's
    confident = saved["majority"]["bar"]["most_confident"]
    assert 0 < confident["galaxies"] < saved["majority"]["bar"]["all"]["galaxies"]
    assert 0 <= confident["accuracy"] <= 1
    assert all((tmp_path / "report" / name).stat().st_size > 1000 for name in saved["figures"])


def test_tuned_dropout_rate_is_the_best_scored_and_predict_uses_it(model_copy, tmp_path):
    records, model_dir = model_copy
    report = calibrate(load_model(model_dir, "votes"), records, tmp_path / "report",
                       CalibrateOptions(passes=6, tune_dropout=(0.1, 0.5, 0.9)))
    tuning = report["recalibrated"]["tuning"]
    assert set(tuning["scores"]) == {"0.1", "0.5", "0.9"}
    best = min(tuning["scores"], key=lambda rate: tuning["scores"][rate]["score"])
    assert report["recalibrated"]["dropout_rate"] == float(best)
    stored = load_model(model_dir, "votes")
    assert stored.dropout_rate == float(best) and stored.sidecar["posterior"]["tuned_on"]["split"] == "val"
    assert stored.sampler(passes=3, tta=False, seed=0).rate == float(best)
    assert calibration_score(report["recalibrated"]) >= 0
    assert "coverage-recalibrated.png" in report["recalibrated"]["figures"]
    spread = tuning["spread"]  # the logit spread fitted after the rate, stored beside it and used by samplers
    assert spread["largest_coverage_error"] <= spread["at_spread_1"]
    assert stored.sidecar["posterior"]["logit_spread"] == report["recalibrated"]["logit_spread"] == \
        stored.sampler(passes=3, tta=False, seed=0).spread
    assert stored.sampler(passes=3, tta=False, seed=0, rate=0.33).spread == 1.0  # fitted at another rate


def test_the_logit_spread_scales_each_galaxys_samples_about_their_mean(tiny_bar):
    model = load_model(tiny_bar[1], "votes")
    images = np.random.default_rng(0).integers(0, 255, (3, 256, 256, 3)).astype(np.uint8)
    plain, wide = model.sampler(8, False, 0), model.sampler(8, False, 0)
    wide.spread = 2.5
    features = plain.features(images)
    drawn, scaled = plain.logits_from_features(features).numpy(), wide.logits_from_features(features).numpy()
    centre = drawn.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(scaled, centre + 2.5 * (drawn - centre), rtol=1e-5, atol=1e-5)


def test_more_test_time_dropout_widens_the_posterior(model_copy, tmp_path):
    records, model_dir = model_copy
    report = calibrate(load_model(model_dir, "votes"), records, tmp_path / "report",
                       CalibrateOptions(passes=8, tune_dropout=(0.05, 0.9)))
    scores = report["recalibrated"]["tuning"]["scores"]
    low, high = (np.array(list(scores[r]["coverage_error"].values())) for r in ("0.05", "0.9"))
    # a wider MC posterior expects fewer galaxies within the max errors; at the largest, the shifted mean
    # prediction also moves the observed count, so the comparison is over all of them
    assert high.mean() < low.mean() and high[0] < low[0]


def test_ensemble_pools_the_samples_of_both_models(model_copy, tmp_path):
    records, model_dir = model_copy
    shutil.copytree(model_dir, tmp_path / "twin")
    report = calibrate(load_model(model_dir, "votes"), records, tmp_path / "report", CalibrateOptions(passes=4),
                       ensemble=[load_model(tmp_path / "twin", "votes")])
    assert len(report["ensemble"]["models"]) == 2 and set(report["ensemble"]["coverage_error"]["mc"]) == \
        set(PAPER_KEYS)


def test_bad_requests_are_clear(model_copy, tmp_path):
    records, model_dir = model_copy
    with pytest.raises(BadInputError, match="no model.keras"):
        load_model(tmp_path, "votes")
    with pytest.raises(BadInputError, match=r"\[0, 1\)"):
        calibrate(load_model(model_dir, "votes"), records, tmp_path / "r", CalibrateOptions(passes=2,
                                                                                      tune_dropout=(1.5,)))


def test_single_network_column_equals_mc_when_every_pass_is_the_same_network(tiny_bar):
    """Dropout off and no test-time augmentation: all T passes are one network, so the paper's "without MC
    dropout" column must equal the MC column; with dropout on, single networks expect more (overconfident)."""
    model = load_model(tiny_bar[1], "votes")
    sampler = model.sampler(5, False, 0)
    split = sample_split([sampler], model.heads, tiny_bar[0], "test", 16)
    off = Scored.of(outcomes(split, rho_samples(split, [sampler], [0.0]))).coverage(PAPER_KEYS_FLOAT)
    for block in ("coverage_error", "expected_count", "actual_count"):
        np.testing.assert_allclose(list(off[block]["single"].values()), list(off[block]["mc"].values()))
    on = Scored.of(outcomes(split, rho_samples(split, [sampler], [0.5]))).coverage(PAPER_KEYS_FLOAT)
    assert on["expected_count"]["single"] != on["expected_count"]["mc"]


def test_most_confident_keeps_the_top_of_each_predicted_class():
    scores = np.array([[0.9, 0.1], [0.6, 0.4], [0.55, 0.45], [0.2, 0.8], [0.45, 0.55], [0.3, 0.7]] * 5)
    kept = most_confident(scores, 0.2)
    assert kept.sum() == 2 * 3 and set(np.flatnonzero(kept) % 6) == {0, 3}


PAPER_KEYS_FLOAT = tuple(float(k) for k in PAPER_KEYS)


def test_a_model_of_many_answers_reports_each_answer_alone_and_its_softmax_rho_sum_to_one(tiny_bar, tiny_trunk,
                                                                                          tmp_path):
    model = load_model(tiny_trunk, "votes")
    report = calibrate(model, tiny_bar[0], tmp_path / "report", CalibrateOptions(passes=3))
    smooth = report["by_answer"]["smooth/smooth"]
    assert set(smooth["coverage_error"]["mc"]) == set(PAPER_KEYS)
    asked = sum(v["galaxies"] for k, v in report["by_answer"].items() if k.startswith("smooth/"))
    assert asked == 3 * smooth["galaxies"]  # one row per galaxy for each of smooth's three answers
    sampler = model.sampler(3, False, 0)
    split = sample_split([sampler], model.heads, tiny_bar[0], "test", 16)
    for question, rho in rho_samples(split, [sampler], [None]).items():
        np.testing.assert_allclose(rho.sum(axis=-1), 1, rtol=1e-5, err_msg=question)
