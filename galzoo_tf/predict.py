"""`galzoo predict`: a posterior catalogue, one row per galaxy, streamed from records or image folders.

For each answer of each question the model predicts: rho's MC mean, standard deviation
and 5/50/95 percentiles over the T samples (dropout x test-time augmentation, and over
models for an ensemble), and the predicted vote fraction (most likely k / N) with its
central interval under the mixture posterior of k at the question's N (the training
galaxies' mean N). Columns are described in docs/posteriors.md and in ``CAT.json``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from galzoo_tf import __version__
from galzoo_tf.catalogue import PartialCatalogue, catalogue_format
from galzoo_tf.expert import ExpertMapping
from galzoo_tf.fileio import write_json_atomic
from galzoo_tf.heads import BinomialHead
from galzoo_tf.inputs import Batch, FolderSource, RecordSource
from galzoo_tf.model_dir import VoteModel, check_same_heads
from galzoo_tf.posterior import Sampler, count_probabilities, summarise_counts

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


@dataclass(frozen=True)
class PredictResult:
    path: Path
    rows: int
    skipped: dict
    seconds: float

    @property
    def galaxies_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else float("nan")


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


def describe_columns(heads: list[BinomialHead], save_samples: bool, interval: float,
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


def catalogue_settings(checksums: list[str], source: RecordSource | FolderSource, options) -> dict:
    """What must match for a run to resume: every option that shapes a number, the models and the input."""
    ignored = ("batch_size", "part_rows", "corner_ids")
    chosen = {k: v for k, v in asdict(options).items() if k not in ignored}
    return {**chosen, "models": checksums, "input": source.identity()}


def drain_rows(rows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The batches' rows joined column by column; the list is emptied (it is the pending buffer)."""
    joined = {name: np.concatenate([r[name] for r in rows]) for name in rows[0]}
    rows.clear()
    return joined


def vote_rows(models: list[VoteModel], options: PredictOptions) -> Callable[[Batch], dict[str, np.ndarray]]:
    """The catalogue rows of a batch, from a sampler built once for every batch."""
    sampler = EnsembleSampler(models, options.passes, options.tta, options.seed, options.dropout_rate)
    votes = {head.question: models[0].total_votes(head) for head in sampler.heads}
    question = models[0].sidecar["question"]
    experts = models[0].experts
    return lambda batch: batch_columns(batch, sampler, votes, question, options, experts)


def vote_provenance(models: list[VoteModel], source, options: PredictOptions) -> Callable[[int], dict]:
    """The catalogue's sidecar for a given number of rows: version, seed, models and input checksums, columns."""
    heads = models[0].heads
    votes = {head.question: models[0].total_votes(head) for head in heads}
    return lambda rows: _provenance(models, source, options, rows, heads, votes)


def predict(models: list[VoteModel], source: RecordSource | FolderSource, out: Path, options: PredictOptions,
            resume: bool = False, overwrite: bool = False,
            progress: Callable[[int, int], None] | None = None) -> PredictResult:
    """Sample every galaxy of ``source`` and write the catalogue ``out`` (format from its extension)."""
    settings = catalogue_settings([m.checksum() for m in models], source, options)
    return stream_catalogue(source, out, settings, options, vote_rows(models, options),
                            vote_provenance(models, source, options), resume, overwrite, progress)


def stream_catalogue(source: RecordSource | FolderSource, out: Path, settings: dict, options,
                     columns_of: Callable[[Batch], dict[str, np.ndarray]], provenance_of: Callable[[int], dict],
                     resume: bool, overwrite: bool, progress: Callable[[int, int], None] | None) -> PredictResult:
    """Rows of every batch of ``source``, flushed in parts of ``options.part_rows`` (resumable), then the
    catalogue and its provenance JSON, both written atomically."""
    catalogue_format(out)
    partial = PartialCatalogue(out, settings, resume, overwrite)
    started, done, pending, pending_consumed = time.perf_counter(), partial.consumed, [], 0
    for batch in source.batches(options.batch_size, skip=partial.consumed):
        if batch.ids:
            pending.append(columns_of(batch))
        pending_consumed += batch.consumed
        done += batch.consumed
        if pending and sum(len(p["id"]) for p in pending) >= options.part_rows:
            partial.add(drain_rows(pending), pending_consumed)
            pending_consumed = 0
        if progress:
            progress(done, source.total)
    if pending:
        partial.add(drain_rows(pending), pending_consumed)
    seconds = time.perf_counter() - started
    provenance = provenance_of(partial.rows)
    partial.finish(fits_keywords(provenance))
    write_json_atomic(out.with_name(out.name + ".json"), provenance)
    return PredictResult(out, provenance["rows"], dict(source.skipped), seconds)


def _provenance(models: list[VoteModel], source, options: PredictOptions, rows: int, heads: list[BinomialHead],
                votes: dict[str, int]) -> dict:
    """The catalogue's sidecar: version, seed, models and input checksums, options, columns."""
    return {"galzoo_version": __version__, "seed": options.seed, "rows": rows, "skipped": dict(source.skipped),
            "options": asdict(options), "total_votes": votes,
            "models": [{"path": str(m.path.resolve()), "sha256": m.checksum(),
                        "dropout_rate": options.dropout_rate or m.dropout_rate or m.model.get_layer("mc_dropout").rate}
                       for m in models],
            "input": source.describe(),
            "columns": describe_columns(heads, options.save_samples, options.interval, models[0].experts)}


def fits_keywords(provenance: dict) -> dict:
    """The provenance that fits in FITS keywords (the rest is in the JSON beside the catalogue)."""
    inputs = provenance["input"]
    return {"GZVERSN": provenance["galzoo_version"], "GZSEED": provenance["seed"],
            "GZPASSES": provenance["options"]["passes"], "GZTTA": provenance["options"].get("tta", False),
            "GZMODEL": provenance["models"][0]["sha256"], "GZINPUT": inputs.get("fingerprint") or inputs["sha256"]}
