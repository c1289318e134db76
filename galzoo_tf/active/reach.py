"""Expected votes per galaxy, from the tree: a galaxy is asked about bars only if volunteers reach the bar question.

The chance that a volunteer reaches question q for galaxy x is the sum over the tree's paths
into q of the products of the answer probabilities along them (each volunteer walks one
path), so N_q(x) = volunteers x P(reach q | x). A featureless elliptical then expects no bar
votes, and BALD, which is 0 at N = 0, does not ask about its bar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from galzoo_tf.errors import BadInputError
from galzoo_tf.schema import Schema


def reach_probabilities(schema: Schema, rho: Mapping[str, np.ndarray],
                        questions: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """P(a volunteer reaches each question) per galaxy, from each question's answer probabilities
    (galaxies, answers), normalised to sum to 1 (one-vs-rest heads need not). Only the questions before
    ``questions`` (default: every question) need answers, so a model without a bar head can still say who
    reaches bar."""
    targets = schema.question_names if questions is None else tuple(questions)
    needed = set().union(*(schema.ancestors(q) for q in targets))
    missing = sorted(needed - set(rho))
    if missing:
        raise BadInputError("bad option", f"expected votes need the model's answers to every question before "
                                          f"{', '.join(targets) if questions else 'the ones scored'} in the "
                                          f"{schema.name} tree; it has no head for {', '.join(missing)}")
    galaxies = len(next(iter(rho.values())))
    reach = {q.name: np.zeros(galaxies) for q in schema.questions}
    reach[schema.root] = np.ones(galaxies)
    for question in schema.topological_order():
        if question.name not in needed:
            continue
        shares = np.asarray(rho[question.name], np.float64)
        shares = shares / np.clip(shares.sum(axis=1, keepdims=True), 1e-12, None)
        for i, answer in enumerate(question.answers):
            if answer.leads_to:
                reach[answer.leads_to] += reach[question.name] * shares[:, i]
    return {name: reach[name] for name in targets}


def expected_votes(schema: Schema, rho: Mapping[str, np.ndarray], volunteers: int,
                   questions: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """N_q(x) = round(volunteers x P(reach q | x)) per question and galaxy: 0 where q is (almost) never reached."""
    return {name: np.rint(volunteers * p).astype(np.int64)
            for name, p in reach_probabilities(schema, rho, questions).items()}
