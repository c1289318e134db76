"""The Kaggle Galaxy Zoo format: weighted fractions through the tree, `prepare kaggle`, `predict --format kaggle`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from galzoo_cli.main import app
from galzoo_tf.data.sources.kaggle import load_kaggle
from galzoo_tf.errors import INCONSISTENT_FRACTIONS, BadInputError
from galzoo_tf.fractions import conditional_fractions
from galzoo_tf.kaggle import (
    as_columns,
    feature_keys,
    from_columns,
    from_counts,
    kaggle_columns,
    mismatches,
    pseudo_counts,
    rmse,
    weighted_fractions,
)
from galzoo_tf.schema import load_schema
from galzoo_tf.sim.kaggle_layout import write_kaggle_project
from galzoo_tf.sim.volunteers import simulate_votes

GZ2 = load_schema("gz2")
runner = CliRunner()


def random_conditionals(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {q.name: rng.dirichlet(np.ones(len(q.answers)), size=n) for q in GZ2.questions}


def largest_mismatch(weighted: dict[str, np.ndarray]) -> float:
    return max(float(np.abs(total - expected).max()) for total, expected in mismatches(GZ2, weighted).values())


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """24 simulated galaxies in the release's layout, at 48 px for speed."""
    return write_kaggle_project(tmp_path_factory.mktemp("kaggle"), n=24, seed=4, image_size=48)


def test_columns_are_the_release_37_in_order():
    columns = kaggle_columns(GZ2)
    assert len(columns) == 37 and columns[:3] == ["Class1.1", "Class1.2", "Class1.3"]
    assert columns[-6:] == [f"Class11.{i}" for i in range(1, 7)] and columns.index("Class10.1") == 28


def test_conditional_to_weighted_to_conditional_round_trips():
    conditional = random_conditionals(200)
    weighted = weighted_fractions(GZ2, conditional)
    assert largest_mismatch(weighted) < 1e-12  # every question sums to its parents (odd: to 1)
    np.testing.assert_allclose(weighted["odd"].sum(axis=1), 1.0)  # the release leaves question 6 unweighted
    np.testing.assert_allclose(weighted["bar"].sum(axis=1), weighted["edgeon"][:, 1])  # bar: 'not edge-on'
    columns = as_columns(GZ2, weighted)
    back = conditional_fractions(from_columns(GZ2, columns))
    for name, fractions in conditional.items():
        np.testing.assert_allclose(back[name], fractions, atol=1e-12, err_msg=name)


def test_pseudo_counts_give_back_the_votes_of_a_galaxy_with_that_many_volunteers():
    rng = np.random.default_rng(1)
    rho = {q.name: rng.dirichlet(np.ones(len(q.answers)), size=300) for q in GZ2.questions}
    flat = simulate_votes(GZ2, rho, np.full(300, 40), rng)
    counts = {q.name: np.stack([flat[GZ2.count_key(a)] for a in q.answers], 1) for q in GZ2.questions}
    again = pseudo_counts(GZ2, from_counts(GZ2, counts), volunteers=40)
    for question in GZ2.questions:  # odd's weight is 1 in the release, not the fraction that reached it
        if question.name != "odd" and "odd" not in GZ2.ancestors(question.name):
            np.testing.assert_array_equal(again[question.name], counts[question.name], err_msg=question.name)
    reached_odd = counts["odd"].sum(axis=1) > 0  # all of them, unless every volunteer said star or artifact
    np.testing.assert_array_equal(again["odd"].sum(axis=1), np.where(reached_odd, 40, 0))
    np.testing.assert_array_equal(again["odd_feature"].sum(axis=1), again["odd"][:, 0])


def test_fixture_rows_obey_the_tree_and_read_back(project):
    frame = pd.read_csv(project.solutions)
    assert list(frame.columns) == ["GalaxyID", *kaggle_columns(GZ2)] and frame["GalaxyID"].is_monotonic_increasing
    assert largest_mismatch(from_columns(GZ2, frame[kaggle_columns(GZ2)].to_numpy())) < 1e-5
    catalogue = load_kaggle(project.solutions, project.images)
    assert catalogue.table["id"].tolist() == frame["GalaxyID"].astype(str).tolist()
    assert set(feature_keys(GZ2)) <= set(catalogue.float_features)
    np.testing.assert_allclose(catalogue.table["kaggle/Class3.1"], frame["Class3.1"])
    assert (catalogue.table["smooth/total"] == 40).all()  # the default N, GZ2's typical N of the first question


def broken_copy(project, tmp_path: Path, row: int, column: str, value) -> Path:
    frame = pd.read_csv(project.solutions, dtype=str)
    frame.loc[row - 1, column] = str(value)
    path = tmp_path / "solutions.csv"
    frame.to_csv(path, index=False)
    return path


def test_an_inconsistent_row_is_refused_by_name(project, tmp_path):
    frame = pd.read_csv(project.solutions)
    bad = broken_copy(project, tmp_path, 3, "Class3.1", frame.loc[2, "Class3.1"] + 0.2)
    with pytest.raises(BadInputError) as caught:
        load_kaggle(bad, project.images)
    message = caught.value.message
    assert f"row 3 (id {frame.loc[2, 'GalaxyID']})" in message and "Class3.1 + Class3.2" in message
    assert "Class2.2" in message and caught.value.reason == INCONSISTENT_FRACTIONS
    kept = load_kaggle(bad, project.images, skip_bad=True)
    assert len(kept.table) == len(frame) - 1 and kept.skipped[INCONSISTENT_FRACTIONS] == 1


def test_a_cell_that_is_not_a_fraction_and_a_missing_column_are_named(project, tmp_path):
    with pytest.raises(BadInputError, match=r"row 5 .*Class1\.1 is 'lots', not a fraction"):
        load_kaggle(broken_copy(project, tmp_path, 5, "Class1.1", "lots"), project.images)
    with pytest.raises(BadInputError, match=r"row 2 .*Class4\.2 is blank, not a fraction"):
        load_kaggle(broken_copy(project, tmp_path, 2, "Class4.2", ""), project.images)
    frame = pd.read_csv(project.solutions).drop(columns=["Class11.6"])
    frame.to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(BadInputError, match=r"missing column\(s\) Class11\.6"):
        load_kaggle(tmp_path / "short.csv", project.images)


def test_question_6_sums_to_1_or_to_0_only_where_no_volunteer_reached_it():
    conditional = random_conditionals(3, seed=5)
    conditional["smooth"] = np.array([[0.0, 0.0, 1.0]] * 3)  # every volunteer said star or artifact
    weighted = weighted_fractions(GZ2, conditional)
    weighted["odd"][0] = 0.0  # nobody reached question 6: its columns may be 0
    total, expected = mismatches(GZ2, weighted)["odd"]
    assert total[0] == expected[0] == 0 and expected[1] == 1 and total[1] == pytest.approx(1)
    reached = weighted_fractions(GZ2, random_conditionals(2, seed=6))
    reached["odd"][0] = 0.0  # reached, yet empty: refused, by more than any tolerance below 1
    total, expected = mismatches(GZ2, reached, tolerance=0.05)["odd"]
    assert (total[0], expected[0]) == (0.0, 1.0) and abs(total[1] - expected[1]) < 1e-12


def test_an_all_artifact_row_is_read_and_an_empty_odd_question_is_refused(project, tmp_path):
    frame = pd.read_csv(project.solutions, dtype=str)
    artifact = {name: "0" for name in kaggle_columns(GZ2)} | {"Class1.3": "1"}
    frame.loc[0, list(artifact)] = list(artifact.values())
    frame.to_csv(tmp_path / "artifact.csv", index=False)
    table = load_kaggle(tmp_path / "artifact.csv", project.images).table
    assert table.loc[0, "smooth/artifact/count"] == 40 and table.loc[0, "odd/total"] == 0
    frame.loc[1, ["Class6.1", "Class6.2"]] = ["0", "0"]
    frame.to_csv(tmp_path / "empty-odd.csv", index=False)
    with pytest.raises(BadInputError, match=r"row 2 .*Class6\.1 \+ Class6\.2 = 0\.0000, but should be 1 \(or 0 where"):
        load_kaggle(tmp_path / "empty-odd.csv", project.images)


def test_predicted_columns_obey_the_tree_even_from_one_vs_rest_heads():
    from galzoo_tf.tasks.votes.kaggle import kaggle_predictions

    rng = np.random.default_rng(2)
    rho = {q.name: rng.uniform(0.05, 0.95, size=(30, 6, len(q.answers))) for q in GZ2.questions}  # sums != 1
    predicted = kaggle_predictions(GZ2, rho)
    assert predicted.shape == (30, 37)
    assert largest_mismatch(from_columns(GZ2, predicted)) < 1e-9
    assert rmse(predicted, predicted) == 0.0


def test_resnet50_trunk_builds_untrained_and_unknown_architectures_are_refused():
    from galzoo_tf.models import build_vote_model
    from galzoo_tf.tasks.votes.task import resolved_config
    from galzoo_tf.training.config import TrainConfig

    model = build_vote_model((32, 32, 1), 5, architecture="resnet50")
    assert model.output_shape == (None, 5) and model.count_params() > 23_000_000
    assert model.predict(np.zeros((2, 32, 32, 1), np.float32), verbose=0).shape == (2, 5)
    with pytest.raises(BadInputError, match="--architecture must be one of paper, efficientnet, resnet50"):
        resolved_config(TrainConfig(architecture="vgg"), GZ2, None)


def invoke(*args: str) -> str:
    result = runner.invoke(app, [str(a) for a in args], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def test_prepare_train_predict_and_calibrate_in_the_kaggle_format(project, tmp_path):
    records, model = tmp_path / "records", tmp_path / "model"
    invoke("prepare", "kaggle", "--solutions", project.solutions, "--images", project.images, "--out", records,
           "--size", 32, "--test-size", 6, "--workers", 0)
    invoke("train", "--data", records, "--question", "all", "--image-size", 32, "--epochs", 1, "--batch-size", 8,
           "--out", model)
    out = tmp_path / "submission.csv"
    shown = invoke("predict", "--model", model, "--data", records, "--split", "test", "--format", "kaggle",
                   "--passes", 3, "--out", out)
    assert "Kaggle-format predictions" in shown
    submission = pd.read_csv(out)
    assert list(submission.columns) == ["GalaxyID", *kaggle_columns(GZ2)] and len(submission) == 6
    assert set(submission["GalaxyID"]) <= set(pd.read_csv(project.solutions)["GalaxyID"])
    assert largest_mismatch(from_columns(GZ2, submission[kaggle_columns(GZ2)].to_numpy())) < 1e-5
    invoke("predict", "--model", model, "--data", records, "--split", "test", "--format", "kaggle", "--passes", 3,
           "--out", tmp_path / "parts", "--merge", tmp_path / "merged.csv")  # one part per shard, then one CSV
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "merged.csv"), submission)
    from_images = tmp_path / "from-images.csv"  # the challenge's test set comes as a folder of JPEGs
    invoke("predict", "--model", model, "--images", project.images, "--format", "kaggle", "--passes", 2,
           "--out", from_images)
    assert sorted(pd.read_csv(from_images)["GalaxyID"]) == sorted(pd.read_csv(project.solutions)["GalaxyID"])
    report = invoke("calibrate", "--model", model, "--data", records, "--out", tmp_path / "calibration",
                    "--passes", 3)
    assert "Kaggle 37-answer RMSE" in report and "challenge winner" in report
    kaggle = json.loads((tmp_path / "calibration" / "calibration.json").read_text())
    assert 0 < kaggle["kaggle_rmse"] < 1 and 0 < kaggle["kaggle"]["mean_label_baseline"] < 1


def test_kaggle_format_needs_a_csv_and_a_model_of_every_question(tiny_bar, tmp_path):
    records, bar_model = tiny_bar
    result = runner.invoke(app, ["predict", "--model", str(bar_model), "--data", str(records), "--format", "kaggle",
                                 "--out", str(tmp_path / "out.csv")])
    assert result.exit_code != 0 and "needs a model of every GZ2 question" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out.csv").exists()
    result = runner.invoke(app, ["predict", "--model", str(bar_model), "--data", str(records), "--format", "kaggle",
                                 "--out", str(tmp_path / "out.fits")])
    assert result.exit_code != 0 and "CSV layout" in result.output
    result = runner.invoke(app, ["predict", "--model", str(bar_model), "--data", str(records), "--format", "kaggle",
                                 "--out", str(tmp_path / "parts")])  # Parquet parts alone are not the layout
    assert result.exit_code != 0 and "--merge FILE.csv" in result.output
