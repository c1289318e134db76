"""The whole pipeline through the command line on a small simulated set: prepare, train, calibrate, predict, acquire."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from astropy.table import Table
from PIL import Image
from typer.testing import CliRunner

from galzoo_cli.console import report as console_report
from galzoo_cli.main import app

runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_prepare_train_calibrate_predict_acquire(tmp_path, monkeypatch):
    monkeypatch.setattr(console_report, "_width", 250)  # the coverage table unfolded
    data, model, report = tmp_path / "synthetic", tmp_path / "bar", tmp_path / "report"
    invoke("prepare", "synthetic", "--n", "120", "--out", str(data), "--workers", "0", "--test-size", "30")
    invoke("train", "--data", str(data), "--out", str(model), "--question", "bar", "--epochs", "1",
           "--image-size", "32")
    output = invoke("calibrate", "--model", str(model), "--data", str(data), "--out", str(report), "--passes", "5",
                    "--tune-dropout", "0.2,0.8")
    assert "paper bar MC" in output and "+45.5%" in output and "noise floor" in output
    calibration = json.loads((report / "calibration.json").read_text())
    rate = calibration["recalibrated"]["dropout_rate"]
    assert rate in (0.2, 0.8) and json.loads((model / "galzoo.json").read_text())["posterior"]["dropout_rate"] == rate
    invoke("predict", "--model", str(model), "--data", str(data), "--split", "test", "--out",
           str(tmp_path / "cat.fits"), "--passes", "5")
    catalogue = Table.read(tmp_path / "cat.fits")
    assert len(catalogue) == 30 and set(catalogue["split"]) == {"test"}
    assert json.loads((tmp_path / "cat.fits.json").read_text())["models"][0]["dropout_rate"] == rate
    images = tmp_path / "images"
    images.mkdir()
    (data / "montage.png").rename(images / "montage.png")  # not square: a bad image
    Image.fromarray(np.full((100, 100, 3), 40, np.uint8)).save(images / "flat.png")
    result = runner.invoke(app, ["predict", "--model", str(model), "--images", str(images), "--out",
                                 str(tmp_path / "cat.csv"), "--passes", "3"])
    assert result.exit_code == 2 and "square" in result.output  # the montage is not square: one clear line
    skipped = invoke("predict", "--model", str(model), "--images", str(images), "--out", str(tmp_path / "c.csv"),
                     "--passes", "3", "--skip-bad", "--overwrite")
    assert "skipped: bad image shape" in skipped
    assert list(pd.read_csv(tmp_path / "c.csv")["id"]) == ["flat"]

    pool = tmp_path / "pool"
    invoke("prepare", "synthetic", "--n", "20", "--seed", "9", "--out", str(pool), "--workers", "0",
           "--test-size", "0", "--val-fraction", "0")
    output = invoke("acquire", "--model", str(model), "--pool", str(pool), "--n", "5", "--passes", "4",
                    "--out", str(tmp_path / "next.csv"), "--exclude", "synthetic-9-0000003")
    picked = pd.read_csv(tmp_path / "next.csv")
    assert len(picked) == 5 and "synthetic-9-0000003" not in set(picked["id"]) and "montage" in output
    assert (tmp_path / "next-montage.png").is_file()
    everything_labelled = runner.invoke(app, ["acquire", "--model", str(model), "--pool", str(data), "--n", "5",
                                              "--out", str(tmp_path / "none.csv")])
    assert everything_labelled.exit_code == 2 and "unlabelled" in everything_labelled.output
