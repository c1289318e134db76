"""Simulated volunteers walking a decision tree, vectorised over galaxies.

Each volunteer answers every question it reaches, choosing answer a of question q with
probability rho[q][:, a]. The number of volunteers reaching a question is the sum of the
counts of the answers leading to it, and the counts of a question are Multinomial(N_q, p):
the counts come out exactly consistent with the tree.

Overdispersion: real volunteers are not identical, and the ones who see the same galaxy
tend to err together (the same ambiguous image fools them alike). Independent
per-volunteer perturbations that average to rho would leave the counts exactly
multinomial (each vote is still an independent draw with mean rho), so ``overdispersion``
X perturbs what the volunteers of one galaxy share: p ~ Dirichlet(rho / X). The mean of
the counts stays N rho; their variance grows by (N X + 1) / (X + 1) over the multinomial,
the wider-than-binomial likelihood Walmsley et al. (2019, §4) describe.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from galzoo_tf.schema import Schema

MAIN_SAMPLE_VOTES = (44.0, 5.0)  # mean and spread of N for the first question (GZ2 main sample)
LOW_VOTE_SHARE = 0.11  # GZ2 galaxies that technical limits left with N < 36 (26,530 of ~240k)


def volunteer_numbers(n: int, rng: np.random.Generator) -> np.ndarray:
    """N for the first question: about 44 for most galaxies, 15-35 for a GZ2-like 11 %."""
    main = np.round(rng.normal(*MAIN_SAMPLE_VOTES, n)).clip(36, None)
    low = rng.integers(15, 36, n)
    return np.where(rng.uniform(size=n) < LOW_VOTE_SHARE, low, main).astype(np.int64)


def perturbed(p: np.ndarray, overdispersion: float, rng: np.random.Generator) -> np.ndarray:
    """One Dirichlet(p / overdispersion) draw per galaxy (rows), or p itself when overdispersion is 0."""
    if overdispersion <= 0:
        return p
    shares = rng.gamma(np.maximum(p, 1e-6) / overdispersion)
    return shares / np.maximum(shares.sum(axis=1, keepdims=True), 1e-300)


def simulate_votes(schema: Schema, rho: Mapping[str, np.ndarray], volunteers: np.ndarray,
                   rng: np.random.Generator, overdispersion: float = 0.0) -> dict[str, np.ndarray]:
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
        p = perturbed(p / p.sum(axis=1, keepdims=True), overdispersion, rng)
        drawn = rng.multinomial(n, p)
        for index, answer in enumerate(question.answers):
            counts[schema.count_key(answer)] = drawn[:, index]
            if answer.leads_to:
                reached[answer.leads_to] = reached.get(answer.leads_to, 0) + drawn[:, index]
    return counts
