"""The Kaggle Galaxy Zoo format ("Galaxy Zoo - The Galaxy Challenge", 2014): 37 tree-weighted vote fractions.

``training_solutions_rev1.csv`` holds ``GalaxyID`` and ``Class1.1`` ... ``Class11.6``: each answer's
vote fraction multiplied by the fraction of volunteers who reached its question, so a question's
answers sum to the weighted fractions of the answers leading to it. Question 6 (anything odd?)
is the exception: the release left it unweighted (its answers sum to 1), which the tree marks
with ``kaggle_weighted: false``. This module converts between those weighted fractions, each
question's conditional fractions and the pseudo-counts galzoo's Binomial models train on, and
scores predictions as the challenge did (RMSE over galaxies and the 37 columns). Plain numpy.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from galzoo_tf.errors import BadInputError
from galzoo_tf.fractions import Fractions, answer_values, conditional_fractions
from galzoo_tf.fractions import pseudo_counts as tree_pseudo_counts
from galzoo_tf.schema import Answer, Question, Schema

KAGGLE_TREE = "gz2"  # the release's classes are GZ2's
ID_COLUMN = "GalaxyID"
PREFIX = "kaggle/"  # record float features holding the 37 weighted fractions (kaggle/Class1.1, ...)
TOLERANCE = 0.005  # a question's answers may miss their parent's fraction by this much (rounding in the release)
REFERENCE_RMSE = {  # what a Kaggle RMSE is read against, all on the real release
    "mean-label baseline (GZ2 CNN lab report, unpublished)": 0.16,
    "custom CNN (GZ2 CNN lab report, unpublished)": 0.11,
    "challenge winner, Kaggle's private test set (Dieleman, Willett & Dambre 2015)": 0.0749,
}


def kaggle_answers(schema: Schema) -> list[Answer]:
    """Every answer of the tree in the release's column order (Class1.1, 1.2, ... 11.6); a tree without Kaggle
    names is a clear error."""
    unnamed = [a.key for a in schema.answers if not a.kaggle]
    if unnamed:
        raise BadInputError("bad tree", f"tree {schema.name!r} has no Kaggle class for {', '.join(unnamed[:3])}; "
                                        "the Kaggle format is Galaxy Zoo 2's (--schema gz2)")
    return sorted(schema.answers, key=lambda a: tuple(int(part) for part in a.kaggle.removeprefix("Class").split(".")))


def kaggle_columns(schema: Schema) -> list[str]:
    """The 37 column names, in order."""
    return [answer.kaggle for answer in kaggle_answers(schema)]


def feature_keys(schema: Schema) -> list[str]:
    """Record float features of the weighted fractions, in column order."""
    return [f"{PREFIX}{name}" for name in kaggle_columns(schema)]


def parents_weight(schema: Schema, question: Question, weighted: Fractions) -> np.ndarray:
    """The summed weighted fractions of the answers leading to ``question`` (the root: 1): the fraction of
    volunteers who reached it, as the release counts them (below question 6, from its unweighted fractions)."""
    parents = schema.parents(question.name)
    if not parents:
        return np.float64(1.0)
    return sum(answer_values(weighted, schema, a) for a in parents)


def release_weight(schema: Schema, question: Question, weighted: Fractions) -> np.ndarray:
    """What the release multiplies ``question``'s fractions by: its parents' weight, or 1 if unweighted."""
    weight = parents_weight(schema, question, weighted)
    return weight if question.kaggle_weighted else np.ones_like(weight)


def weighted_fractions(schema: Schema, conditional: Mapping[str, np.ndarray]) -> Fractions:
    """The release's weighted fractions from each question's conditional fractions (products along the tree)."""
    weighted: Fractions = {}
    for question in schema.topological_order():
        fractions = np.asarray(conditional[question.name], np.float64)
        weight = np.broadcast_to(release_weight(schema, question, weighted), fractions.shape[:-1])
        weighted[question.name] = fractions * weight[..., None]
    return weighted


def from_counts(schema: Schema, counts: Mapping[str, np.ndarray]) -> Fractions:
    """Weighted fractions from vote counts k (question -> (galaxies, answers)): k / N, then along the tree."""
    return weighted_fractions(schema, conditional_fractions(counts))


def from_columns(schema: Schema, table: np.ndarray) -> Fractions:
    """(galaxies, 37) in column order -> question -> (galaxies, answers)."""
    position = {answer.key: i for i, answer in enumerate(kaggle_answers(schema))}
    return {q.name: table[:, [position[a.key] for a in q.answers]] for q in schema.questions}


def as_columns(schema: Schema, weighted: Mapping[str, np.ndarray]) -> np.ndarray:
    """question -> (..., answers) -> (..., 37) in column order."""
    return np.stack([answer_values(weighted, schema, a) for a in kaggle_answers(schema)], axis=-1)


def mismatches(schema: Schema, weighted: Mapping[str, np.ndarray],
               tolerance: float = TOLERANCE) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per question: (sum of its weighted answers, what the tree says it should be) for every galaxy.

    A weighted question should sum to its parents' weight; an unweighted one to 1, or to 0 where its parents'
    weight is 0 (no volunteer reached it), each within ``tolerance``."""
    out = {}
    for question in schema.questions:
        total = weighted[question.name].sum(axis=-1)
        expected = np.broadcast_to(parents_weight(schema, question, weighted), total.shape).astype(np.float64)
        if not question.kaggle_weighted:
            expected = np.where((expected <= tolerance) & (total <= tolerance), 0.0, 1.0)
        out[question.name] = (total, expected)
    return out


def pseudo_counts(schema: Schema, weighted: Mapping[str, np.ndarray], volunteers: int) -> dict[str, np.ndarray]:
    """Vote counts k per question (galaxies, answers) from the release's weighted fractions, as if ``volunteers``
    people had classified each galaxy and walked the tree (``galzoo_tf.fractions.pseudo_counts``); a question the
    release leaves unweighted (GZ2's odd) starts again from ``volunteers``, as its fractions do from 1."""
    unweighted = [q.name for q in schema.questions if not q.kaggle_weighted]
    return tree_pseudo_counts(schema, conditional_fractions(weighted), volunteers, restart=unweighted)


def rmse(predicted: np.ndarray, observed: np.ndarray) -> float:
    """The challenge's score: root mean squared error over every galaxy and all 37 columns."""
    return float(np.sqrt(np.mean((np.asarray(predicted, np.float64) - np.asarray(observed, np.float64)) ** 2)))
