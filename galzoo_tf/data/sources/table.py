"""What every catalogue source shares: reading a table file and turning its rows into a ``Catalogue``.

A source only says how to read its table and where each galaxy's image is; checking
counts, ids and images, skipping bad rows and applying vote cuts happen here once.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from galzoo_tf import errors
from galzoo_tf.data import images
from galzoo_tf.data.labels import RowProblems, VoteTable, apply_min_votes, vote_counts
from galzoo_tf.data.layout import SPLITS, ImageSpec
from galzoo_tf.errors import BadInputError
from galzoo_tf.fileio import sha256_file
from galzoo_tf.kaggle import PREFIX as KAGGLE_PREFIX
from galzoo_tf.schema import Schema

# Column spellings of published catalogues mapped to the names galzoo uses.
ALIASES = {"objid": "dr7objid", "gz2class": "gz2_class", "galaxyid": "id"}  # galaxyid: the Kaggle release's
ID_COLUMNS = ("dr7objid", "id", "iauname", "object_id")  # GZ2, anyone's, GZ DECaLS, Euclid
# Float columns carried into the records when present (positions help cross-matching later).
META_COLUMNS = {"ra": "meta/ra", "dec": "meta/dec"}
# Columns carried into the records under their own name: simulated truth, and the Kaggle release's fractions.
FLOAT_PREFIXES = ("truth/", KAGGLE_PREFIX)

ImageLoader = Callable[[list[dict], tuple[int, ...], str], list]


@dataclass
class Catalogue:
    """What a source hands to ``write_records``: galaxies that passed its checks and cuts."""

    source: str
    schema: Schema
    table: pd.DataFrame  # columns: id, item columns, int feature keys, float feature keys, optional split
    int_features: list[str]
    float_features: list[str]
    inputs: dict[str, dict] = field(default_factory=dict)  # name -> {"path", "sha256"}
    cuts: list[tuple[str, int]] = field(default_factory=list)  # ("catalogue rows", n) first
    skipped: Counter = field(default_factory=Counter)
    # How images are made: a module-level function (it runs in worker processes) taking a list of
    # items (dicts of ``item_columns``), the image shape and encoding, returning bytes or the error
    # of each item. Files by default; the synthetic source renders instead.
    loader: ImageLoader = images.load_chunk
    item_columns: tuple[str, ...] = ("path",)
    image_spec: ImageSpec | None = None  # fixed by the source, or inferred from the files
    label: str = ""  # the catalogue file's name, as messages about its rows name it
    warnings: list[str] = field(default_factory=list)  # accepted, but worth telling the user once


Locator = Callable[[pd.DataFrame, RowProblems], list[str | None]]
# A source's own checks of its rows (beyond ids, counts and images), flagging bad rows in ``problems``.
RowCheck = Callable[[pd.DataFrame, RowProblems], None]


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a catalogue as CSV (optionally gzipped) or FITS; ids stay exact strings, names lower-case."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError("missing file", f"{path}: file not found")
    name = path.name.lower()
    try:
        if name.endswith((".csv", ".csv.gz", ".txt")):
            frame = pd.read_csv(path, dtype={c: str for c in (*ID_COLUMNS, "objid", "GalaxyID", "asset_id", "file")},
                                keep_default_na=False, na_values=[""])
        elif name.endswith((".fits", ".fits.gz", ".fit", ".fit.gz")):
            from astropy.table import Table

            frame = Table.read(path).to_pandas()
        else:
            raise BadInputError("unsupported file", f"{path}: catalogue must be .csv, .csv.gz or .fits[.gz]")
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        if isinstance(exc, BadInputError):
            raise
        raise BadInputError("unreadable catalogue", f"{path}: cannot parse table ({exc})") from exc
    frame.columns = [ALIASES.get(c.strip().lower(), c.strip().lower()) for c in frame.columns]
    for column in (*ID_COLUMNS, "asset_id", "file", "sample", "split"):
        if column in frame.columns:
            frame[column] = frame[column].map(_text)
    return frame


def _text(value: object) -> str:
    """Catalogue cell as clean text (FITS gives bytes; numbers stay exact)."""
    if isinstance(value, bytes):
        value = value.decode()
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()


def id_column(frame: pd.DataFrame, source: str, schema: Schema) -> str:
    """The first id column present: the tree's own (``dr7objid`` for GZ2), then the usual ones."""
    for column in (schema.id_column, *ID_COLUMNS):
        if column in frame.columns:
            return column
    known = ", ".join(dict.fromkeys((schema.id_column, *ID_COLUMNS)))
    raise BadInputError(errors.MISSING_COLUMN, f"{source}: missing id column (one of {known})")


def image_index(root: Path) -> dict[str, str]:
    """Image files directly in ``root``, by file name and by name without suffix (one listing)."""
    if not root.is_dir():
        raise BadInputError("missing folder", f"{root}: image folder not found")
    index: dict[str, str] = {}
    with os.scandir(root) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            lower = entry.name.lower()
            suffix = next((s for s in images.IMAGE_SUFFIXES if lower.endswith(s)), None)
            if suffix is not None:
                index[entry.name] = entry.name
                index.setdefault(entry.name[: -len(suffix)], entry.name)
    return index


def flag_duplicates(ids: pd.Series, problems: RowProblems) -> None:
    """Every row of an id that appears more than once is bad: we cannot tell which is right."""
    duplicated = ids.duplicated(keep=False).to_numpy()
    rows_of = pd.Series(problems.rows[duplicated]).groupby(ids[duplicated].to_numpy()).agg(list)
    problems.flag(duplicated, errors.DUPLICATE_ID,
                  lambda i: f"duplicate id (rows {', '.join(map(str, rows_of[ids.iloc[i]]))})")


def floats_of(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Optional float features: ra/dec as ``meta/...`` and any ``truth/...`` or ``kaggle/...`` column."""
    out = {}
    for column in frame.columns:
        key = META_COLUMNS.get(column, column if column.startswith(FLOAT_PREFIXES) else None)
        if key is not None:
            out[key] = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    return out


def file_row_numbers(frame: pd.DataFrame) -> np.ndarray:
    """1-based data rows of the file the frame was read from: its index, kept through a source's own cuts."""
    if pd.api.types.is_integer_dtype(frame.index):
        return frame.index.to_numpy() + 1
    return np.arange(1, len(frame) + 1)


def build_catalogue(frame: pd.DataFrame, *, source: str, label: str, schema: Schema, locate: Locator,
                    skip_bad: bool, min_votes: Mapping[str, int], inputs: dict[str, dict],
                    cuts: list[tuple[str, int]], votes: bool = True, check: RowCheck | None = None,
                    volunteers: int | None = None) -> Catalogue:
    """Check votes, ids and image paths of every row, drop or refuse bad rows, apply vote cuts.

    Votes come as counts, fractions with totals, or fractions alone (pseudo-counts at ``volunteers``;
    ``labels.vote_counts``). ``votes=False`` is for tables without votes (morphological
    parameters): the records get no int features. ``check`` adds a source's own row checks, so
    its bad rows are refused or skipped like any other.
    """
    file_rows = file_row_numbers(frame)
    frame = frame.reset_index(drop=True)
    id_name = id_column(frame, label, schema)
    ids = frame[id_name]
    problems = RowProblems(ids, label, file_rows)
    problems.flag((ids == "").to_numpy(), errors.MISSING_COLUMN, lambda i: "empty id")
    read = vote_counts(frame, schema, problems, volunteers) if votes else \
        VoteTable(pd.DataFrame(index=frame.index), pd.DataFrame(index=frame.index), [])
    counts = read.counts
    if check is not None:
        check(frame, problems)
    flag_duplicates(ids, problems)
    paths = locate(frame, problems)
    split = None
    if "split" in frame.columns:
        split = frame["split"].str.lower()
        problems.flag(~split.isin(SPLITS).to_numpy(), "bad split",
                      lambda i: f"split is {frame['split'].iloc[i]!r}, not one of {', '.join(SPLITS)}")
    keep, skipped = problems.resolve(skip_bad)
    table = pd.concat([pd.DataFrame({"id": ids, "path": paths, "row": file_rows}), counts, read.fractions,
                       pd.DataFrame(floats_of(frame), index=frame.index)], axis=1)
    if split is not None:
        table["split"] = split
    table = table[keep]
    table, vote_cuts = apply_min_votes(table, schema, min_votes)
    floats = [c for c in table.columns if c.startswith(("meta/", "fraction/", *FLOAT_PREFIXES))]
    return Catalogue(source, schema, table.reset_index(drop=True), list(counts.columns), floats, inputs,
                     [*cuts, *[(f"skipped: {reason}", n) for reason, n in sorted(skipped.items())], *vote_cuts],
                     Counter(skipped), label=label, warnings=[*read.warnings, *_vote_warnings(table, schema, votes)])


def _vote_warnings(table: pd.DataFrame, schema: Schema, votes: bool) -> list[str]:
    """Galaxies kept with no vote for any question (N = 0 everywhere): they teach a vote model nothing."""
    totals = [schema.total_key(q) for q in schema.questions if schema.total_key(q) in table.columns]
    if not votes or not totals or table.empty:
        return []
    silent = int((table[totals] == 0).all(axis=1).sum())
    if not silent:
        return []
    return [f"{silent:,} of {len(table):,} galaxies have no votes for any question (N = 0); they are written but "
            "teach a vote model nothing (--min-votes QUESTION=1 leaves them out)"]


def images_under(root: Path, frame: pd.DataFrame, label: str, schema: Schema) -> Locator:
    """How a user's table finds its images under ``root``: its ``file`` column, else the file named after the id."""
    index = None if "file" in frame.columns else image_index(root)

    def locate(rows: pd.DataFrame, problems: RowProblems) -> list[str | None]:
        names = rows["file"] if index is None else rows[id_column(rows, label, schema)]
        return locate_in(root, names, problems, index)

    return locate


def locate_in(root: Path, names: pd.Series, problems: RowProblems, index: dict[str, str] | None = None,
              describe: str = "image") -> list[str | None]:
    """Absolute image paths for relative names under ``root``; flags escapes and missing files.

    With an ``index`` (one directory listing) a bare name or id is looked up without a stat
    per row, which matters for catalogues of hundreds of thousands of galaxies.
    """
    root = Path(root)
    paths: list[str | None] = []
    for position, name in enumerate(names):
        try:
            if index is not None and name in index:
                paths.append(str(images.resolve_inside(root, index[name])))
                continue
            path = images.resolve_inside(root, name)
            if index is not None or not path.is_file():
                raise BadInputError(errors.MISSING_IMAGE, f"{describe} {name!r} not found in {root}")
            paths.append(str(path))
        except BadInputError as error:
            problems.add(position, error)
            paths.append(None)
    return paths


def checksum(path: str | Path) -> dict:
    """Provenance entry of an input file."""
    return {"path": str(Path(path).resolve()), "sha256": sha256_file(path)}
