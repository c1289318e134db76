"""Every bad input of the foundation issue: one clear line naming row or file; nothing written is lost."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from PIL import Image
from typer.testing import CliRunner

from galzoo_cli.main import app
from galzoo_tf.data import records
from galzoo_tf.data.prepare import PrepareOptions, write_records
from galzoo_tf.data.sources.folder import load_folder
from galzoo_tf.errors import BadInputError

from conftest import gz2_catalogue, make_gz2

runner = CliRunner()


def run_gz2(fixture, out, *extra: str):
    return runner.invoke(app, ["prepare", "gz2", "--catalogue", str(fixture.catalogue), "--images",
                               str(fixture.images), "--mapping", str(fixture.mapping), "--out", str(out),
                               "--test-size", "2", "--min-votes", "smooth=0", "--workers", "0", *extra])


def error_line(result) -> str:
    """The single error line of a failed command."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


def edit_catalogue(fixture, change) -> None:
    frame = pd.read_csv(fixture.catalogue, dtype={"dr7objid": str})
    changed = change(frame)
    frame = frame if changed is None else changed
    frame.to_csv(fixture.catalogue, index=False)


@pytest.fixture
def small(tmp_path):
    return make_gz2(tmp_path / "gz2", n=10)


def test_missing_column_names_the_column(small, tmp_path):
    edit_catalogue(small, lambda f: f.drop(columns=["t03_bar_a06_bar_count"]))
    line = error_line(run_gz2(small, tmp_path / "out"))
    assert "missing column(s) t03_bar_a06_bar_count" in line and "gz2_hart16.csv" in line


def test_k_greater_than_n_names_the_row(small, tmp_path):
    def lower_total(frame):
        frame.loc[3, "total_classifications"] = frame.loc[3, "t01_smooth_or_features_a01_smooth_count"] - 1
    edit_catalogue(small, lower_total)
    line = error_line(run_gz2(small, tmp_path / "out"))
    assert f"row 4 (id {small.frame['dr7objid'][3]})" in line and "k > N" in line


@pytest.mark.parametrize("value, words", [(-2, "-2, a negative count"), ("2.5", "2.5, not a whole number"),
                                          ("many", "'many', not a whole number"), ("", "blank, not a whole")])
def test_bad_counts_name_row_and_column(small, tmp_path, value, words):
    def spoil(frame):
        frame["t03_bar_a06_bar_count"] = frame["t03_bar_a06_bar_count"].astype(object)
        frame.loc[6, "t03_bar_a06_bar_count"] = value
    edit_catalogue(small, spoil)
    line = error_line(run_gz2(small, tmp_path / "out"))
    assert f"row 7 (id {small.frame['dr7objid'][6]})" in line
    assert f"t03_bar_a06_bar_count is {words}" in line


def test_duplicate_id(small, tmp_path):
    edit_catalogue(small, lambda f: f.loc.__setitem__((8, "dr7objid"), f.loc[2, "dr7objid"]))
    line = error_line(run_gz2(small, tmp_path / "out"))
    assert "row 3" in line and "duplicate id" in line


def test_catalogue_row_whose_image_is_missing(small, tmp_path):
    (small.images / "105.jpg").unlink()
    line = error_line(run_gz2(small, tmp_path / "out"))
    assert f"row 6 (id {small.frame['dr7objid'][5]})" in line and "'105.jpg' not found" in line


def test_row_missing_from_the_mapping(small, tmp_path):
    mapping = pd.read_csv(small.mapping).drop(index=4)
    mapping.to_csv(small.mapping, index=False)
    line = error_line(run_gz2(small, tmp_path / "out"))
    assert "row 5" in line and "not in the mapping" in line


@pytest.mark.parametrize("damage", ["garbage", "truncated", "not square"])
def test_unreadable_truncated_or_wrong_shape_image_names_the_file(small, tmp_path, damage):
    path = small.images / "107.jpg"
    if damage == "garbage":
        path.write_bytes(b"this is not a jpeg")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    else:
        Image.new("RGB", (424, 300)).save(path)
    line = error_line(run_gz2(small, tmp_path / "out"))
    assert "107.jpg" in line
    assert ("424 x 300 pixels" in line) if damage == "not square" else ("cannot decode image" in line)


def test_empty_catalogue_is_a_clear_error(small, tmp_path):
    edit_catalogue(small, lambda f: f.iloc[:0])
    assert "no galaxies left" in error_line(run_gz2(small, tmp_path / "out"))


def make_folder(root, n=6, suffix=".png", file_column=False):
    """A user's project: images named by id and a labels CSV with the tree's count columns."""
    fixture = make_gz2(root / "src", n=n)
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(1)
    for galaxy_id in fixture.frame["dr7objid"]:
        if suffix == ".fits":
            fits.writeto(images / f"{galaxy_id}.fits", rng.normal(size=(64, 64)).astype(np.float32))
        else:
            Image.fromarray(rng.integers(0, 255, (100, 100, 3), dtype=np.uint8)).save(images / f"{galaxy_id}{suffix}")
    labels = fixture.frame.drop(columns=["dr7objid"]).assign(id=fixture.frame["dr7objid"])
    if file_column:
        labels["file"] = [f"{i}{suffix}" for i in labels["id"]]
    labels.to_csv(root / "labels.csv", index=False)
    return images, root / "labels.csv", labels


def test_path_escaping_the_image_root_is_refused(tmp_path):
    images, labels_path, labels = make_folder(tmp_path, file_column=True)
    secret = tmp_path / "secret.png"
    Image.new("RGB", (10, 10)).save(secret)
    labels.loc[2, "file"] = "../secret.png"
    labels.to_csv(labels_path, index=False)
    with pytest.raises(BadInputError, match=r"row 3 .*'../secret.png' escapes the image root"):
        load_folder(images, labels_path)
    (images / "link.png").symlink_to(secret)
    labels.loc[2, "file"] = "link.png"
    labels.to_csv(labels_path, index=False)
    with pytest.raises(BadInputError, match="'link.png' escapes the image root"):
        load_folder(images, labels_path)


def test_skip_bad_skips_and_counts_every_reason(tmp_path):
    fixture = make_gz2(tmp_path / "gz2", n=14)

    def spoil(frame):
        frame["t02_edgeon_a04_yes_count"] = frame["t02_edgeon_a04_yes_count"].astype(float)
        frame.loc[0, "t03_bar_a06_bar_count"] = -1
        frame.loc[1, "t02_edgeon_a04_yes_count"] = 1.5
        frame.loc[2, "total_classifications"] = 0
        frame.loc[4, "dr7objid"] = frame.loc[3, "dr7objid"]
    edit_catalogue(fixture, spoil)
    (fixture.images / "105.jpg").unlink()
    (fixture.images / "106.jpg").write_bytes(b"garbage")
    (fixture.images / "107.jpg").write_bytes((fixture.images / "108.jpg").read_bytes()[:500])
    out = tmp_path / "out"
    result = run_gz2(fixture, out, "--skip-bad")
    assert result.exit_code == 0, result.output
    manifest = records.read_manifest(out)
    assert manifest["skipped"] == {"negative count": 1, "non-integer count": 1, "k > N": 1, "duplicate id": 2,
                                   "image missing": 1, "unreadable image": 2}
    assert manifest["total"] == 14 - 8
    assert "skipped: unreadable image" in result.output and "skipped: duplicate id" in result.output


def test_a_bad_image_midway_keeps_finished_shards_and_the_run_resumes(tmp_path):
    fixture = make_gz2(tmp_path / "gz2", n=20)
    options = PrepareOptions(test_size=0, val_fraction=0, shard_size=4)


    out = tmp_path / "out"
    write_records(gz2_catalogue(fixture), tmp_path / "ref", options, workers=0)
    good = (fixture.images / "119.jpg").read_bytes()
    (fixture.images / "119.jpg").write_bytes(good[:200])
    with pytest.raises(BadInputError, match="119.jpg"):
        write_records(gz2_catalogue(fixture), out, options, workers=0)
    kept = {p.name: p.read_bytes() for p in out.glob("*.tfrecord")}
    assert kept and not list(out.glob(".*.tmp"))
    (fixture.images / "119.jpg").write_bytes(good)
    summary = write_records(gz2_catalogue(fixture), out, options, workers=0)
    assert summary.shards_reused == len(kept)
    assert all((out / name).read_bytes() == data for name, data in kept.items())
    assert records.read_manifest(out)["shards"] == records.read_manifest(tmp_path / "ref")["shards"]


def test_a_run_stopped_by_a_bad_image_resumes_with_skip_bad(tmp_path):
    fixture = make_gz2(tmp_path / "gz2", n=20)
    options = PrepareOptions(test_size=0, val_fraction=0, shard_size=4)


    out = tmp_path / "out"
    (fixture.images / "119.jpg").write_bytes(b"broken")
    with pytest.raises(BadInputError, match="119.jpg"):
        write_records(gz2_catalogue(fixture), out, options, workers=0)
    kept = len(list(out.glob("*.tfrecord")))
    summary = write_records(gz2_catalogue(fixture), out, replace(options, skip_bad=True), workers=0)
    assert kept >= 1 and summary.shards_reused == kept
    assert summary.splits["train"] == 19 and summary.skipped == {"unreadable image": 1}


def test_folder_of_pngs_with_labels(tmp_path):
    images, labels_path, labels = make_folder(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["prepare", "folder", "--images", str(images), "--labels", str(labels_path),
                                 "--out", str(out), "--workers", "0", "--test-size", "0.5", "--size", "64"])
    assert result.exit_code == 0, result.output
    manifest = records.read_manifest(out)
    assert manifest["source"] == "folder" and manifest["image"]["shape"] == [64, 64, 3]
    assert manifest["splits"]["test"] == 3 and manifest["total"] == 6
    got = {x["id"].numpy().decode(): int(x["bar/bar/count"]) for x in records.read_records(out)}
    assert got == dict(zip(labels["id"], labels["t03_bar_a06_bar_count"], strict=True))


def test_folder_split_column_is_used_as_given(tmp_path):
    images, labels_path, labels = make_folder(tmp_path)
    labels["split"] = ["train", "train", "val", "test", "TEST", "train"]
    labels.to_csv(labels_path, index=False)
    catalogue = load_folder(images, labels_path)
    summary = write_records(catalogue, tmp_path / "out", PrepareOptions(size=32), workers=0)
    assert summary.splits == {"train": 3, "val": 1, "test": 2}
    labels.loc[1, "split"] = "holdout"
    labels.to_csv(labels_path, index=False)
    with pytest.raises(BadInputError, match="row 2 .*split is 'holdout'"):
        load_folder(images, labels_path)


def test_fits_folder_fills_nan_pixels_and_refuses_all_nan(tmp_path):
    images, labels_path, labels = make_folder(tmp_path, suffix=".fits")
    first = images / f"{labels['id'][0]}.fits"
    data = fits.getdata(first)
    data[10:20, 10:20] = np.nan
    fits.writeto(first, data, overwrite=True)
    out = tmp_path / "out"
    write_records(load_folder(images, labels_path), out, PrepareOptions(size=32, test_size=1), workers=0)
    manifest = records.read_manifest(out)
    assert manifest["image"] == {"shape": [32, 32, 1], "dtype": "float32", "encoding": "raw"}
    for record in records.read_records(out):
        assert np.isfinite(record["image"].numpy()).all()
    fits.writeto(first, np.full((64, 64), np.nan, dtype=np.float32), overwrite=True)
    with pytest.raises(BadInputError, match="every pixel is NaN"):
        write_records(load_folder(images, labels_path), tmp_path / "out2", PrepareOptions(size=32, test_size=1),
                      workers=0)


def test_truncated_shard_is_detected_on_read(small, tmp_path):
    out = tmp_path / "out"
    assert run_gz2(small, out).exit_code == 0
    shard = next(out.glob("train-*.tfrecord"))
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(BadInputError, match="damaged or changed"):
        records.read_records(out)
