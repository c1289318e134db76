"""End-to-end `prepare gz2` on catalogues in the real Hart et al. 2016 format, resume and no-op re-runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table
from PIL import Image
from typer.testing import CliRunner

from galzoo_cli.main import app
from galzoo_tf.data import records
from galzoo_tf.data.prepare import PrepareOptions, write_records
from galzoo_tf.data.sources.gz2 import load_gz2
from galzoo_tf.errors import BadInputError

from conftest import gz2_catalogue, make_gz2

runner = CliRunner()


def read_back(out) -> dict[str, dict]:
    """Every record of a prepared folder, by id, as numpy values."""
    return {x["id"].numpy().decode(): {k: v.numpy() for k, v in x.items()}
            for x in records.read_records(out)}


def prepare_cli(*args: str):
    result = runner.invoke(app, ["prepare", "gz2", *args])
    return result


def test_prepare_gz2_records_hold_exactly_the_catalogue_counts(tmp_path):
    fixture = make_gz2(tmp_path / "gz2", n=30, stripe82=4)
    out = tmp_path / "records"
    result = prepare_cli("--catalogue", str(fixture.catalogue), "--images", str(fixture.images),
                         "--mapping", str(fixture.mapping), "--out", str(out), "--test-size", "5",
                         "--shard-size", "8", "--workers", "2", "--min-votes", "smooth=0")
    assert result.exit_code == 0, result.output
    assert "stripe82 samples" in result.output and "total written" in result.output
    got = read_back(out)
    expected = fixture.frame[fixture.frame["sample"] == "original"].set_index("dr7objid")
    assert set(got) == set(expected.index)
    schema = fixture.schema
    for galaxy_id, record in got.items():
        row = expected.loc[galaxy_id]
        for question in schema.questions:
            ks = [int(row[schema.count_column(a)]) for a in question.answers]
            assert [int(record[schema.count_key(a)]) for a in question.answers] == ks
            expected_total = row["total_classifications"] if question.name == "smooth" else sum(ks)
            assert record[schema.total_key(question)] == expected_total
        assert record["image"].shape == (256, 256, 3) and record["image"].dtype == np.uint8
        assert record["meta/ra"] == pytest.approx(row["ra"], rel=1e-6)
    manifest = records.read_manifest(out)
    assert manifest["splits"] == {"train": 19, "val": 2, "test": 5}
    assert manifest["source"] == "gz2" and manifest["schema"] == "gz2" and manifest["seed"] == 0
    assert manifest["inputs"]["catalogue"]["sha256"] == records.sha256_file(fixture.catalogue)
    for shard in manifest["shards"]:
        assert records.sha256_file(out / shard["file"]) == shard["sha256"]


def test_images_are_antialiased_resizes_of_the_originals(tmp_path):
    fixture = make_gz2(tmp_path / "gz2", n=6)
    out = tmp_path / "records"
    catalogue = gz2_catalogue(fixture)
    write_records(catalogue, out, PrepareOptions(test_size=1, val_fraction=0), workers=0)
    asset = dict(zip(fixture.frame["dr7objid"], range(100, 106), strict=True))
    for galaxy_id, record in read_back(out).items():
        original = Image.open(fixture.images / f"{asset[galaxy_id]}.jpg").convert("RGB")
        expected = np.asarray(original.resize((256, 256), Image.Resampling.LANCZOS))
        np.testing.assert_array_equal(record["image"], expected)


@pytest.mark.parametrize("form", ["csv.gz", "fits", "willett_objid"])
def test_catalogue_formats_read_alike(tmp_path, form):
    fixture = make_gz2(tmp_path / "gz2", n=8)
    frame = fixture.frame
    if form == "csv.gz":
        path = tmp_path / "gz2_hart16.csv.gz"
        frame.to_csv(path, index=False)
    elif form == "fits":
        path = tmp_path / "gz2_hart16.fits"
        table = Table.from_pandas(frame.assign(dr7objid=frame["dr7objid"].astype(np.int64)))
        table.write(path)
    else:  # Willett et al. 2013 tables call the id 'objid' and use the id-named image files
        path = tmp_path / "table.csv"
        frame.rename(columns={"dr7objid": "objid"}).to_csv(path, index=False)
    catalogue = load_gz2(path, fixture.images, mapping=fixture.mapping, min_votes={})
    reference = gz2_catalogue(fixture)
    pd.testing.assert_frame_equal(catalogue.table.drop(columns="path"), reference.table.drop(columns="path"))


def test_images_found_by_dr7objid_without_mapping(tmp_path):
    fixture = make_gz2(tmp_path / "gz2", n=5)
    for asset, galaxy_id in zip(range(100, 105), fixture.frame["dr7objid"], strict=True):
        (fixture.images / f"{asset}.jpg").rename(fixture.images / f"{galaxy_id}.jpg")
    catalogue = load_gz2(fixture.catalogue, fixture.images, min_votes={})
    assert [p.split("/")[-1] for p in catalogue.table["path"]] == [f"{i}.jpg" for i in fixture.frame["dr7objid"]]


def test_default_cuts_drop_stripe82_and_smooth_votes_below_36(tmp_path):
    fixture = make_gz2(tmp_path / "gz2", n=40, stripe82=5)
    catalogue = load_gz2(fixture.catalogue, fixture.images, mapping=fixture.mapping,
                         min_votes={"smooth": 36, "bar": 3})
    frame = fixture.frame[fixture.frame["sample"] == "original"]
    few = frame["total_classifications"] < 36
    bar_n = frame["t03_bar_a06_bar_count"] + frame["t03_bar_a07_no_bar_count"]
    cuts = dict(catalogue.cuts)
    assert cuts == {"catalogue rows": 40, "stripe82 samples": 5, "smooth N < 36": int(few.sum()),
                    "bar N < 3": int(((bar_n < 3) & ~few).sum())}
    assert len(catalogue.table) == int(((bar_n >= 3) & ~few).sum()) > 0
    kept = load_gz2(fixture.catalogue, fixture.images, mapping=fixture.mapping, keep_stripe82=True,
                    min_votes={})
    assert len(kept.table) == 40


def interrupt_after(n: int):
    def progress(done: int, total: int) -> None:
        if done > n:
            raise KeyboardInterrupt

    return progress


@pytest.mark.parametrize("workers", [0, 2])
def test_interrupted_prepare_resumes_to_the_same_shards(tmp_path, workers):
    fixture = make_gz2(tmp_path / "gz2", n=24)
    options = PrepareOptions(test_size=4, shard_size=5)


    reference = write_records(gz2_catalogue(fixture), tmp_path / "ref", options, workers=0)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        write_records(gz2_catalogue(fixture), out, options, workers=workers, progress=interrupt_after(12))
    assert not (out / "manifest.json").exists()
    finished = sorted(p.name for p in out.glob("*.tfrecord"))
    assert 1 <= len(finished) < 6 and not list(out.glob(".*.tmp"))
    resumed = write_records(gz2_catalogue(fixture), out, options, workers=workers)
    assert resumed.shards_reused == len(finished) and resumed.shards_written == 6 - len(finished)
    assert resumed.splits == reference.splits
    ref_manifest, new_manifest = records.read_manifest(tmp_path / "ref"), records.read_manifest(out)
    assert ref_manifest["shards"] == new_manifest["shards"]
    assert (out / "manifest.json").read_text() == (tmp_path / "ref" / "manifest.json").read_text().replace(
        str(tmp_path / "ref"), str(out))


def test_rerun_is_a_no_op_and_other_options_are_refused(tmp_path):
    fixture = make_gz2(tmp_path / "gz2", n=12)
    out = tmp_path / "records"
    args = ["--catalogue", str(fixture.catalogue), "--images", str(fixture.images), "--mapping",
            str(fixture.mapping), "--out", str(out), "--test-size", "2", "--min-votes", "smooth=0",
            "--workers", "0"]
    assert prepare_cli(*args).exit_code == 0
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = prepare_cli(*args)
    assert again.exit_code == 0 and "up to date" in again.output
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    other = prepare_cli(*args, "--seed", "3")
    assert other.exit_code == 2 and "another prepare" in other.output
    replaced = prepare_cli(*args, "--seed", "3", "--overwrite")
    assert replaced.exit_code == 0
    assert records.read_manifest(out)["seed"] == 3


def test_png_encoding_is_lossless(tmp_path):
    fixture = make_gz2(tmp_path / "gz2", n=5)
    catalogue = gz2_catalogue(fixture)
    write_records(catalogue, tmp_path / "raw", PrepareOptions(test_size=1), workers=0)
    catalogue = gz2_catalogue(fixture)
    write_records(catalogue, tmp_path / "png", PrepareOptions(test_size=1, encoding="png"), workers=0)
    raw, png = read_back(tmp_path / "raw"), read_back(tmp_path / "png")
    assert json.loads((tmp_path / "png" / "manifest.json").read_text())["image"]["encoding"] == "png"
    for galaxy_id in raw:
        np.testing.assert_array_equal(raw[galaxy_id]["image"], png[galaxy_id]["image"])


def test_test_split_larger_than_the_catalogue_is_a_clear_error(tmp_path):
    fixture = make_gz2(tmp_path / "gz2", n=5)
    catalogue = gz2_catalogue(fixture)
    with pytest.raises(BadInputError, match="test split of 2500 galaxies needs more than the 5"):
        write_records(catalogue, tmp_path / "out", PrepareOptions(), workers=0)
