"""The Galaxy Zoo 2 source: Hart et al. (2016) / Willett et al. (2013) catalogues plus GZ2 images.

Images are joined through the Zenodo filename mapping (``objid, sample, asset_id`` ->
``<asset_id>.jpg``) or, without a mapping, through files named ``<dr7objid>.jpg|png``.
Default cuts follow Walmsley et al. (2019): drop Stripe 82 samples and galaxies with
fewer than 36 smooth-or-featured votes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from galzoo_tf import errors
from galzoo_tf.data.labels import RowProblems, parse_min_votes, require_columns
from galzoo_tf.data.sources.table import Catalogue, build_catalogue, checksum, image_index, locate_in, read_table
from galzoo_tf.errors import BadInputError
from galzoo_tf.schema import Schema, load_schema

DEFAULT_MIN_VOTES = {"smooth": 36}
STRIPE82_PREFIX = "stripe82"


def gz2_min_votes(specs: Iterable[str] = (), schema: Schema | None = None) -> dict[str, int]:
    """The vote cuts of a GZ2 prepare: the paper's ``DEFAULT_MIN_VOTES``, each overridden or extended by the
    ``QUESTION=N`` specs of ``--min-votes`` (``smooth=0`` switches the default cut off)."""
    return {**DEFAULT_MIN_VOTES, **parse_min_votes(specs, schema or load_schema("gz2"))}


def mapped_names(frame: pd.DataFrame, mapping_path: Path) -> pd.Series:
    """Image file name of every catalogue row via the mapping ('' where the mapping has no row)."""
    mapping = read_table(mapping_path)
    require_columns(mapping, ["dr7objid", "asset_id"], str(mapping_path))
    keys = ["dr7objid", "sample"] if "sample" in mapping.columns and "sample" in frame.columns else ["dr7objid"]
    mapping = mapping.drop_duplicates(keys)
    if mapping["dr7objid"].duplicated().any() and keys == ["dr7objid"]:
        raise BadInputError("ambiguous mapping", f"{mapping_path}: an objid maps to several images; "
                                                 "the catalogue needs a 'sample' column to choose")
    joined = frame[keys].merge(mapping[[*keys, "asset_id"]], how="left", on=keys)
    return joined["asset_id"].fillna("").map(lambda asset: f"{asset}.jpg" if asset else "")


def load_gz2(catalogue: Path, images: Path, *, mapping: Path | None = None, schema: Schema | None = None,
             keep_stripe82: bool = False, min_votes: Mapping[str, int] | None = None,
             skip_bad: bool = False) -> Catalogue:
    """Read and check a GZ2 catalogue, join its images and apply the paper's cuts."""
    schema = schema or load_schema("gz2")
    frame = read_table(catalogue)
    require_columns(frame, ["dr7objid"], f"{catalogue} (or objid)")
    cuts = [("catalogue rows", len(frame))]
    if "sample" in frame.columns and not keep_stripe82:
        stripe82 = frame["sample"].str.lower().str.startswith(STRIPE82_PREFIX)
        cuts.append(("stripe82 samples", int(stripe82.sum())))
        frame = frame[~stripe82]
    images = Path(images)
    index = image_index(images)

    def locate(rows: pd.DataFrame, problems: RowProblems) -> list[str | None]:
        if mapping is None:
            return locate_in(images, rows["dr7objid"], problems, index)
        names = mapped_names(rows, mapping)
        problems.flag((names == "").to_numpy(), errors.MISSING_IMAGE, lambda i: f"not in the mapping {mapping}")
        return locate_in(images, names, problems, index)

    inputs = {"catalogue": checksum(catalogue)}
    if mapping is not None:
        inputs["mapping"] = checksum(mapping)
    return build_catalogue(frame, source="gz2", label=str(catalogue), schema=schema, locate=locate,
                           skip_bad=skip_bad, min_votes=DEFAULT_MIN_VOTES if min_votes is None else min_votes,
                           inputs=inputs, cuts=cuts)
