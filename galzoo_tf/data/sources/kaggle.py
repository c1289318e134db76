"""The Kaggle Galaxy Zoo release: ``training_solutions_rev1.csv`` (37 weighted fractions) and ``GalaxyID.jpg`` images.

The release has no vote counts. Each row's weighted fractions are checked against the tree,
turned back into each question's conditional fractions and into pseudo-counts at a documented
N (``galzoo_tf.kaggle.pseudo_counts``), so the Binomial models train on them; the 37 fractions
themselves are kept in the records (``kaggle/Class1.1``, ...) for the challenge's RMSE.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from galzoo_tf import errors
from galzoo_tf.data.labels import RowProblems, require_columns, shown_value
from galzoo_tf.data.sources.table import Catalogue, build_catalogue, checksum, image_index, locate_in, read_table
from galzoo_tf.errors import BadInputError
from galzoo_tf.fractions import default_volunteers
from galzoo_tf.kaggle import (
    ID_COLUMN,
    KAGGLE_TREE,
    PREFIX,
    TOLERANCE,
    from_columns,
    kaggle_answers,
    kaggle_columns,
    mismatches,
    pseudo_counts,
)
from galzoo_tf.schema import Schema, load_schema


def _fraction_table(frame: pd.DataFrame, schema: Schema, label: str) -> pd.DataFrame:
    """The 37 columns as floats (NaN where a cell is not a number), under their Kaggle spelling; the table needs
    GalaxyID (read as ``id``) and all 37."""
    names = kaggle_columns(schema)
    require_columns(frame.rename(columns={"id": ID_COLUMN, **{name.lower(): name for name in names}}),
                    [ID_COLUMN, *names], label)
    return pd.DataFrame({name: pd.to_numeric(frame[name.lower()], errors="coerce") for name in names})


def _check_fractions(raw: pd.DataFrame, fractions: pd.DataFrame, schema: Schema, tolerance: float):
    """A row check: every value a fraction in [0, 1] (within the tolerance; clipped to it for the pseudo-counts),
    every question's answers summing to what the tree says."""
    values = fractions.to_numpy(np.float64)
    weighted = from_columns(schema, np.nan_to_num(values))

    def check(_: pd.DataFrame, problems: RowProblems) -> None:
        for position, name in enumerate(fractions.columns):
            column = values[:, position]
            bad = ~np.isfinite(column) | (column < -tolerance) | (column > 1 + tolerance)
            problems.flag(bad, errors.BAD_FRACTION, lambda i, n=name: f"{n} is {shown_value(raw[n.lower()].iloc[i])}, "
                                                               "not a fraction in [0, 1]")
        for question, (total, expected) in mismatches(schema, weighted, tolerance).items():
            problems.flag(np.abs(total - expected) > tolerance, errors.INCONSISTENT_FRACTIONS,
                          lambda i, q=question, t=total, e=expected: _mismatch(schema, q, t[i], e[i], tolerance))

    return check


def _mismatch(schema: Schema, name: str, total: float, expected: float, tolerance: float) -> str:
    """Why a question's answers do not fit the tree, naming the columns."""
    question = schema.question(name)
    answers = " + ".join(a.kaggle for a in question.answers)
    if not question.kaggle_weighted:
        why = "1 (or 0 where no volunteer reached it; the release does not weight this question)"
    elif name == schema.root:
        why = "1"
    else:
        why = f"{expected:.4f}, the sum of the answers leading to {name!r} " \
              f"({' + '.join(a.kaggle for a in schema.parents(name))})"
    return f"{answers} = {total:.4f}, but should be {why} (tolerance {tolerance:g}, --tolerance)"


def load_kaggle(solutions: Path, images: Path, *, volunteers: int | None = None, tolerance: float = TOLERANCE,
                min_votes: Mapping[str, int] | None = None, skip_bad: bool = False) -> Catalogue:
    """Read and check a Kaggle solutions table, make its pseudo-counts and find ``<GalaxyID>.jpg`` under ``images``."""
    schema = load_schema(KAGGLE_TREE)
    volunteers = default_volunteers(schema) if volunteers is None else volunteers
    if volunteers < 1 or tolerance < 0:
        raise BadInputError("bad option", "--votes must be at least 1 and --tolerance at least 0")
    frame = read_table(solutions)
    fractions = _fraction_table(frame, schema, str(solutions))
    counts = pseudo_counts(schema, from_columns(schema, np.clip(np.nan_to_num(fractions.to_numpy()), 0, 1)),
                           volunteers)
    labelled = pd.DataFrame({"id": frame["id"]}, index=frame.index)
    for question in schema.questions:
        for index, answer in enumerate(question.answers):
            labelled[schema.count_column(answer)] = counts[question.name][:, index]
    for answer in kaggle_answers(schema):
        labelled[f"{PREFIX}{answer.kaggle}"] = fractions[answer.kaggle]
    images, index = Path(images), image_index(Path(images))

    def locate(rows: pd.DataFrame, problems: RowProblems) -> list[str | None]:
        return locate_in(images, rows["id"], problems, index)

    return build_catalogue(labelled, source="kaggle", label=str(solutions), schema=schema, locate=locate,
                           skip_bad=skip_bad, min_votes=min_votes or {},
                           inputs={"solutions": checksum(solutions), "images": {"path": str(images.resolve())},
                                   "pseudo_counts": {"volunteers": volunteers, "tolerance": tolerance}},
                           cuts=[("catalogue rows", len(frame))],
                           check=_check_fractions(frame, fractions, schema, tolerance))

