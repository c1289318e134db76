"""A user's own project: a folder of JPEG/PNG/FITS images and a CSV of votes or labels.

The CSV has an ``id`` column (or the tree's id column), the votes of the tree's questions as
counts (``<stem>_count`` for GZ2), as fractions with each question's total
(``{question}_{answer}_fraction`` and ``{question}_total-votes`` for GZ DECaLS and Euclid), or as
fractions alone (pseudo-counts); or, with ``label_column``, one 0/1 column that becomes a
one-question yes/no tree. Optionally ``file`` (image path relative to the folder; default: the
file named after the id), ``split`` (train/val/test), ``ra``, ``dec`` and ``truth/...`` floats.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from galzoo_tf.data.labels import RowProblems, require_columns, shown_value
from galzoo_tf.data.sources.table import Catalogue, RowCheck, build_catalogue, checksum, images_under, read_table
from galzoo_tf.errors import BadInputError
from galzoo_tf.schema import Schema, binary_schema, load_schema

BAD_LABEL = "bad label"


def load_folder(images: Path, labels: Path, *, schema: Schema | None = None,
                min_votes: Mapping[str, int] | None = None, skip_bad: bool = False, label_column: str | None = None,
                volunteers: int | None = None) -> Catalogue:
    """Read and check a labels CSV and find each galaxy's image under ``images``."""
    frame = read_table(labels)
    check = None
    if label_column is not None:
        schema, frame, check = binary_labels(frame, label_column, str(labels))
    schema = schema or load_schema("gz2")
    images = Path(images)
    locate = images_under(images, frame, str(labels), schema)
    return build_catalogue(frame, source="folder", label=str(labels), schema=schema, locate=locate,
                           skip_bad=skip_bad, min_votes=min_votes or {}, check=check, volunteers=volunteers,
                           inputs={"labels": checksum(labels), "images": {"path": str(images.resolve())}},
                           cuts=[("catalogue rows", len(frame))])


def binary_labels(frame: pd.DataFrame, column: str, source: str) -> tuple[Schema, pd.DataFrame, RowCheck]:
    """A 0/1 column as a one-question yes/no tree with one vote per galaxy (1: yes), and the check that refuses
    any other value by row."""
    name = column.strip().lower()  # catalogue column names are read lower-case
    require_columns(frame, [name], source)
    schema = binary_schema(name)
    taken = [schema.count_column(a) for a in schema.answers if schema.count_column(a) in frame.columns]
    if taken:
        raise BadInputError("bad option", f"{source}: --label-column {name} would write {', '.join(taken)}, which "
                                          "the CSV already has; rename them or leave out --label-column")
    raw = frame[name]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    good = np.isin(values, (0.0, 1.0))
    yes, no = schema.question(name).answers
    labelled = frame.assign(**{schema.count_column(yes): np.where(good, values, 0).astype(np.int64),
                               schema.count_column(no): np.where(good, 1 - values, 0).astype(np.int64)})

    def check(_: pd.DataFrame, problems: RowProblems) -> None:
        problems.flag(~good, BAD_LABEL, lambda i: f"{name} is {shown_value(raw.iloc[i])}, not a label 0 or 1")

    return schema, labelled, check
