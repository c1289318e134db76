"""`galzoo predict`: catalogues in three formats, streaming in bounded memory, resume, folders of images."""

from __future__ import annotations

import gc
import json
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from astropy.io import fits
from astropy.table import Table
from PIL import Image

from galzoo_tf.catalogues.predict import predict
from galzoo_tf.data.inputs import FolderSource, RecordSource
from galzoo_tf.errors import BadInputError
from galzoo_tf.tasks.registry import load_model
from galzoo_tf.tasks.votes.catalogue import PredictOptions

FAST = {"passes": 4, "batch_size": 16}


def test_fits_catalogue_has_a_row_per_galaxy_with_consistent_summaries(tiny_bar, tmp_path):
    records, model_dir = tiny_bar
    model = load_model(model_dir, "votes")
    result = predict([model], RecordSource(records), tmp_path / "cat.fits", PredictOptions(save_samples=True, **FAST))
    table = Table.read(tmp_path / "cat.fits")
    assert result.rows == len(table) == 160 and len(set(table["id"])) == 160
    samples = np.asarray(table["bar_bar_rho_samples"])
    assert samples.shape == (160, 4)
    np.testing.assert_allclose(table["bar_bar_rho_mean"], samples.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(table["bar_bar_rho_mean"] + table["bar_no_bar_rho_mean"], 1, rtol=1e-5)
    assert np.all(table["bar_bar_fraction_low"] <= table["bar_bar_fraction"])
    assert np.all(table["bar_bar_fraction"] <= table["bar_bar_fraction_high"])
    assert np.all(table["bar_bar_rho_p05"] <= table["bar_bar_rho_p95"])
    header = fits.getheader(tmp_path / "cat.fits", 0)
    assert header["GZSEED"] == 0 and header["GZMODEL"] == model.checksum()
    sidecar = json.loads((tmp_path / "cat.fits.json").read_text())
    assert set(table.colnames) == set(sidecar["columns"]) | {"split"}
    assert sidecar["input"]["fingerprint"] == json.loads((records / "manifest.json").read_text())["fingerprint"]
    assert not list(tmp_path.glob(".*"))  # no partial folder or temporary file left


def test_csv_and_parquet_hold_the_same_numbers_as_fits(tiny_bar, tmp_path):
    records, model_dir = tiny_bar
    model = load_model(model_dir, "votes")
    source = RecordSource(records, "test")
    for name in ("cat.fits", "cat.csv", "cat.parquet"):
        predict([model], source, tmp_path / name, PredictOptions(save_samples=True, **FAST))
    reference = Table.read(tmp_path / "cat.fits")
    csv, parquet = pd.read_csv(tmp_path / "cat.csv"), pq.read_table(tmp_path / "cat.parquet").to_pandas()
    for frame in (csv, parquet):
        assert list(frame["id"]) == list(reference["id"])
        np.testing.assert_allclose(frame["bar_bar_rho_std"], reference["bar_bar_rho_std"], rtol=1e-5)
    np.testing.assert_allclose(np.stack(parquet["bar_bar_rho_samples"]), reference["bar_bar_rho_samples"])
    first = np.array(csv["bar_bar_rho_samples"][0].split(), dtype=float)
    np.testing.assert_allclose(first, reference["bar_bar_rho_samples"][0], rtol=1e-5)


class InterruptedRunError(Exception):
    pass


def test_an_interrupted_run_resumes_to_the_same_catalogue(tiny_bar, tmp_path):
    records, model_dir = tiny_bar
    model, options = load_model(model_dir, "votes"), PredictOptions(part_rows=32, **FAST)
    predict([model], RecordSource(records), tmp_path / "whole.fits", options)

    def stop_after_three(done: int, total: int) -> None:
        if done >= 3 * 32 + 16:
            raise InterruptedRunError

    with pytest.raises(InterruptedRunError):
        predict([model], RecordSource(records), tmp_path / "cut.fits", options, progress=stop_after_three)
    assert not (tmp_path / "cut.fits").exists()
    state = json.loads((tmp_path / ".cut.fits.partial" / "state.json").read_text())
    assert state["rows"] == 96  # three parts of 32 kept, the unflushed batch lost
    with pytest.raises(BadInputError, match="--resume"):
        predict([model], RecordSource(records), tmp_path / "cut.fits", options)
    with pytest.raises(BadInputError, match="passes"):
        predict([model], RecordSource(records), tmp_path / "cut.fits", PredictOptions(passes=5, part_rows=32),
                resume=True)
    predict([model], RecordSource(records), tmp_path / "cut.fits", options, resume=True)
    whole, cut = Table.read(tmp_path / "whole.fits"), Table.read(tmp_path / "cut.fits")
    assert list(whole["id"]) == list(cut["id"])
    for name in whole.colnames[3:]:
        np.testing.assert_array_equal(whole[name], cut[name])


def test_folder_of_images_with_a_corrupt_file(tiny_bar, tmp_path):
    records, model_dir = tiny_bar
    model = load_model(model_dir, "votes")
    folder = tmp_path / "images" / "night1"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(5):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / f"g{index}.png")
    fits.PrimaryHDU(np.where(rng.random((64, 64)) < 0.1, np.nan, rng.normal(size=(64, 64)))).writeto(
        folder / "g5.fits")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(BadInputError, match="broken.jpg"):
        predict([model], FolderSource(tmp_path / "images", model.image), tmp_path / "cat.csv", PredictOptions(**FAST))
    result = predict([model], FolderSource(tmp_path / "images", model.image, skip_bad=True), tmp_path / "cat.csv",
                     PredictOptions(**FAST), resume=True)
    frame = pd.read_csv(tmp_path / "cat.csv")
    assert result.skipped == {"unreadable image": 1}
    assert sorted(frame["id"]) == [f"night1/g{i}" for i in range(6)] and frame["bar_bar_rho_mean"].notna().all()


def peak_memory(model, total: int, out: Path, part_rows: int, random_images) -> int:
    """Peak Python-heap bytes of a whole predict run (tracemalloc sees numpy arrays and tables)."""
    gc.collect()
    tracemalloc.start()
    predict([model], random_images(total), out, PredictOptions(passes=60, tta=False, batch_size=50,
                                                              save_samples=True, part_rows=part_rows))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    shutil.rmtree(out.parent)
    return peak


def test_memory_does_not_grow_with_the_number_of_galaxies(tiny_bar, tmp_path, random_images):
    model = load_model(tiny_bar[1], "votes")
    peak_memory(model, 100, tmp_path / "warm" / "c.fits", 200, random_images)  # traces the graphs first
    small = peak_memory(model, 500, tmp_path / "small" / "c.fits", 200, random_images)
    large = peak_memory(model, 4000, tmp_path / "large" / "c.fits", 200, random_images)
    # 4000 rows of 60 x 2 samples are ~2 MB: a run holding its catalogue would show it
    assert large < small + 500_000, (small, large)
    held = peak_memory(model, 4000, tmp_path / "held" / "c.fits", 10**9, random_images)  # the same run, never flushing
    assert held > large + 1_500_000, (large, held)
