"""Acquisition functions: which unlabelled galaxies volunteers should label next (Walmsley et al. 2019, §3).

BALD scores a galaxy by the mutual information between its vote count k and the network
weights, I[k, w] = H[<Bin(k | N, rho_t)>] - <H[Bin(k | N, rho_t)]> (eq. 22-24), computed
exactly over k = 0..N with the T MC dropout samples rho_t: high when the samples are each
confident but disagree. Baselines: predictive entropy H[<Bin>] (high also when every sample
is unsure), the variance of rho over samples, and random (keyed by galaxy, so it does not
depend on batching). Power BALD draws the batch with odds BALD^beta instead of taking the top n
(Kirsch et al. 2023), against the redundancy of top-n batches (Kirsch et al. 2019); power EPIG
draws with odds EPIG^beta. EPIG (Bickford Smith et al. 2023) scores the information a label
gives about the predictions at target galaxies rather than about the weights; it needs weight
samples shared across galaxies.

For a model with several outputs the score is the sum over outputs: over the answers of a
question with more than two (one-vs-rest binomials, as the model is trained), and over
questions weighted by the fraction of training galaxies that were asked each question
(`asked_fraction` in galzoo.json), so rarely reached questions count for less.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from scipy.special import gammaln, xlogy

from galzoo_tf.active.reach import expected_votes
from galzoo_tf.errors import BadInputError
from galzoo_tf.schema import Schema
from galzoo_tf.tasks.votes.heads import VoteHead

STRATEGIES = ("bald", "power-bald", "epig", "power-epig", "entropy", "variance", "random")
JOINT = ("epig", "power-epig")  # strategies that need weight samples shared across galaxies, and target galaxies
POWER_EXPONENT = 1.0  # beta of stochastic power acquisition; Kirsch et al. (2023) find 1 a robust default


SCORE_CHUNK_VALUES = 2**22  # binomial pmf values held at once (32 MB of float64), whatever the pool size


def _entropy(probabilities: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) over the last axis; 0 log 0 = 0."""
    return -np.sum(xlogy(probabilities, probabilities), axis=-1)


RHO_FLOOR = 1e-12  # rho is kept in [floor, 1 - floor] so that log rho and log(1 - rho) stay finite


def _log_choose(total_votes: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log C(N, k) per galaxy on k = 0..max N (0 where k > N), and whether k <= N, both (galaxies, max N + 1)."""
    n = total_votes.astype(np.float64)[:, None]
    possible = k <= n
    remaining = np.where(possible, n - k, 0.0)
    return np.where(possible, gammaln(n + 1) - gammaln(k + 1) - gammaln(remaining + 1), 0.0), possible


def _pmf(rho: np.ndarray, total_votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bin(k | N, rho_t) (galaxies, T, max N + 1) and log C(N, k) (galaxies, max N + 1), exact over k.

    log Bin(k | N, rho) = log C(N, k) + N log(1 - rho) + k log(rho / (1 - rho)) is built in place as one
    array and exponentiated once.
    """
    k = np.arange(int(total_votes.max()) + 1, dtype=np.float64)
    log_choose, possible = _log_choose(total_votes, k)
    n = total_votes.astype(np.float64)[:, None]
    rho = np.clip(np.asarray(rho, np.float64), RHO_FLOOR, 1 - RHO_FLOOR)
    log_rho, log_rest = np.log(rho), np.log1p(-rho)
    pmf = np.multiply.outer(log_rho - log_rest, k)
    pmf += (n * log_rest)[..., None]
    pmf += np.where(possible, log_choose, -np.inf)[:, None, :]
    np.exp(pmf, out=pmf)
    return pmf, log_choose


def _information_terms(rho: np.ndarray, total_votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """H[<Bin(k | N, rho_t)>] and <H[Bin(k | N, rho_t)]> per galaxy, exact over k.

    Each sample's entropy needs only its pmf against log C(N, k), since
    -E[log p] = -E[log C(N, k)] - N rho log rho - N (1 - rho) log(1 - rho).
    """
    pmf, log_choose = _pmf(rho, total_votes)
    n = total_votes.astype(np.float64)[:, None]
    rho = np.clip(np.asarray(rho, np.float64), RHO_FLOOR, 1 - RHO_FLOOR)
    expected_entropy = -(np.einsum("gtk,gk->gt", pmf, log_choose) + n * (xlogy(rho, rho) + xlogy(1 - rho, 1 - rho)))
    return _entropy(pmf.mean(axis=1)), expected_entropy.mean(axis=1)


def _predictive_information(rho: np.ndarray, total_votes: np.ndarray, target_rho: np.ndarray) -> np.ndarray:
    """Mean over target galaxies x* of I[k; y* | x, x*] = H[k] + H[y*] - H[k, y*] per galaxy x, where y* is one
    volunteer's answer at x* and both come from the same weight samples rho_t (x) and target_rho (x*, t)."""
    pmf, _ = _pmf(rho, total_votes)
    yes = np.clip(np.asarray(target_rho, np.float64), RHO_FLOOR, 1 - RHO_FLOOR)  # (targets, T)
    marginal = pmf.mean(axis=1)  # p(k | x)
    joint_yes = np.einsum("gtk,mt->gkm", pmf, yes, optimize=True) / yes.shape[1]  # p(k, y* = 1 | x, x*)
    joint_no = marginal[..., None] - joint_yes
    np.clip(joint_no, 0.0, None, out=joint_no)  # >= 0 up to rounding
    joint_entropy = -(xlogy(joint_yes, joint_yes) + xlogy(joint_no, joint_no)).sum(axis=1)  # (galaxies, targets)
    target_mean = yes.mean(axis=1)
    target_entropy = -(xlogy(target_mean, target_mean) + xlogy(1 - target_mean, 1 - target_mean))
    information = _entropy(marginal)[:, None] + target_entropy[None, :] - joint_entropy
    return np.maximum(information, 0.0).mean(axis=1)


def _chunked(term: Callable[[np.ndarray, np.ndarray], np.ndarray], rho: np.ndarray,
             total_votes: int | np.ndarray, targets: int = 0) -> np.ndarray:
    """``term`` over galaxies in chunks of bounded size: memory does not grow with the number of galaxies
    (each galaxy holds T + ``targets`` values per possible k)."""
    votes = np.broadcast_to(np.asarray(total_votes, np.int64), (len(rho),))
    per_galaxy = (rho.shape[1] + targets) * (int(votes.max(initial=0)) + 1)
    step = max(1, SCORE_CHUNK_VALUES // per_galaxy)
    return np.concatenate([term(rho[i:i + step], votes[i:i + step]) for i in range(0, len(rho), step)] or
                          [np.zeros(0)])


def predictive_entropy(rho: np.ndarray, total_votes: int | np.ndarray) -> np.ndarray:
    """H[(1/T) sum_t Bin(k | N, rho_t)] per galaxy: the entropy of the posterior of k; rho is (galaxies, passes).

    ``total_votes`` is one N for all, or each galaxy's own (0 where it would not be asked: score 0).
    """
    return _chunked(lambda r, n: _information_terms(r, n)[0], rho, total_votes)


def mutual_information(rho: np.ndarray, total_votes: int | np.ndarray) -> np.ndarray:
    """BALD: I[k, w] = H[<Bin(k | N, rho_t)>] - <H[Bin(k | N, rho_t)]> per galaxy (eq. 22-24), exact over k.

    ``total_votes`` is one N for all, or each galaxy's own (0 where it would not be asked: score 0).
    """
    def information(r: np.ndarray, n: np.ndarray) -> np.ndarray:
        mixture_entropy, expected_entropy = _information_terms(r, n)
        return np.maximum(mixture_entropy - expected_entropy, 0.0)  # >= 0 up to rounding

    return _chunked(information, rho, total_votes)


def expected_predictive_information_gain(rho: np.ndarray, total_votes: int | np.ndarray,
                                         target_rho: np.ndarray) -> np.ndarray:
    """EPIG (Bickford Smith et al. 2023): how much labelling x tells, on average, about one volunteer's answer at
    target galaxies x* drawn from the pool, I[k; y* | x, x*] exact over k; rho is (galaxies, T) and target_rho
    (targets, T), sample t of both from the same weights (shared dropout masks, or one ensemble member).

    Unlike BALD it ignores what the weights disagree on that no target galaxy needs.
    """
    target_rho = np.asarray(target_rho, np.float64)
    return _chunked(lambda r, n: _predictive_information(r, n, target_rho), rho, total_votes, len(target_rho))


def rho_variance(rho: np.ndarray, total_votes: int) -> np.ndarray:
    """Variance of rho over the samples (N plays no part)."""
    return np.var(np.asarray(rho, np.float64), axis=1)


def random_scores(seed: int, indices: np.ndarray) -> np.ndarray:
    """A uniform score in [0, 1) per galaxy, a hash of (seed, galaxy index): the same in any batch."""
    with np.errstate(over="ignore"):
        x = (np.asarray(indices, np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)) \
            + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)  # splitmix64 finaliser
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def power_keys(scores: np.ndarray, exponent: float, seed: int, indices: np.ndarray) -> np.ndarray:
    """Stochastic power acquisition (Kirsch et al. 2023): the top n of beta log s + Gumbel noise is a draw of n
    galaxies without replacement with odds s^beta, so a batch spreads over many good candidates, not one
    redundant cluster; beta -> infinity is plain top n. The noise is keyed by galaxy, as random is."""
    gumbel = -np.log(-np.log(np.clip(random_scores(seed, indices), 1e-300, None)))
    with np.errstate(divide="ignore"):
        return exponent * np.log(scores) + gumbel


PER_OUTPUT = {"bald": mutual_information, "entropy": predictive_entropy, "variance": rho_variance}


@dataclass(frozen=True)
class Scorer:
    """Scores galaxies for one strategy from per-question logits samples of a vote model."""

    strategy: str
    heads: Sequence[VoteHead]
    total_votes: Mapping[str, int | np.ndarray]  # N per question: one, or one per galaxy scored
    weights: Mapping[str, float]  # per question: fraction of training galaxies asked it
    seed: int = 0
    power: float = POWER_EXPONENT  # beta, for power-bald
    tree: Schema | None = None  # given with volunteers: each galaxy's N from its chance of reaching the question
    volunteers: int = 0  # volunteers who start the tree per galaxy
    scored: tuple[str, ...] = ()  # questions whose scores are summed (all heads if empty)

    def galaxy_votes(self, rho: Mapping[str, np.ndarray]) -> Mapping[str, int | np.ndarray]:
        """N per question: the fixed total_votes, or each galaxy's expected votes from the tree."""
        if self.tree is None:
            return self.total_votes
        return expected_votes(self.tree, {q: r.mean(axis=1) for q, r in rho.items()}, self.volunteers,
                              self.scored or None)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise BadInputError("bad option", f"--strategy must be one of {', '.join(STRATEGIES)}, "
                                              f"not {self.strategy!r}")

    def __call__(self, logits: np.ndarray, indices: np.ndarray, target_logits: np.ndarray | None = None) -> np.ndarray:
        """(galaxies, passes, outputs) logits -> (galaxies,) scores; higher = label sooner. EPIG also needs the
        (targets, passes, outputs) logits of target galaxies, pass t from the same weights as the galaxies'."""
        if self.strategy == "random":
            return random_scores(self.seed, indices)
        if self.strategy in JOINT and target_logits is None:
            raise ValueError(f"{self.strategy} needs the logits of target galaxies")
        rho, targets = self._rho(logits), self._rho(target_logits)
        votes = self.galaxy_votes(rho)
        total = np.zeros(len(logits))
        for head in (h for h in self.heads if not self.scored or h.question in self.scored):
            q = head.question
            per_answer = sum(self._score(rho[q][..., a], votes[q], None if targets is None else targets[q][..., a])
                             for a in range(head.size))
            total += (1.0 if self.tree else self.weights.get(q, 1.0)) * per_answer
        return power_keys(total, self.power, self.seed, indices) if self.strategy.startswith("power-") else total

    def _rho(self, logits: np.ndarray | None) -> dict[str, np.ndarray] | None:
        """Per question, rho (galaxies, passes, answers) from the logits."""
        if logits is None:
            return None
        outputs = tf.convert_to_tensor(logits, tf.float32)
        return {head.question: head.rho(outputs).numpy() for head in self.heads}

    def _score(self, rho: np.ndarray, votes: int | np.ndarray, target_rho: np.ndarray | None) -> np.ndarray:
        if self.strategy in JOINT:
            return expected_predictive_information_gain(rho, votes, target_rho)
        return PER_OUTPUT[self.strategy.removeprefix("power-")](rho, votes)
