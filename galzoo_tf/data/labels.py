"""Volunteer vote tables: checking a catalogue's counts against the tree and applying vote cuts.

Every source (GZ2 catalogue, a user's CSV) goes through here, so a bad count is named the
same way whatever the source. Checks are vectorised; messages are built only for bad rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from galzoo_tf import errors
from galzoo_tf.errors import BadInputError
from galzoo_tf.fractions import complete_fractions, default_volunteers, normalised, pseudo_counts
from galzoo_tf.schema import Question, Schema

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


FRACTION_TOLERANCE = 0.005  # how far a question's published fractions may sum from 1, or sit outside [0, 1]
ROUNDING = 5e-4  # fraction x N may miss a whole vote by this x N: fractions published to 3 decimals


@dataclass
class VoteTable:
    """What a catalogue says of the votes: counts k and totals N by record key, the published fractions read
    (``fraction/QUESTION/ANSWER`` keys, kept in the records), and warnings for the user."""

    counts: pd.DataFrame
    fractions: pd.DataFrame
    warnings: list[str]


def question_source(frame: pd.DataFrame, schema: Schema, question: Question) -> str:
    """How a catalogue gives a question: 'counts' (any count column), 'totals' (fractions and the question's
    total column), 'fractions' (fractions alone) or 'absent'."""
    if any(schema.count_column(a) in frame.columns for a in question.answers):
        return "counts"
    if not any(schema.fraction_column(a) in frame.columns for a in question.answers):
        return "absent"
    return "totals" if question.total_column in frame.columns else "fractions"


def vote_counts(frame: pd.DataFrame, schema: Schema, problems: RowProblems, volunteers: int | None = None) -> VoteTable:
    """Counts k per answer and totals N per question, from whatever the catalogue gives of each question.

    - count columns: N is their sum (each volunteer gives one answer), unless the tree names a total
      column for the question (GZ2: ``total_classifications`` for T01): then that N, which no k may exceed;
    - fraction columns and the question's total (``_total-votes``): k = round(fraction x N), refused where a
      fraction x N is not a whole vote (within ``ROUNDING`` x N: fractions published to 3 decimals) or the k do
      not sum to N;
    - fractions alone: pseudo-counts as if ``volunteers`` (default: the root's typical N) had walked the tree
      from the questions counted above (``galzoo_tf.fractions.pseudo_counts``); a yes/no question needs one of
      its two columns, and a row whose fractions do not sum to 1 (within ``FRACTION_TOLERANCE``) is refused;
    - nothing: N = 0 (the records hold no votes for it), with a warning, when the catalogue gives fractions;
      a catalogue of counts must give every question's count columns. The first question must be given.
    """
    sources = {q.name: question_source(frame, schema, q) for q in schema.questions}
    absent = [q for q in schema.questions if sources[q.name] == "absent"]
    counts_only = not {"fractions", "totals"} & set(sources.values())
    if absent and (sources[schema.root] == "absent" or counts_only):
        require_columns(frame, [schema.count_column(a) for q in absent for a in q.answers], problems.source)
    published = {a.key: _fractions(frame, schema.fraction_column(a), problems) for q in schema.questions
                 if sources[q.name] in ("totals", "fractions") for a in q.answers}
    counted: dict[str, np.ndarray] = {}
    totals: dict[str, np.ndarray] = {}
    for question in schema.questions:
        if sources[question.name] == "counts":
            require_columns(frame, [schema.count_column(a) for a in question.answers], problems.source)
            counted[question.name], totals[question.name] = _counted(frame, schema, question, problems)
        elif sources[question.name] == "totals":
            counted[question.name], totals[question.name] = _from_totals(frame, schema, question, published,
                                                                         problems)
    if "fractions" in sources.values():
        conditional = {q.name: _alone(q, published, problems) if sources[q.name] == "fractions" else
                       np.full((len(frame), len(q.answers)), np.nan) for q in schema.questions}
        walked = pseudo_counts(schema, conditional, default_volunteers(schema) if volunteers is None else volunteers,
                               given=counted)
        for question in schema.questions:
            if sources[question.name] in ("fractions", "absent"):
                counted[question.name] = walked[question.name]
                totals[question.name] = walked[question.name].sum(axis=1)
    out: dict[str, np.ndarray] = {}
    for question in schema.questions:
        counts = counted.get(question.name, np.zeros((len(frame), len(question.answers)), np.int64))
        for index, answer in enumerate(question.answers):
            out[schema.count_key(answer)] = counts[:, index]
        out[schema.total_key(question)] = totals.get(question.name, counts.sum(axis=1))
    fractions = pd.DataFrame({f"fraction/{key}": values for key, values in published.items()
                              if np.isfinite(values).any()}, index=frame.index)
    return VoteTable(pd.DataFrame(out, index=frame.index), fractions,
                     _source_warnings(frame, schema, sources, volunteers))


def _counted(frame: pd.DataFrame, schema: Schema, question: Question,
             problems: RowProblems) -> tuple[np.ndarray, np.ndarray]:
    """A question's counts and N from its count columns (and its total column, if the tree names one)."""
    counts = np.stack([_whole_numbers(frame, schema.count_column(a), problems) for a in question.answers], 1)
    total = counts.sum(axis=1)
    if question.total_column and question.total_column in frame.columns:
        given = _whole_numbers(frame, question.total_column, problems)
        problems.flag(total > given, errors.COUNT_EXCEEDS_TOTAL,
                      lambda i: f"{question.name} has {total[i]} votes but {question.total_column} is {given[i]} "
                                "(k > N)")
        total = given
    return counts, total


def _fractions(frame: pd.DataFrame, column: str | None, problems: RowProblems) -> np.ndarray:
    """A fraction column as floats in [0, 1] (NaN where the catalogue has no such column or the cell is blank); a
    value that is not a number in [0, 1] (within ``FRACTION_TOLERANCE``) is flagged."""
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    raw = frame[column]
    values = np.array(pd.to_numeric(raw, errors="coerce"), dtype=float)
    bad = (raw.notna().to_numpy() & ~np.isfinite(values)) | (values < -FRACTION_TOLERANCE) | \
        (values > 1 + FRACTION_TOLERANCE)
    problems.flag(bad, errors.BAD_FRACTION, lambda i: f"{column} is {shown_value(raw.iloc[i])}, not a fraction in "
                                                      "[0, 1]")
    values[bad] = np.nan
    return np.clip(values, 0, 1)


def _question_fractions(question: Question, published: dict[str, np.ndarray]) -> np.ndarray:
    return complete_fractions(np.stack([published[a.key] for a in question.answers], 1))


def _from_totals(frame: pd.DataFrame, schema: Schema, question: Question, published: dict[str, np.ndarray],
                 problems: RowProblems) -> tuple[np.ndarray, np.ndarray]:
    """k = round(fraction x N) from the fractions and the question's total column, checked to be votes."""
    total = _whole_numbers(frame, question.total_column, problems)
    fractions = _question_fractions(question, published)
    known = np.isfinite(fractions).all(axis=1)
    exact = np.nan_to_num(fractions) * total[:, None]
    counts = np.rint(exact).astype(np.int64)
    off = np.abs(exact - counts).max(axis=1)
    bad = known & (total > 0) & ((off > ROUNDING * total + 1e-6) | (counts.sum(axis=1) != total))
    problems.flag(bad, errors.INCONSISTENT_FRACTIONS, lambda i: f"{question.name}: fractions "
                  f"{', '.join(f'{v:.4g}' for v in fractions[i])} are not whole votes out of {question.total_column} "
                  f"= {total[i]} (fraction x N = {', '.join(f'{v:.3g}' for v in exact[i])})")
    counts[~known] = 0
    return counts, np.where(known, total, 0)


def _alone(question: Question, published: dict[str, np.ndarray], problems: RowProblems) -> np.ndarray:
    """A question's fractions given without a total, normalised; a complete row not summing to 1 is flagged."""
    fractions = _question_fractions(question, published)
    total = fractions.sum(axis=1)
    problems.flag(np.isfinite(total) & (np.abs(total - 1) > FRACTION_TOLERANCE) & (total > 0),
                  errors.INCONSISTENT_FRACTIONS,
                  lambda i: f"{question.name}: fractions {', '.join(f'{v:.4g}' for v in fractions[i])} sum to "
                            f"{total[i]:.4f}, not 1")
    return np.where(np.isfinite(total)[:, None], normalised(np.nan_to_num(fractions)), fractions)


def _source_warnings(frame: pd.DataFrame, schema: Schema, sources: dict[str, str],
                     volunteers: int | None) -> list[str]:
    """What the user should know about how the votes were read: pseudo-counts, questions given in part (their
    given answers still set the pseudo-votes below them), and questions left empty."""
    warnings = []
    partial = [f"{q.name} ({', '.join(a.name for a in given)} only)" for q in schema.questions
               if sources[q.name] in ("totals", "fractions")
               for given in [[a for a in q.answers if schema.fraction_column(a) in frame.columns]]
               if len(q.answers) - len(given) > 1]
    if partial:
        warnings.append(f"{'; '.join(partial)}: too few answers' fractions to count the question; N = 0 for it, its "
                        "given fractions kept in the records")
    fractions = [name for name, source in sources.items() if source == "fractions"]
    if fractions:
        n = default_volunteers(schema) if volunteers is None else volunteers
        warnings.append(f"{', '.join(fractions)}: vote fractions without totals, read as pseudo-counts of {n} "
                        "volunteers walking the tree (--votes sets them; docs/prepare.md)")
    absent = [name for name, source in sources.items() if source == "absent"]
    if absent:
        warnings.append(f"{', '.join(absent)}: no count or fraction column in the catalogue; N = 0 (no votes) for "
                        "these questions")
    return warnings


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
