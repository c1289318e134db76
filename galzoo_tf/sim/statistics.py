"""Vote statistics that characterise a Galaxy Zoo data set, to compare simulated with real votes.

Real and simulated N differ in scale (the Stripe 82 table has N(T01) ~ 20, the GZ2 main
sample ~ 40), so the comparison uses shapes: N of each question relative to N of the
first, and the distributions of the vote fraction k/N of a few key answers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from galzoo_tf.data.labels import RowProblems, vote_counts
from galzoo_tf.data.sources.table import id_column, read_table
from galzoo_tf.schema import Schema

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
# (question, answer, minimum N of the question for a galaxy to count), as in docs/GZ2_SCHEMA.md
FRACTIONS = (("smooth", "features", 1), ("edgeon", "yes", 5), ("bar", "bar", 10), ("spiral", "spiral", 10))


def real_vote_counts(path: Path, schema: Schema) -> pd.DataFrame:
    """Counts and totals (record keys) of a real GZ2 table, rows with bad counts dropped."""
    frame = read_table(path)
    problems = RowProblems(frame[id_column(frame, str(path), schema)], str(path))
    counts = vote_counts(frame, schema, problems).counts
    keep, _ = problems.resolve(skip_bad=True)
    return counts[keep].reset_index(drop=True)


def vote_fraction(votes: pd.DataFrame, schema: Schema, question: str, answer: str, min_votes: int) -> np.ndarray:
    """k/N of one answer over the galaxies where the question got at least ``min_votes`` votes."""
    q = schema.question(question)
    total = votes[schema.total_key(q)].to_numpy()
    chosen = total >= max(min_votes, 1)
    return votes[schema.count_key(q.answer(answer))].to_numpy()[chosen] / total[chosen]


def vote_statistics(votes: pd.DataFrame, schema: Schema) -> dict:
    """Median N per question, median N relative to the first question, and k/N quantiles."""
    root = votes[schema.total_key(schema.question(schema.root))].to_numpy().astype(float)
    asked = root > 0
    stats: dict = {"galaxies": len(votes), "median_votes": {}, "median_votes_ratio": {}, "fraction_quantiles": {}}
    for question in schema.questions:
        total = votes[schema.total_key(question)].to_numpy().astype(float)
        stats["median_votes"][question.name] = float(np.median(total))
        stats["median_votes_ratio"][question.name] = float(np.median(total[asked] / root[asked]))
    for question, answer, min_votes in FRACTIONS:
        fraction = vote_fraction(votes, schema, question, answer, min_votes)
        stats["fraction_quantiles"][f"{question}/{answer}"] = {
            "galaxies": int(fraction.size),
            "quantiles": [float(v) for v in np.quantile(fraction, QUANTILES)] if fraction.size else [],
        }
    return stats
