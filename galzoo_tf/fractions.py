"""Vote fractions and vote counts on a decision tree: what published catalogues give, and what models learn from.

Galaxy Zoo catalogues publish each answer's fraction of its question's votes (``_fraction``),
often with the question's number of votes (``_total-votes``), or the fractions alone. The
vote models learn from counts k out of N. With a total, k = round(fraction x N); without one,
pseudo-counts walk the tree as ``volunteers`` people would: N of the root is ``volunteers``,
N of any other question the pseudo-votes of the answers leading to it. Plain numpy.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np

from galzoo_tf.schema import Answer, Schema

Fractions = dict[str, np.ndarray]  # question -> (galaxies, answers)


def answer_values(values: Mapping[str, np.ndarray], schema: Schema, answer: Answer) -> np.ndarray:
    """One answer's values (...) from a question -> (..., answers) mapping."""
    return values[answer.question][..., schema.question(answer.question).answer_names.index(answer.name)]


def normalised(values: np.ndarray) -> np.ndarray:
    """One question's values (..., answers) scaled to sum to 1 over its answers (0 where all are 0)."""
    values = np.asarray(values, np.float64)
    total = values.sum(axis=-1, keepdims=True)
    return np.divide(values, total, out=np.zeros_like(values), where=total > 0)


def conditional_fractions(values: Mapping[str, np.ndarray]) -> Fractions:
    """Each question's values normalised to sum to 1 (counts or weighted fractions -> fractions; 0 where all are 0)."""
    return {name: normalised(fractions) for name, fractions in values.items()}


def default_volunteers(schema: Schema) -> int:
    """The pseudo-count N when a catalogue gives no totals: the typical N of the tree's first question."""
    return max(1, schema.question(schema.root).expected_votes)


def complete_fractions(fractions: np.ndarray) -> np.ndarray:
    """A question's fractions (galaxies, answers) with NaN where a catalogue does not give them; a row missing one
    answer gets it as 1 minus the others (a yes/no question needs only one column)."""
    fractions = np.array(fractions, np.float64)
    missing = ~np.isfinite(fractions)
    single = missing.sum(axis=1) == 1
    rows, columns = np.nonzero(missing & single[:, None])
    fractions[rows, columns] = np.clip(1 - np.nansum(fractions[rows], axis=1), 0, 1)
    return fractions


def apportion(fractions: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Whole counts (galaxies, answers) summing to ``totals`` in proportion to ``fractions`` (largest remainder)."""
    totals = np.asarray(totals, np.int64)
    exact = fractions * totals[:, None]
    counts = np.floor(exact).astype(np.int64)
    short = totals - counts.sum(axis=1)
    order = np.argsort(-(exact - counts), axis=1, kind="stable")
    ranks = np.argsort(order, axis=1, kind="stable")
    return counts + (ranks < short[:, None])


def _reaching(schema: Schema, name: str, votes: Fractions, reached_by: dict[str, np.ndarray]) -> np.ndarray:
    """Pseudo-N of a question: the votes of the answers leading to it; where a question whose every answer leads
    here has unknown fractions, its whole N."""
    total = np.float64(0.0)
    for parent in dict.fromkeys(a.question for a in schema.parents(name)):
        answers = schema.question(parent).answers
        sent = sum(answer_values(votes, schema, a) for a in answers if a.leads_to == name)
        if all(a.leads_to == name for a in answers):
            sent = np.where(np.isnan(sent), reached_by[parent], sent)
        total = total + sent
    return total


def pseudo_counts(schema: Schema, conditional: Mapping[str, np.ndarray], volunteers: int, restart: Collection[str] = (),
                  given: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Vote counts k per question (galaxies, answers) from each question's fractions, as if ``volunteers`` people
    had classified every galaxy and walked the tree.

    N of the root, and of the questions in ``restart`` (fractions a release did not weight), is ``volunteers``;
    N of any other question is the pseudo-votes of the answers leading to it. N is shared among the answers by
    their fractions (largest remainder). Questions in ``given`` keep those counts (a catalogue's real votes), and
    the walk goes on from them. A question whose fractions are not all known (NaN, after ``complete_fractions``),
    or whose N is not, gets no votes (N = 0); its known answers still pass their pseudo-votes down the tree. A
    question whose fractions are all 0 gets none either."""
    given = given or {}
    votes: Fractions = {}  # pseudo-votes of every answer, NaN where unknown: what flows down the tree
    reached_by: dict[str, np.ndarray] = {}  # pseudo-N of every question, NaN where unknown
    counts: dict[str, np.ndarray] = {}
    for question in schema.topological_order():
        if question.name in given:
            counts[question.name] = votes[question.name] = np.asarray(given[question.name], np.int64)
            reached_by[question.name] = counts[question.name].sum(axis=1).astype(np.float64)
            continue
        fractions = complete_fractions(conditional[question.name])
        if schema.parents(question.name) and question.name not in restart:
            reached = _reaching(schema, question.name, votes, reached_by)
        else:
            reached = np.full(len(fractions), float(volunteers))
        reached_by[question.name] = reached
        known = np.isfinite(fractions).all(axis=1) & np.isfinite(reached) & (np.nan_to_num(fractions).sum(axis=1) > 0)
        whole = apportion(np.nan_to_num(fractions), np.where(known, np.nan_to_num(reached), 0).astype(np.int64))
        votes[question.name] = np.where(known[:, None], whole, np.rint(reached[:, None] * fractions))
        counts[question.name] = np.where(known[:, None], whole, 0)
    return counts
