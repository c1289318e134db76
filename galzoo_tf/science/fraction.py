"""Population fractions with uncertainty: 'the bar fraction is 0.26 +- 0.02', not only 'is 0.26'.

Each galaxy of a catalogue has a probability p_i of having the feature: an expert probability
column from `galzoo calibrate --expert-labels` (calibrated), or the posterior probability that
the volunteers' vote fraction of an answer reaches a threshold, P(k/N >= t), from the rho
samples (`--save-samples`) or, without them, from Binomial(N, mean rho). The number of
galaxies with the feature is then a sum of independent Bernoulli(p_i) (per draw, each galaxy's
p_i is taken from one of its posterior samples), so the fraction has a distribution: its mean
and central intervals are reported beside the naive count of point predictions above the
threshold. Draws are made in chunks, so a catalogue of millions fits.

Nothing here imports TensorFlow: ``galzoo fraction`` on a FITS, CSV or Parquet catalogue
starts in a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binom

from galzoo_tf import __version__
from galzoo_tf.catalogues.formats import PROVENANCE, read_part
from galzoo_tf.errors import BadInputError
from galzoo_tf.fileio import read_json, sha256_file, write_json_atomic
from galzoo_tf.outputs import Output, writing
from galzoo_tf.plots import figure_grid

LEVELS = (0.68, 0.95)


@dataclass(frozen=True)
class FractionOptions:
    draws: int = 4000
    seed: int = 0
    chunk: int = 64  # draws per chunk: memory is galaxies x chunk


def feature_probabilities(rho: np.ndarray, total_votes: np.ndarray, threshold: float) -> np.ndarray:
    """P(k / N >= threshold) under Binomial(N, rho) for rho of shape (galaxies,) or (galaxies, samples)."""
    rho = np.asarray(rho, np.float64)
    totals = np.asarray(total_votes, np.float64).reshape(-1, *([1] * (rho.ndim - 1)))
    needed = np.ceil(threshold * totals - 1e-9)
    return binom.sf(needed - 1, totals, rho)


def fraction_samples(probabilities: np.ndarray, options: FractionOptions) -> np.ndarray:
    """Draws of the fraction of galaxies with the feature; probabilities (galaxies,) or (galaxies, samples)."""
    p = np.asarray(probabilities, np.float64)
    p = p[:, None] if p.ndim == 1 else p
    if len(p) == 0:
        raise BadInputError("no galaxies", "the catalogue has no galaxies to count")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise BadInputError("bad probability", "feature probabilities must be finite and in [0, 1]")
    rng = np.random.default_rng(options.seed)
    galaxies, samples = p.shape
    out = []
    for start in range(0, options.draws, options.chunk):
        count = min(options.chunk, options.draws - start)
        chosen = p[np.arange(galaxies)[:, None], rng.integers(0, samples, (galaxies, count))] if samples > 1 \
            else np.repeat(p, count, axis=1)
        out.append((rng.random((galaxies, count)) < chosen).mean(axis=0))
    return np.concatenate(out)


def summarise_fraction(samples: np.ndarray, naive: float, galaxies: int, levels: Sequence[float] = LEVELS) -> dict:
    """Mean, standard deviation and central intervals of the fraction, beside the naive count."""
    intervals = {f"{level:.0%}": [float(q) for q in np.quantile(samples, [(1 - level) / 2, (1 + level) / 2])]
                 for level in levels}
    return {"galaxies": galaxies, "naive_fraction": float(naive), "mean": float(samples.mean()),
            "std": float(samples.std()), "intervals": intervals, "draws": int(len(samples))}


def read_catalogue(path: Path) -> dict[str, np.ndarray]:
    """Columns of a catalogue from `galzoo predict`: FITS, CSV (array cells space-separated), Parquet, or a
    partitioned folder (its parts in input order)."""
    path = Path(path)
    if path.is_dir():
        if not (path / PROVENANCE).is_file():
            raise BadInputError("unfinished output", f"{path}: no {PROVENANCE}; finish the partitioned prediction "
                                                     "first (re-run the same galzoo predict)")
        parts = [read_part(path / name) for name in read_json(path / PROVENANCE)["parts"]]
        return {name: np.concatenate([np.asarray(p[name]) for p in parts if len(p)]) for name in parts[0].colnames}
    if not path.is_file():
        raise BadInputError("missing file", f"{path}: no such catalogue")
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path)
        return {name: np.stack([np.array(v.split(), float) for v in frame[name]]) if name.endswith("_samples")
                else frame[name].to_numpy() for name in frame.columns}
    table = read_part(path)
    return {name: np.asarray(table[name]) for name in table.colnames}


def catalogue_probabilities(columns: dict[str, np.ndarray], probability_column: str | None, answer: str | None,
                            threshold: float) -> tuple[np.ndarray, float, str]:
    """(per-galaxy feature probabilities, naive fraction, what they are) from a catalogue's columns."""
    if (probability_column is None) == (answer is None):
        raise BadInputError("bad option", "give one of --probability-column COL or --answer QUESTION_ANSWER")
    if probability_column is not None:
        if probability_column not in columns:
            raise BadInputError("missing column", f"no column {probability_column!r} in the catalogue")
        p = np.asarray(columns[probability_column], np.float64)
        return p, float((p >= 0.5).mean()), f"{probability_column} (naive: probability >= 0.5)"
    votes = [name[:-len("_votes")] for name in columns if name.endswith("_votes")
             and answer.startswith(name[:-len("_votes")] + "_")]
    if f"{answer}_rho_mean" not in columns or not votes:
        found = sorted(n[:-len("_rho_mean")] for n in columns if n.endswith("_rho_mean"))
        raise BadInputError("missing column", f"--answer {answer}: the catalogue predicts {', '.join(found)}")
    samples = f"{answer}_rho_samples"
    rho = columns[samples] if samples in columns else columns[f"{answer}_rho_mean"]
    p = feature_probabilities(rho, columns[f"{votes[0]}_votes"], threshold)
    source = "MC samples" if samples in columns else "mean rho only (predict --save-samples propagates the samples)"
    naive = float((np.asarray(columns[f"{answer}_fraction"]) >= threshold).mean())
    return p, naive, f"P({answer} vote fraction >= {threshold:g}) from {source} (naive: predicted fraction >= " \
                     f"{threshold:g})"


def plot_fraction(path: Path, samples: np.ndarray, summary: dict, title: str) -> Path:
    """Histogram of the fraction's draws with its 68 % interval and the naive fraction."""
    with figure_grid(path, title) as grid:
        axis = grid[0, 0]
        axis.hist(samples, bins=40, color="tab:blue", alpha=0.7)
        low, high = summary["intervals"]["68%"]
        axis.axvspan(low, high, color="tab:blue", alpha=0.15, label="68% interval")
        axis.axvline(summary["naive_fraction"], color="tab:red", linestyle="--", label="naive count")
        axis.set_xlabel("fraction of galaxies with the feature")
        axis.legend()
    return path


@dataclass(frozen=True)
class FractionResult:
    """What `galzoo fraction` found: what was counted, the summary, and the files written (with ``out``)."""

    feature: str  # what "having the feature" means, e.g. P(bar_bar vote fraction >= 0.5) from MC samples
    summary: dict  # summarise_fraction's: galaxies, naive_fraction, mean, std, intervals, draws
    out: Path | None = None  # the summary as JSON, with its provenance
    histogram: Path | None = None  # the fraction's draws, beside ``out`` (.png)


def population_fraction(catalogue: Path, probability_column: str | None = None, answer: str | None = None,
                        threshold: float = 0.5, options: FractionOptions | None = None,
                        out: Path | None = None) -> FractionResult:
    """`galzoo fraction` whole: the fraction of the catalogue's galaxies with a feature (an expert probability
    column, or an answer's vote fraction reaching ``threshold``), with its uncertainty; with ``out``, the
    summary as JSON with its provenance (galzoo version, seed, feature, the input and its sha256) and the
    histogram of the draws beside it.

    >>> result = population_fraction(Path("data/demo/bar-test.fits"), answer="bar_bar", threshold=0.5,
    ...                              out=Path("bar-fraction.json"))  # doctest: +SKIP
    >>> result.summary["mean"], result.summary["intervals"]["68%"]  # doctest: +SKIP
    """
    catalogue, options = Path(catalogue), options or FractionOptions()
    if out is None:
        return _fraction(catalogue, probability_column, answer, threshold, options)
    out = Path(out)
    with writing([Output.file(out, also=[histogram_path(out)])], [("catalogue", catalogue)]):
        return _fraction(catalogue, probability_column, answer, threshold, options, out)


def histogram_path(out: Path) -> Path:
    """The histogram of the draws beside the summary (``NAME.png``)."""
    return out.with_suffix(".png")


def _fraction(catalogue: Path, probability_column: str | None, answer: str | None, threshold: float,
              options: FractionOptions, out: Path | None = None) -> FractionResult:
    """``population_fraction`` once its outputs are checked and locked."""
    probabilities, naive, feature = catalogue_probabilities(read_catalogue(catalogue), probability_column, answer,
                                                            threshold)
    samples = fraction_samples(probabilities, options)
    summary = summarise_fraction(samples, naive, len(probabilities))
    if out is None:
        return FractionResult(feature, summary)
    inputs = {"catalogue": str(catalogue.resolve())}
    if catalogue.is_file():
        inputs["sha256"] = sha256_file(catalogue)
    write_json_atomic(out, {"galzoo_version": __version__, "seed": options.seed, "feature": feature,
                            "input": inputs, **summary})
    return FractionResult(feature, summary, out, plot_fraction(histogram_path(out), samples, summary, feature))
