"""The vote catalogue: one row per galaxy, per answer rho's summaries and the predicted vote fraction.

For each answer of each question the model predicts: rho's MC mean, standard deviation
and 5/50/95 percentiles over the T samples (dropout x test-time augmentation, and over
models for an ensemble), and the predicted vote fraction (most likely k / N) with its
central interval under the mixture posterior of k at the question's N (the training
galaxies' mean N). Columns are described in docs/posteriors.md and in ``CAT.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from galzoo_tf.catalogues.writer import catalogue_provenance
from galzoo_tf.data.inputs import Batch
from galzoo_tf.science.expert import ExpertMapping
from galzoo_tf.tasks.votes.heads import VoteHead
from galzoo_tf.tasks.votes.model import VoteModel, check_same_heads
from galzoo_tf.tasks.votes.posterior import Sampler, count_probabilities, summarise_counts

PERCENTILES = (5, 50, 95)


@dataclass(frozen=True)
class PredictOptions:
    """How posteriors are sampled and summarised; all but batch size and part size shape the numbers."""

    passes: int = 30
    tta: bool = True
    seed: int = 0
    save_samples: bool = False
    interval: float = 0.9  # central interval of the vote fraction
    dropout_rate: float | None = None  # None: each model's calibrated rate, else its training rate
    batch_size: int = 32
    part_rows: int = 4096  # rows held before they are flushed to disk


class EnsembleSampler:
    """Samples of one or more models concatenated along the pass axis (an ensemble's posterior)."""

    def __init__(self, models: list[VoteModel], passes: int, tta: bool, seed: int, rate: float | None = None):
        check_same_heads(models)
        self.heads = models[0].heads
        self.samplers: list[Sampler] = [m.sampler(passes, tta, seed, rate) for m in models]

    def rho(self, images: np.ndarray, indices: np.ndarray) -> dict[str, np.ndarray]:
        """Per question: rho of every answer, (galaxies, passes x models, answers)."""
        logits = np.concatenate([s.logits(images, indices).numpy() for s in self.samplers], axis=1)
        return {head.question: head.rho(logits).numpy() for head in self.heads}


def answer_columns(rho: np.ndarray, total_votes: int, prefix: str, options: PredictOptions) -> dict[str, np.ndarray]:
    """Summary columns of one answer from its samples rho (galaxies, T)."""
    counts = summarise_counts(count_probabilities(rho, np.full(len(rho), total_votes)), options.interval)
    low, median, high = np.percentile(rho, PERCENTILES, axis=1)
    columns = {f"{prefix}_rho_mean": rho.mean(axis=1), f"{prefix}_rho_std": rho.std(axis=1),
               f"{prefix}_rho_p05": low, f"{prefix}_rho_p50": median, f"{prefix}_rho_p95": high,
               f"{prefix}_fraction": counts.mode / total_votes, f"{prefix}_fraction_low": counts.low / total_votes,
               f"{prefix}_fraction_high": counts.high / total_votes}
    if options.save_samples:
        columns[f"{prefix}_rho_samples"] = rho
    return {name: value.astype(np.float32) for name, value in columns.items()}


def describe_columns(heads: list[VoteHead], save_samples: bool, interval: float,
                     experts: Sequence[ExpertMapping] = ()) -> dict[str, str]:
    """What every column of the catalogue holds (written beside it and documented)."""
    columns = {"id": "galaxy id (record id, or image path relative to the folder without suffix)",
               "question": "the model's question ('all' for a multi-question model)"}
    for head in heads:
        columns[f"{head.question}_votes"] = f"N: votes assumed for {head.question!r} (training galaxies' mean N)"
        for answer in head.all_answers:
            p = f"{head.question}_{answer}"
            columns.update({
                f"{p}_rho_mean": f"mean over samples of rho, the probability a volunteer answers {answer!r}",
                f"{p}_rho_std": "standard deviation of rho over samples",
                f"{p}_rho_p05": "5th percentile of rho", f"{p}_rho_p50": "median of rho",
                f"{p}_rho_p95": "95th percentile of rho",
                f"{p}_fraction": "predicted vote fraction: most likely k under the posterior of k, divided by N",
                f"{p}_fraction_low": f"lower end of the central {interval:.0%} interval of k/N",
                f"{p}_fraction_high": f"upper end of the central {interval:.0%} interval of k/N"})
            if save_samples:
                columns[f"{p}_rho_samples"] = "every sample of rho (array column; space-separated in CSV)"
    for expert in experts:
        columns[f"expert_{expert.column}_probability"] = (
            f"probability an expert labels it {expert.column!r}: logistic regression on the mean rho of "
            f"{expert.question}/{expert.answer} (`galzoo calibrate --expert-labels`)")
    return columns


def batch_columns(batch: Batch, sampler: EnsembleSampler, votes: dict[str, int], question: str,
                  options: PredictOptions, experts: Sequence[ExpertMapping] = ()) -> dict[str, np.ndarray]:
    """Catalogue rows of one batch (with the expert probability of every stored expert mapping)."""
    rho = sampler.rho(batch.images, batch.indices)
    columns: dict[str, np.ndarray] = {"id": np.asarray(batch.ids), "question": np.full(len(batch.ids), question)}
    if "split" in batch.columns:
        columns["split"] = batch.columns["split"]
    for head in sampler.heads:
        columns[f"{head.question}_votes"] = np.full(len(batch.ids), votes[head.question], np.int32)
        for index, answer in enumerate(head.all_answers):
            columns.update(answer_columns(rho[head.question][..., index], votes[head.question],
                                          f"{head.question}_{answer}", options))
    for expert in experts:
        head = next(h for h in sampler.heads if h.question == expert.question)
        fraction = rho[expert.question][..., head.all_answers.index(expert.answer)].mean(axis=1)
        columns[f"expert_{expert.column}_probability"] = expert.probability(fraction).astype(np.float32)
    return columns


def vote_rows(models: list[VoteModel], options: PredictOptions) -> Callable[[Batch], dict[str, np.ndarray]]:
    """The catalogue rows of a batch, from a sampler built once for every batch."""
    sampler = EnsembleSampler(models, options.passes, options.tta, options.seed, options.dropout_rate)
    votes = models[0].votes_per_question()
    question = models[0].sidecar["question"]
    experts = models[0].experts
    return lambda batch: batch_columns(batch, sampler, votes, question, options, experts)


def vote_provenance(models: list[VoteModel], source, options: PredictOptions) -> Callable[[int], dict]:
    """The catalogue's sidecar for a given number of rows: version, seed, models and input checksums, columns."""
    votes = models[0].votes_per_question()
    columns = describe_columns(models[0].heads, options.save_samples, options.interval, models[0].experts)

    return lambda rows: catalogue_provenance(source, options, rows, described_models(models, options), columns,
                                             total_votes=votes)


def described_models(models: Sequence[VoteModel], options: PredictOptions) -> list[dict]:
    """Each model as a catalogue's provenance names it, with the dropout rate and logit spread it sampled at."""
    return [{**m.describe(), "dropout_rate": m.sampling_rate(options.dropout_rate),
             "logit_spread": m.sampling_spread(options.dropout_rate)} for m in models]
