"""Simulated volunteers walking a decision tree, vectorised over galaxies.

Each volunteer answers every question it reaches independently, choosing answer a of
question q with probability rho[q][:, a]. The number of volunteers reaching a question is
then the sum of the counts of the answers leading to it, and the counts of a question are
Multinomial(N_q, rho_q): the counts come out exactly consistent with the tree.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from galzoo_tf.schema import Schema


def simulate_votes(schema: Schema, rho: Mapping[str, np.ndarray], volunteers: np.ndarray,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Vote counts per answer (record keys) for galaxies with answer probabilities ``rho``.

    ``rho[question]`` has shape (galaxies, answers) with rows summing to 1; ``volunteers``
    is the number of volunteers who saw each galaxy (the N of the root question).
    """
    volunteers = np.asarray(volunteers, dtype=np.int64)
    reached = {schema.root: volunteers}
    counts: dict[str, np.ndarray] = {}
    for question in schema.topological_order():
        n = reached.get(question.name, np.zeros_like(volunteers))
        p = np.asarray(rho[question.name], dtype=np.float64)
        p = p / p.sum(axis=1, keepdims=True)
        drawn = rng.multinomial(n, p)
        for index, answer in enumerate(question.answers):
            counts[schema.count_key(answer)] = drawn[:, index]
            if answer.leads_to:
                reached[answer.leads_to] = reached.get(answer.leads_to, 0) + drawn[:, index]
    return counts
