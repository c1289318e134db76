"""Calibration of vote posteriors: the coverage error of Walmsley et al. (2019, eq. 11-13).

For a maximum error epsilon, the expected count sums, over galaxies, the posterior
probability that the vote fraction k/N lies within epsilon of the prediction k_hat/N; the
actual count is how many galaxies' observed k do. Coverage error = (expected - actual) /
actual: positive for an overconfident posterior, negative for an underconfident one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAPER_MAX_ERRORS = (0.02, 0.05, 0.10, 0.20)


@dataclass(frozen=True)
class Coverage:
    """Expected and actual counts at one maximum error, and the coverage error they give."""

    max_error: float
    expected: float
    actual: int

    @property
    def error(self) -> float:
        return (self.expected - self.actual) / self.actual if self.actual else float("nan")


def within(k: np.ndarray, predicted: np.ndarray, total_votes: np.ndarray, max_error: float) -> np.ndarray:
    """|k - k_hat| < N epsilon (strict, as the sums of eq. 11-12), elementwise with broadcasting."""
    return np.abs(k - predicted) < total_votes * max_error


def coverage(probabilities: np.ndarray, predicted: np.ndarray, observed: np.ndarray, total_votes: np.ndarray,
             max_error: float) -> Coverage:
    """Eq. 11-13 for posteriors p(k) on k = 0..K-1 (rows), predictions k_hat and observed k per galaxy."""
    predicted, observed, total_votes = (np.asarray(a, dtype=float) for a in (predicted, observed, total_votes))
    if probabilities.shape[0] == 0:
        raise ValueError("coverage needs at least one galaxy")
    k = np.arange(probabilities.shape[1], dtype=float)[None]
    window = within(k, predicted[:, None], total_votes[:, None], max_error)
    expected = float((probabilities * window).sum())
    actual = int(within(observed, predicted, total_votes, max_error).sum())
    return Coverage(max_error, expected, actual)


def coverage_table(probabilities: np.ndarray, predicted: np.ndarray, observed: np.ndarray,
                   total_votes: np.ndarray, max_errors=PAPER_MAX_ERRORS) -> list[Coverage]:
    """Coverage at each maximum error (the paper's 0.02, 0.05, 0.10, 0.20 by default)."""
    return [coverage(probabilities, predicted, observed, total_votes, e) for e in max_errors]
