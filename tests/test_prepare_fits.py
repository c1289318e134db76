"""`galzoo prepare fits`: a user's FITS cutouts and a table of L_B/L_T, R_e and flux become parameter records."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.table import Table
from PIL import Image
from typer.testing import CliRunner

from galzoo_cli.main import app
from galzoo_tf.data import records
from galzoo_tf.data.inputs import RecordSource
from galzoo_tf.data.prepare import PrepareOptions, write_records
from galzoo_tf.data.sources import fits_table
from galzoo_tf.data.sources.fits_table import load_fits_parameters
from galzoo_tf.errors import BadInputError
from galzoo_tf.tasks.parameters.targets import PARAMETERS, TRUTH_KEYS, check_parameters

runner = CliRunner()
N = 8
SIDE = 32


def make_project(root, n: int = N, file_column: bool = False):
    """n 32x32 FITS cutouts named by id and a CSV of their parameters; returns (images, table path, table)."""
    images = root / "cutouts"
    images.mkdir()
    rng = np.random.default_rng(3)
    ids = [f"hsc{i:03d}" for i in range(n)]
    for galaxy_id in ids:
        fits.writeto(images / f"{galaxy_id}.fits", rng.normal(size=(SIDE, SIDE)).astype(np.float32))
    table = pd.DataFrame({"id": ids, "bulge_to_total": rng.uniform(0, 1, n), "r_e_arcsec": rng.uniform(0.5, 3, n),
                          "flux": rng.uniform(1e3, 1e5, n), "ra": rng.uniform(0, 360, n)})
    if file_column:
        table["file"] = [f"{i}.fits" for i in ids]
    table.to_csv(root / "parameters.csv", index=False)
    return images, root / "parameters.csv", table


def prepare(catalogue, out, **options):
    return write_records(catalogue, out, PrepareOptions(size=SIDE, test_size=2, **options), workers=0)


def stored_parameters(out) -> dict[str, tuple[float, ...]]:
    """id -> (L_B/L_T, R_e, flux) as read back from every split of the records."""
    columns = RecordSource(out, None, TRUTH_KEYS).columns()
    return {galaxy_id: tuple(columns[key][i] for key in TRUTH_KEYS) for i, galaxy_id in enumerate(columns["id"])}


def expected_parameters(table: pd.DataFrame) -> dict[str, tuple[float, ...]]:
    return {row.id: tuple(np.float32(getattr(row, name)) for name in PARAMETERS) for row in table.itertuples()}


def test_parameter_names_match_what_parameter_models_read():
    assert tuple(f"truth/{name}" for name in fits_table.PARAMETERS) == TRUTH_KEYS


def test_records_carry_the_parameters_and_no_votes(tmp_path):
    images, table_path, table = make_project(tmp_path)
    out = tmp_path / "out"
    summary = prepare(load_fits_parameters(images, table_path), out)
    assert summary.splits["test"] == 2 and sum(summary.splits.values()) == N
    manifest = check_parameters(out)
    assert manifest["source"] == "fits" and manifest["int_features"] == [] and manifest["questions"] == {}
    assert manifest["image"] == {"shape": [SIDE, SIDE, 1], "dtype": "float32", "encoding": "raw"}
    assert set(manifest["float_features"]) == {*TRUTH_KEYS, "meta/ra"}
    assert stored_parameters(out) == expected_parameters(table)


def test_a_fits_table_works_as_a_csv(tmp_path):
    images, _, table = make_project(tmp_path, file_column=True)
    fits_path = tmp_path / "parameters.fits"
    Table.from_pandas(table).write(fits_path)
    prepare(load_fits_parameters(images, fits_path), tmp_path / "out")
    assert stored_parameters(tmp_path / "out") == expected_parameters(table)


def test_truth_spelling_of_the_columns_is_accepted(tmp_path):
    images, table_path, table = make_project(tmp_path)
    table.rename(columns={name: f"truth/{name}" for name in PARAMETERS}).to_csv(table_path, index=False)
    prepare(load_fits_parameters(images, table_path), tmp_path / "out")
    assert stored_parameters(tmp_path / "out") == expected_parameters(table)


def test_nan_pixels_are_filled(tmp_path):
    images, table_path, table = make_project(tmp_path)
    first = images / f"{table['id'][0]}.fits"
    data = fits.getdata(first)
    data[5:12, 5:12] = np.nan
    fits.writeto(first, data, overwrite=True)
    out = tmp_path / "out"
    prepare(load_fits_parameters(images, table_path), out)
    stored = {r["id"].numpy().decode(): r["image"].numpy() for r in records.read_records(out)}
    assert len(stored) == N and all(np.isfinite(image).all() for image in stored.values())
    finite = data[np.isfinite(data)]
    assert stored[table["id"][0]][8, 8, 0] == pytest.approx(np.median(finite))


@pytest.mark.parametrize("column", PARAMETERS)
def test_a_missing_parameter_column_is_named(tmp_path, column):
    images, table_path, table = make_project(tmp_path)
    table.drop(columns=[column]).to_csv(table_path, index=False)
    with pytest.raises(BadInputError, match=rf"parameters.csv: missing column\(s\) {column}$"):
        load_fits_parameters(images, table_path)


@pytest.mark.parametrize("column, value, problem", [
    ("bulge_to_total", 1.4, "bulge_to_total is 1.4, not a fraction L_B/L_T from 0 to 1"),
    ("r_e_arcsec", 0.0, "r_e_arcsec is 0, not a positive effective radius in arcsec"),
    ("flux", -5.0, "flux is -5, not a positive flux in image counts"),
    ("flux", "bright", "flux is 'bright', not a finite number"),
    ("r_e_arcsec", None, "r_e_arcsec is blank, not a finite number"),
])
def test_a_bad_parameter_names_the_row(tmp_path, column, value, problem):
    images, table_path, table = make_project(tmp_path)
    table[column] = table[column].astype(object)
    table.loc[4, column] = value
    table.to_csv(table_path, index=False)
    with pytest.raises(BadInputError, match=r"row 5 \(id hsc004\): " + problem.replace("(", r"\(")):
        load_fits_parameters(images, table_path)


def test_skip_bad_skips_and_counts_bad_rows(tmp_path):
    images, table_path, table = make_project(tmp_path)
    table.loc[1, "bulge_to_total"] = -0.2
    table.loc[6, "bulge_to_total"] = 1.01
    table.to_csv(table_path, index=False)
    catalogue = load_fits_parameters(images, table_path, skip_bad=True)
    assert catalogue.skipped == {fits_table.OUT_OF_RANGE: 2}
    assert ("skipped: parameter out of range", 2) in catalogue.cuts
    prepare(catalogue, tmp_path / "out")
    assert set(stored_parameters(tmp_path / "out")) == set(table["id"]) - {"hsc001", "hsc006"}


def test_a_file_escaping_the_image_root_is_refused(tmp_path):
    images, table_path, table = make_project(tmp_path, file_column=True)
    fits.writeto(tmp_path / "x.fits", np.zeros((SIDE, SIDE), np.float32))
    table.loc[2, "file"] = "../x.fits"
    table.to_csv(table_path, index=False)
    with pytest.raises(BadInputError, match=r"row 3 .*'../x.fits' escapes the image root"):
        load_fits_parameters(images, table_path)


def test_images_other_than_fits_are_refused(tmp_path):
    images, table_path, table = make_project(tmp_path, file_column=True)
    Image.new("L", (SIDE, SIDE)).save(images / "hsc003.png")
    table.loc[3, "file"] = "hsc003.png"
    table.to_csv(table_path, index=False)
    with pytest.raises(BadInputError, match=r"row 4 .*hsc003.png is not a FITS image"):
        load_fits_parameters(images, table_path)


def test_cli_keeps_the_cutouts_own_size_by_default(tmp_path):
    images, table_path, table = make_project(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["prepare", "fits", "--images", str(images), "--table", str(table_path),
                                 "--out", str(out), "--workers", "0", "--test-size", "0.25"])
    assert result.exit_code == 0, result.output
    manifest = records.read_manifest(out)
    assert manifest["image"]["shape"] == [SIDE, SIDE, 1] and manifest["splits"]["test"] == 2
    assert "galzoo train --task parameters" in result.output
    assert stored_parameters(out) == expected_parameters(table)


def test_cli_reports_a_bad_row_in_one_line(tmp_path):
    images, table_path, table = make_project(tmp_path)
    table.loc[0, "bulge_to_total"] = 2
    table.to_csv(table_path, index=False)
    result = runner.invoke(app, ["prepare", "fits", "--images", str(images), "--table", str(table_path),
                                 "--out", str(tmp_path / "out"), "--workers", "0"])
    assert result.exit_code == 2
    assert "error:" in result.output and "row 1 (id hsc000): bulge_to_total is 2" in result.output
    result = runner.invoke(app, ["prepare", "fits", "--images", str(images), "--table", str(table_path),
                                 "--out", str(tmp_path / "out"), "--workers", "0", "--skip-bad", "--size", "16"])
    assert result.exit_code == 0, result.output
    assert records.read_manifest(tmp_path / "out")["total"] == N - 1
