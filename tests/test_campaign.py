"""Simulated active-learning campaigns: label savings arithmetic, and a tiny campaign killed and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from galzoo_tf.active.campaign import Campaign, CampaignOptions
from galzoo_tf.active.report import label_savings, labels_to_reach, summary
from galzoo_tf.errors import BadInputError

GALZOO = str(Path(sys.executable).with_name("galzoo"))


def curves(speed: dict[str, float], repeats: int = 3, noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """RMSE falling linearly with new labels at a given speed per strategy."""
    rng = np.random.default_rng(seed)
    rows = [{"strategy": s, "repeat": r, "iteration": i, "new_labels": 100 * i,
             "rmse": 0.3 - rate * 100 * i + noise * rng.normal()}
            for s, rate in speed.items() for r in range(repeats) for i in range(8)]
    return pd.DataFrame(rows)


def test_labels_to_reach_interpolates_the_first_crossing():
    x, y = np.array([0.0, 100, 200, 300]), np.array([0.3, 0.2, 0.25, 0.1])
    assert labels_to_reach(x, y, 0.25) == pytest.approx(50)
    assert labels_to_reach(x, y, 0.3) == 0 and np.isnan(labels_to_reach(x, y, 0.05))


def test_twice_as_fast_a_curve_saves_half_the_labels():
    results = curves({"bald": 2e-4, "random": 1e-4})
    savings = label_savings(results)
    assert savings["savings"] == pytest.approx(0.5, abs=0.01)
    assert savings["labels_bald"] == pytest.approx(savings["labels_random"] / 2, rel=0.02)
    report = summary(curves({"bald": 2e-4, "random": 1e-4}, noise=0.002), ["bald", "random"], seed=0)
    low, high = report["label_savings"]["bald"]["interval_90"]
    assert 0.3 < low <= report["label_savings"]["bald"]["savings"] <= high < 0.7
    by_budget = report["savings_by_budget"]["bald"]
    assert [row["new_labels"] for row in by_budget] == list(range(100, 800, 100))
    assert all(row["savings"] == pytest.approx(0.5, abs=0.1) for row in by_budget)  # at every budget alike
    late = report["paired_differences"]["bald"][-1]
    assert late["new_labels"] == 700 and late["interval_90"][1] < 0  # bald is lower in every repeat by then


def test_levels_a_curve_reaches_inside_the_first_step_are_not_savings():
    results = curves({"bald": 1e-4, "random": 1e-4})
    fast = results["strategy"] == "bald"
    results.loc[fast & (results["new_labels"] > 0), "rmse"] = 0.1  # bald at its floor after one step
    assert np.isnan(label_savings(results)["savings"])  # every level random reaches, bald "needs" < 100 labels


def test_equal_strategies_save_nothing_much():
    report = summary(curves({"bald": 1e-4, "random": 1e-4}, noise=0.003, repeats=4, seed=3), ["bald", "random"],
                     seed=0)
    low, high = report["label_savings"]["bald"]["interval_90"]
    assert low < 0.15  # the interval does not exclude "no savings" by much when there are none


def test_a_pool_too_small_is_a_clear_error(tiny_bar, tmp_path):
    with pytest.raises(BadInputError, match="train split has"):
        Campaign(tiny_bar[0], tmp_path / "c", CampaignOptions(initial=64, step=64, iterations=3))


def run_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([GALZOO, "acquire", "simulate", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=os.environ.copy())


def killed_after_first_iteration(args: list[str], out: Path) -> int:
    """Start the campaign in ``out``, SIGKILL it as soon as one iteration is saved; the iterations saved."""
    killed = run_cli(*args, "--out", str(out))
    state, deadline = out / "state.json", time.time() + 240
    while time.time() < deadline and not (state.is_file() and json.loads(state.read_text())["results"]):
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    return len(json.loads(state.read_text())["results"])


def test_tiny_campaign_runs_end_to_end_and_resumes_after_a_kill(tiny_bar, tmp_path):
    records = tiny_bar[0]
    options = CampaignOptions(initial=24, step=12, iterations=3, repeats=1, epochs=1, image_size=32,
                              batch_size=16, passes=4)
    args = ["--data", str(records), "--initial", "24", "--step", "12", "--iterations", "3", "--repeats", "1",
            "--epochs", "1", "--image-size", "32", "--batch-size", "16", "--passes", "4"]
    assert 1 <= killed_after_first_iteration(args, tmp_path / "killed") < 6
    refused = run_cli(*args, "--out", str(tmp_path / "killed"))
    assert refused.wait(timeout=120) == 2 and "--resume" in refused.stdout.read()
    resumed = run_cli(*args, "--out", str(tmp_path / "killed"), "--resume")
    output = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, output
    assert "final RMSE vs true rho, bald" in output

    whole = Campaign(records, tmp_path / "whole", options).run()
    a, b = (pd.read_csv(tmp_path / d / "results.csv") for d in ("whole", "killed"))
    assert len(a) == 6 and list(a["new_labels"]) == [0, 12, 24] * 2
    pd.testing.assert_frame_equal(a, b, rtol=1e-5)
    picked = [pd.read_csv(tmp_path / d / "acquired.csv") for d in ("whole", "killed")]
    assert list(picked[0]["id"]) == list(picked[1]["id"]) and len(picked[0]) == 2 * 2 * 12
    first = a[a["iteration"] == 0]
    assert first["rmse"].nunique() == 1  # both strategies start from the same initial set and weights
    for frame in picked:
        for _, rows in frame.groupby("strategy"):
            assert rows["id"].is_unique  # a galaxy is acquired once per lineage
    assert "label_savings" in whole and (tmp_path / "killed" / "rmse.png").is_file()
    assert (tmp_path / "killed" / "acquired.png").is_file()


def test_a_representation_that_learned_the_question_is_refused(tiny_bar, tmp_path):
    with pytest.raises(BadInputError, match="leave-out bar"):
        Campaign(tiny_bar[0], tmp_path / "c", CampaignOptions(initial=24, step=12, iterations=2,
                                                              representation=str(tiny_bar[1])))


def test_head_only_campaign_runs_end_to_end_and_resumes_after_a_kill(tiny_bar, tiny_trunk, tmp_path):
    records = tiny_bar[0]
    settings = {"initial": 24, "step": 12, "iterations": 2, "repeats": 2, "steps": 20, "batch_size": 16,
                "passes": 4}
    options = CampaignOptions(representation=str(tiny_trunk), strategies=("bald", "power-bald", "random"),
                              **settings)
    args = ["--data", str(records), "--representation", str(tiny_trunk), "--strategies", "bald,power-bald,random",
            *(f"--{key.replace('_', '-')}={value}" for key, value in settings.items())]
    assert 1 <= killed_after_first_iteration(args, tmp_path / "killed") < 12
    embedded = (tmp_path / "killed" / "features.npz").stat().st_mtime_ns
    resumed = run_cli(*args, "--out", str(tmp_path / "killed"), "--resume")
    output = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, output
    assert "final RMSE vs true rho, bald" in output and "label savings of power-bald" in output
    assert (tmp_path / "killed" / "features.npz").stat().st_mtime_ns == embedded  # embedded once

    whole = Campaign(records, tmp_path / "whole", options).run()
    a, b = (pd.read_csv(tmp_path / d / "results.csv") for d in ("whole", "killed"))
    pd.testing.assert_frame_equal(a, b, rtol=1e-5)
    assert len(a) == 12 and a[a["iteration"] == 0]["rmse_truth"].nunique() == 2  # one per repeat: shared start
    assert a[a["iteration"] == 0]["batch_similarity"].between(-1, 1).all()
    picked = pd.read_csv(tmp_path / "killed" / "acquired.csv")
    assert (picked["expected_votes"] >= 0).all() and whole["settings"]["votes_from_tree"]
    for strategy in ("bald", "power-bald"):
        savings = whole["label_savings"][strategy]
        assert savings["metric"] == "rmse_truth" and len(savings["interval_90"]) == 2
        assert [row["new_labels"] for row in whole["paired_differences"][strategy]] == [0, 12]
    assert set(whole["acquired_mean_true_rho"]) == {"bald", "power-bald", "random"}


def test_fixed_steps_train_exactly_that_many_steps_on_images_and_on_features(tiny_bar, tiny_trunk, tmp_path):
    for representation in (None, str(tiny_trunk)):
        options = CampaignOptions(initial=24, step=12, iterations=2, repeats=1, steps=7, image_size=32,
                                  batch_size=16, passes=2, representation=representation)
        campaign = Campaign(tiny_bar[0], tmp_path / str(bool(representation)), options)
        model = campaign.learner.build(0, None)
        campaign.learner.fit(model, campaign._subset(np.arange(len(campaign.pool.ids)) < 24), 0)
        assert int(model.optimizer.iterations.numpy()) == 7


def test_head_samples_share_weights_across_galaxies_and_an_ensemble_campaign_scores_epig(tiny_bar, tiny_trunk,
                                                                                          tmp_path):
    options = CampaignOptions(initial=24, step=12, iterations=2, repeats=1, steps=10, batch_size=16, passes=5,
                              representation=str(tiny_trunk), hidden=8)
    campaign = Campaign(tiny_bar[0], tmp_path / "dropout", options)
    learner, pool = campaign.learner, campaign.pool
    model = learner.build(0, None)
    learner.features["train"][pool.indices[1]] = learner.features["train"][pool.indices[0]]  # a twin galaxy
    samples = learner.logits(model, "train", pool, 3)
    assert samples.shape == (len(pool.ids), 5, 1) and np.ptp(samples[0], axis=0).max() > 0  # the passes differ
    np.testing.assert_array_equal(samples[0], samples[1])  # pass t is one weight sample for every galaxy
    odd = np.arange(len(pool.ids)) % 2 == 1
    np.testing.assert_allclose(learner.logits(model, "train", campaign._subset(odd), 3), samples[odd], rtol=1e-6)

    ensemble = Campaign(tiny_bar[0], tmp_path / "ensemble",
                        replace(options, ensemble=3, strategies=("epig", "random")))
    members = ensemble.learner.logits(ensemble.learner.build(0, None), "test", ensemble.test, 0)
    assert members.shape == (len(ensemble.test.ids), 3, 1) and np.ptp(members, axis=1).min() > 0  # 3 other heads
    summary = ensemble.run()
    assert summary["label_savings"]["epig"]["metric"] == "rmse_truth"
    with pytest.raises(BadInputError, match="shared across galaxies"):
        CampaignOptions(strategies=("epig", "random")).check()
    with pytest.raises(BadInputError, match="--ensemble"):
        CampaignOptions(ensemble=3).check()
