"""A user's own project: a folder of JPEG/PNG/FITS images and a CSV of vote counts.

The CSV has an ``id`` column (or the tree's id column), the tree's count columns
(``<stem>_count`` for GZ2), and optionally ``file`` (image path relative to the folder;
default: the file named after the id), ``split`` (train/val/test), ``ra``, ``dec`` and
``truth/...`` floats.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from galzoo_tf.data.sources.table import Catalogue, build_catalogue, checksum, images_under, read_table
from galzoo_tf.schema import Schema, load_schema


def load_folder(images: Path, labels: Path, *, schema: Schema | None = None,
                min_votes: Mapping[str, int] | None = None, skip_bad: bool = False) -> Catalogue:
    """Read and check a labels CSV and find each galaxy's image under ``images``."""
    schema = schema or load_schema("gz2")
    frame = read_table(labels)
    images = Path(images)
    locate = images_under(images, frame, str(labels), schema)
    return build_catalogue(frame, source="folder", label=str(labels), schema=schema, locate=locate,
                           skip_bad=skip_bad, min_votes=min_votes or {},
                           inputs={"labels": checksum(labels), "images": {"path": str(images.resolve())}},
                           cuts=[("catalogue rows", len(frame))])
