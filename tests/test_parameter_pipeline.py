"""Slim GaMPEN end to end on a few hundred HSC-like galaxies: train -> calibrate -> predict, and fine-tuning."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from astropy.table import Table
from typer.testing import CliRunner

from galzoo_cli.main import app
from galzoo_tf.data.inputs import RecordSource
from galzoo_tf.errors import BadInputError
from galzoo_tf.tasks.parameters.targets import PARAMETERS

runner = CliRunner()
SLIM = ["--task", "parameters", "--image-size", "32", "--width", "0.125", "--batch-size", "32"]


def invoke(*args: str) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


@pytest.fixture(scope="module")
def hsc(tmp_path_factory) -> Path:
    """240 simulated HSC g-band galaxies (239x239 float32) with their true parameters."""
    from galzoo_tf.data.prepare import PrepareOptions, write_records
    from galzoo_tf.data.sources.synthetic import load_synthetic

    out = tmp_path_factory.mktemp("hsc") / "records"
    write_records(load_synthetic(240, seed=5, survey="hsc"), out, PrepareOptions(test_size=60, val_fraction=0.2,
                                                                                seed=5), workers=0)
    return out


@pytest.fixture(scope="module")
def model(hsc: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gampen") / "model"
    invoke("train", "--data", hsc, "--out", out, *SLIM, "--epochs", "2", "--dropout", "0.05", "--l2", "1e-4")
    return out


def test_train_calibrate_predict(hsc: Path, model: Path, tmp_path: Path):
    sidecar = json.loads((model / "galzoo.json").read_text())
    assert sidecar["task"] == "parameters" and sidecar["targets"]["transforms"] == ["logit", "ln", "ln"]
    assert np.isfinite(sidecar["best_val_loss"])

    output = invoke("calibrate", "--model", model, "--data", hsc, "--out", tmp_path / "report", "--passes", "20",
                    "--tune-dropout", "0.02,0.2")
    assert "HDI coverage" in output
    report = json.loads((tmp_path / "report" / "calibration.json").read_text())
    assert report["galaxies"] > 40 and set(report["coverage"]) == {*PARAMETERS, "mean"}
    assert report["dropout_rate"] in (0.02, 0.2)
    assert json.loads((model / "galzoo.json").read_text())["posterior"]["dropout_rate"] == report["dropout_rate"]
    for figure in report["figures"]:
        assert (tmp_path / "report" / figure).stat().st_size > 1000
    assert {"coverage-vs-dropout.png", "residual-histograms.png", "flagging.png"} <= set(report["figures"])
    assert set(report["tuning"]["coverage"]) == {"0.02", "0.2"} and set(report["r_squared"]) == \
        {"bulge_to_total", "r_e_arcsec", "magnitude"}
    assert {"precision", "recall"} <= set(report["flags"]["small"])

    chosen = RecordSource(hsc, "test").columns()["id"][3]
    invoke("predict", "--model", model, "--data", hsc, "--split", "test", "--out", tmp_path / "p.fits",
           "--passes", "30", "--save-samples", "--corner", chosen)
    assert (tmp_path / f"p-corner-{chosen}.png").stat().st_size > 1000
    catalogue = Table.read(tmp_path / "p.fits")
    assert len(catalogue) == 60  # every test record: prediction cannot know which are stars or artifacts
    assert report["galaxies"] <= 60  # calibration judges only records with true parameters
    for name in PARAMETERS:
        low, high = catalogue[f"{name}_hdi68_low"], catalogue[f"{name}_hdi68_high"]
        wide_low, wide_high = catalogue[f"{name}_hdi99_low"], catalogue[f"{name}_hdi99_high"]
        assert np.all(low <= high) and np.all(wide_low <= low) and np.all(wide_high >= high)
        assert catalogue[f"{name}_samples"].shape == (len(catalogue), 30)
    assert np.all((catalogue["bulge_to_total_mode"] >= 0) & (catalogue["bulge_to_total_mode"] <= 1))
    assert np.all(catalogue["r_e_arcsec_mode"] > 0) and np.all(catalogue["flux_mode"] > 0)
    np.testing.assert_array_equal(catalogue["small"], catalogue["r_e_arcsec_mode"] < 1.0)
    provenance = json.loads((tmp_path / "p.fits.json").read_text())
    assert provenance["task"] == "parameters" and provenance["models"][0]["dropout_rate"] == report["dropout_rate"]


def test_fine_tuning_starts_from_the_model_and_keeps_frozen_groups(hsc: Path, model: Path, tmp_path: Path):
    out = tmp_path / "tuned"
    invoke("train", "--data", hsc, "--out", out, *SLIM, "--epochs", "1", "--init-from", model,
           "--freeze", "stn", "--freeze", "block1")
    source = keras.saving.load_model(model / "model.keras", safe_mode=True)
    tuned = keras.saving.load_model(out / "model.keras", safe_mode=True)
    for name in ("stn", "conv1_1", "conv1_2"):
        for before, after in zip(source.get_layer(name).get_weights(), tuned.get_layer(name).get_weights(),
                                 strict=True):
            np.testing.assert_array_equal(before, after)
    changed = [not np.array_equal(a, b) for a, b in zip(source.get_layer("dense1").get_weights(),
                                                          tuned.get_layer("dense1").get_weights(), strict=True)]
    assert any(changed)
    sidecar = json.loads((out / "galzoo.json").read_text())
    assert sidecar["init_from"]["freeze"] == ["stn", "block1"]
    assert sidecar["targets"] == json.loads((model / "galzoo.json").read_text())["targets"]


def test_fine_tuning_refuses_another_architecture_and_vote_models(hsc: Path, model: Path, tmp_path: Path,
                                                                  tiny_bar):
    from galzoo_tf.training.loop import TrainConfig, train

    wider = TrainConfig(task="parameters", image_size=32, width=0.25, epochs=1, init_from=str(model))
    with pytest.raises(BadInputError, match="--width"):
        train(hsc, tmp_path / "a", wider, verbose=0)
    with pytest.raises(BadInputError, match="needs a parameters model"):
        train(hsc, tmp_path / "b", TrainConfig(task="parameters", image_size=32, width=0.125, epochs=1,
                                               init_from=str(tiny_bar[1])), verbose=0)


def test_parameter_task_needs_parameters_in_the_records(tiny_bar, gz2, tmp_path: Path):
    from galzoo_tf.data.prepare import PrepareOptions, write_records
    from galzoo_tf.tasks.registry import load_model
    from galzoo_tf.training.loop import TrainConfig, train

    from conftest import gz2_catalogue

    with pytest.raises(BadInputError, match="not a parameters model"):
        load_model(tiny_bar[1], "parameters")
    write_records(gz2_catalogue(gz2), tmp_path / "real", PrepareOptions(test_size=5, val_fraction=0.2), workers=0)
    config = TrainConfig(task="parameters", image_size=32, width=0.125, epochs=1)
    with pytest.raises(BadInputError, match="truth/bulge_to_total"):  # real GZ2 votes carry no parameters
        train(tmp_path / "real", tmp_path / "model", config, verbose=0)


def test_python_api_trains_gampen_with_its_own_dropout_default(hsc: Path, tmp_path: Path):
    from galzoo_tf.models import MCDropout
    from galzoo_tf.training.loop import TrainConfig, train

    train(hsc, tmp_path / "api", TrainConfig(task="parameters", image_size=32, width=0.125, batch_size=32,
                                             epochs=1), verbose=0)
    assert json.loads((tmp_path / "api" / "galzoo.json").read_text())["config"]["dropout"] == 7e-4
    network = keras.saving.load_model(tmp_path / "api" / "model.keras", safe_mode=True)
    assert {layer.rate for layer in network.layers if isinstance(layer, MCDropout)} == {7e-4}


def test_several_bands_stay_several_bands_end_to_end(tiny_bar, tmp_path: Path):
    """--colour keeps every band of colour records (here SDSS-like gri) through training and predict."""
    from galzoo_tf.tasks.registry import load_model
    from galzoo_tf.training.loop import TrainConfig, train

    records = tiny_bar[0]
    train(records, tmp_path / "colour", TrainConfig(task="parameters", image_size=32, width=0.125, epochs=1,
                                                    batch_size=32, greyscale=False), verbose=0)
    model = load_model(tmp_path / "colour")
    assert model.model.input_shape[-1] == 3 and model.augmentation.greyscale is False
    invoke("predict", "--model", tmp_path / "colour", "--data", records, "--split", "test", "--out",
           tmp_path / "colour.csv", "--passes", "4")
    assert len(Table.read(tmp_path / "colour.csv")) == RecordSource(records, "test").total


def test_networks_trained_at_other_rates_are_compared_as_gampen_chose_its_rate(hsc: Path, model: Path,
                                                                                 tmp_path: Path):
    other = tmp_path / "rate-0.3"
    invoke("train", "--data", hsc, "--out", other, *SLIM, "--epochs", "1", "--dropout", "0.3")
    output = invoke("calibrate", "--model", model, "--data", hsc, "--out", tmp_path / "report", "--passes", "8",
                    "--trained-rate", other)
    assert "networks trained at different dropout rates" in output
    compared = json.loads((tmp_path / "report" / "calibration.json").read_text())["trained_rates"]
    assert sorted(e["dropout_rate"] for e in compared["models"]) == [0.05, 0.3]
    best = min(compared["models"], key=lambda e: e["score"])
    assert compared["best"] == best["model"] and compared["best_dropout_rate"] == best["dropout_rate"]
    assert (tmp_path / "report" / "coverage-vs-trained-dropout.png").stat().st_size > 1000
    result = CliRunner().invoke(app, ["calibrate", "--model", str(model), "--data", str(hsc), "--out",
                                      str(tmp_path / "same"), "--passes", "4", "--trained-rate", str(model)])
    assert result.exit_code == 2 and "same dropout" in result.output


def test_a_finished_parameter_run_ships_in_float32_with_its_recipe(model: Path, tmp_path: Path):
    from galzoo_tf.tasks.registry import load_model
    from galzoo_tf.training.base_model import ship

    shipped = ship(model, "galzoo train ...", "gampen-base", tmp_path)
    copy, original = load_model(shipped), load_model(model)
    assert copy.sidecar["shipped"]["make"] == "make gampen-base" and copy.task == "parameters"
    assert {w.dtype for w in copy.model.weights} == {"float32"}
    images = np.random.default_rng(0).normal(0, 1, (2, *copy.model.input_shape[1:])).astype(np.float32)
    np.testing.assert_allclose(copy.model(images), original.model(images), rtol=1e-5, atol=1e-5)


def test_a_calibrated_rate_of_zero_is_used_not_taken_for_unset(hsc: Path, model: Path, tmp_path: Path):
    import shutil

    from galzoo_tf.training.model_dir import record_dropout_rate

    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    record_dropout_rate(copy, 0.0, hsc, "val", "test")
    invoke("calibrate", "--model", copy, "--data", hsc, "--out", tmp_path / "report", "--passes", "4")
    assert json.loads((tmp_path / "report" / "calibration.json").read_text())["dropout_rate"] == 0.0
