"""Real files from ../shared/data: the Willett et al. 2013 Stripe 82 table and real DECaLS PNGs.

Skipped cleanly where a clone has no ../shared.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from galzoo_tf.data import records
from galzoo_tf.data.prepare import PrepareOptions, write_records
from galzoo_tf.data.sources.folder import load_folder
from galzoo_tf.data.sources.gz2 import load_gz2
from galzoo_tf.errors import BadInputError
from galzoo_tf.schema import load_schema

from conftest import needs_shared


@pytest.fixture(scope="module")
def stripe82(tmp_path_factory):
    """The real table, plus a mapping that points every galaxy at one blank image (no images needed here)."""
    path = needs_shared("data", "gz2_stripe82_counts", "table5.csv.gz")
    raw = pd.read_csv(path, dtype={"objid": str})
    images = tmp_path_factory.mktemp("blank_images")
    Image.new("RGB", (16, 16)).save(images / "blank.jpg")
    mapping = images / "mapping.csv"
    pd.DataFrame({"objid": raw["objid"], "asset_id": "blank"}).to_csv(mapping, index=False)
    return path, raw, images, mapping


def read(path, stripe82):
    """The real catalogue through the gz2 source, with the stripe82 cut switched off."""
    _, _, images, mapping = stripe82
    return load_gz2(path, images, mapping=mapping, keep_stripe82=True, min_votes={})


def test_every_count_column_of_the_real_table_is_read(stripe82):
    path, raw, _, _ = stripe82
    catalogue = read(path, stripe82)
    schema = load_schema("gz2")
    assert len(catalogue.table) == len(raw) == 19761
    table = catalogue.table.set_index("id")
    for answer in schema.answers:
        np.testing.assert_array_equal(table.loc[raw["objid"], schema.count_key(answer)].to_numpy(),
                                      raw[schema.count_column(answer)].to_numpy())


def test_real_totals_are_consistent_with_the_tree(stripe82):
    path, raw, _, _ = stripe82
    table = read(path, stripe82).table
    schema = load_schema("gz2")
    smooth = schema.question("smooth")
    assert (table[schema.total_key(smooth)] == raw["total_classifications"].to_numpy()).all()
    assert (sum(table[schema.count_key(a)] for a in smooth.answers) == table[schema.total_key(smooth)]).all()
    for question in schema.questions:
        parents = schema.parents(question.name)
        if not parents:
            continue
        reached = sum(table[schema.count_key(a)] for a in parents)
        difference = table[schema.total_key(question)] - reached
        # GZ2's cleaning removed a few classifications after the fact, so a handful differ by a vote or two
        assert (difference == 0).mean() > 0.95, question.name
        assert difference.abs().max() <= 5, question.name
    assert int(table.filter(like="/count").to_numpy().sum()) == int(raw["total_votes"].sum())


def test_real_fits_table_reads_the_same_counts(stripe82):
    path = stripe82[0]
    fits_path = needs_shared("data", "gz2_stripe82_counts", "table5.fits.gz")
    from_csv = read(path, stripe82).table
    from_fits = read(fits_path, stripe82).table
    pd.testing.assert_frame_equal(from_csv.drop(columns=["path", "meta/ra", "meta/dec"]),
                                  from_fits.drop(columns=["path", "meta/ra", "meta/dec"]))


def test_default_cuts_drop_every_stripe82_galaxy(stripe82):
    path, _, images, mapping = stripe82
    catalogue = load_gz2(path, images, mapping=mapping, min_votes={})
    assert dict(catalogue.cuts)["stripe82 samples"] == 19761
    with pytest.raises(BadInputError, match="no galaxies left"):
        write_records(catalogue, images / "out", PrepareOptions(), workers=0)


def test_real_decals_pngs_through_prepare_folder(tmp_path):
    root = needs_shared("data", "decals_rings")
    catalogue = pd.read_csv(root / "catalogue.csv").head(12)
    schema = load_schema("gz2")
    labels = pd.DataFrame({"id": catalogue["iauname"], "file": catalogue["iauname"] + ".png"})
    featured = np.round(catalogue["smooth-or-featured_featured-or-disk_fraction"] * 40).astype(int)
    for answer in schema.answers:
        labels[schema.count_column(answer)] = 0
    labels["t01_smooth_or_features_a02_features_or_disk_count"] = featured
    labels["t01_smooth_or_features_a01_smooth_count"] = 40 - featured
    labels.to_csv(tmp_path / "labels.csv", index=False)
    out = tmp_path / "out"
    write_records(load_folder(root / "images", tmp_path / "labels.csv"), out, PrepareOptions(test_size=2),
                  workers=2)
    got = list(records.read_records(out))
    assert len(got) == 12
    image = got[0]["image"].numpy()
    assert image.shape == (256, 256, 3) and 20 < image.mean() < 200 and image.std() > 5
