"""Volunteer vote tables: checking a catalogue's counts against the tree and applying vote cuts.

Every source (GZ2 catalogue, a user's CSV) goes through here, so a bad count is named the
same way whatever the source. Checks are vectorised; messages are built only for bad rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from galzoo_tf import errors
from galzoo_tf.errors import BadInputError
from galzoo_tf.schema import Schema

MAX_COUNT = 2**53  # the largest count a float parse keeps exact; sums of a few stay far inside int64


class RowProblems:
    """Collects the first problem of each bad row; raises the first one unless bad rows are skipped."""

    def __init__(self, ids: pd.Series, source: str, rows: np.ndarray | None = None) -> None:
        self.ids = ids.reset_index(drop=True)
        self.source = source
        self.rows = np.arange(1, len(ids) + 1) if rows is None else np.asarray(rows)  # 1-based rows of the file
        self.found: dict[int, BadInputError] = {}

    def where(self, position: int) -> str:
        """How a row is named in messages: its 1-based data row in the file and its id."""
        return f"{self.source}: row {self.rows[position]} (id {self.ids.iloc[position]})"

    def flag(self, mask: np.ndarray, reason: str, describe: Callable[[int], str]) -> None:
        for position in np.flatnonzero(mask):
            if position not in self.found:
                self.found[int(position)] = BadInputError(reason, f"{self.where(position)}: {describe(position)}")

    def add(self, position: int, error: BadInputError) -> None:
        if position not in self.found:
            self.found[position] = BadInputError(error.reason, f"{self.where(position)}: {error.message}")

    def resolve(self, skip_bad: bool) -> tuple[np.ndarray, Counter]:
        """Rows to keep and bad rows counted by reason; raises the first problem if not skipping."""
        if self.found and not skip_bad:
            raise self.found[min(self.found)]
        keep = np.ones(len(self.ids), dtype=bool)
        keep[list(self.found)] = False
        return keep, Counter(error.reason for error in self.found.values())


def require_columns(frame: pd.DataFrame, columns: Iterable[str], source: str) -> None:
    """Fail with one line naming every missing column."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise BadInputError(errors.MISSING_COLUMN, f"{source}: missing column(s) {shown}")


def shown_value(value: object) -> str:
    """A cell as the user would recognise it: text quoted, blanks named."""
    if isinstance(value, str):
        return repr(value)
    return "blank" if pd.isna(value) else str(value)


def _whole_numbers(frame: pd.DataFrame, column: str, problems: RowProblems) -> np.ndarray:
    """Column as int64, flagging blanks, text and fractions as non-integer counts."""
    raw = frame[column]
    values = np.array(pd.to_numeric(raw, errors="coerce"), dtype=float)  # a writable copy
    bad = ~np.isfinite(values) | (values != np.round(values))
    problems.flag(bad, errors.NON_INTEGER_COUNT,
                  lambda i: f"{column} is {shown_value(raw.iloc[i])}, not a whole number of votes")
    values[bad] = 0
    too_large = np.abs(values) > MAX_COUNT
    problems.flag(too_large, errors.COUNT_OUT_OF_RANGE,
                  lambda i: f"{column} is {shown_value(raw.iloc[i])}, too large to be a count of votes (more than "
                            f"2^53; an int64 would wrap)")
    values[too_large] = 0
    negative = values < 0
    problems.flag(negative, errors.NEGATIVE_COUNT, lambda i: f"{column} is {int(values[i])}, a negative count")
    return values.astype(np.int64)


def vote_counts(frame: pd.DataFrame, schema: Schema, problems: RowProblems) -> pd.DataFrame:
    """Counts k per answer and totals N per question, keyed by record feature names.

    N is the sum of the question's counts (each volunteer gives one answer), unless the
    tree names a total column for the question (GZ2: ``total_classifications`` for T01),
    in which case that N is used and every k, and their sum, must not exceed it.
    """
    out: dict[str, np.ndarray] = {}
    for question in schema.questions:
        counts = {a: _whole_numbers(frame, schema.count_column(a), problems) for a in question.answers}
        for answer, k in counts.items():
            out[schema.count_key(answer)] = k
        total = np.sum(list(counts.values()), axis=0)
        if question.total_column and question.total_column in frame.columns:
            given = _whole_numbers(frame, question.total_column, problems)
            problems.flag(total > given, errors.COUNT_EXCEEDS_TOTAL,
                          lambda i, t=total, g=given, q=question: f"{q.name} has {t[i]} votes but "
                          f"{q.total_column} is {g[i]} (k > N)")
            total = given
        out[schema.total_key(question)] = total
    return pd.DataFrame(out, index=frame.index)


def parse_min_votes(specs: Iterable[str], schema: Schema) -> dict[str, int]:
    """``["smooth=36", "bar=10"]`` -> ``{"smooth": 36, "bar": 10}``, checking question names."""
    parsed: dict[str, int] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not value.strip().isdigit():
            raise BadInputError("bad option", f"--min-votes {spec!r}: write QUESTION=N, e.g. bar=10")
        try:
            parsed[schema.question(name.strip()).name] = int(value)
        except KeyError as exc:
            raise BadInputError("bad option", f"--min-votes {spec!r}: {exc.args[0]}") from None
    return parsed


def apply_min_votes(table: pd.DataFrame, schema: Schema,
                    min_votes: Mapping[str, int]) -> tuple[pd.DataFrame, list[tuple[str, int]]]:
    """Drop galaxies whose N for a question is below its minimum; returns the cut sizes in order."""
    cuts = []
    for name, minimum in min_votes.items():
        if minimum <= 0:
            continue
        keep = table[schema.total_key(schema.question(name))] >= minimum
        cuts.append((f"{name} N < {minimum}", int((~keep).sum())))
        table = table[keep]
    return table, cuts
