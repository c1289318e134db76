"""`galzoo predict` for parameter models: a catalogue of L_B/L_T, R_e and flux posteriors, one row per galaxy.

Per parameter: the mode (KDE maximum), the median and the 68.27/95.45/99.73 % highest-density
intervals of the T samples (default 1000, as GaMPEN), plus the qualitative flags of §6.4
from the mode; ``save_samples`` adds the joint samples. Written by the shared streaming,
resumable writer (``galzoo_tf.catalogues``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from galzoo_tf.catalogues.writer import catalogue_provenance
from galzoo_tf.data.inputs import Batch
from galzoo_tf.tasks.parameters.calibrate import FlagThresholds, flags
from galzoo_tf.tasks.parameters.figures import plot_corner
from galzoo_tf.tasks.parameters.model import ParameterModel
from galzoo_tf.tasks.parameters.posterior import LEVELS, ParameterSampler, level_name, summarise_parameters
from galzoo_tf.tasks.parameters.targets import LABELS, PARAMETERS


@dataclass(frozen=True)
class ParameterPredictOptions:
    passes: int = 1000
    seed: int = 0
    save_samples: bool = False
    dropout_rate: float | None = None  # None: the calibrated rate, else the training rate
    thresholds: FlagThresholds = field(default_factory=FlagThresholds)
    corner_ids: tuple[str, ...] = ()  # galaxies whose joint posterior gets a corner plot beside the catalogue
    batch_size: int = 16
    part_rows: int = 4096


def corner_path(out: Path, galaxy_id: str) -> Path:
    """Where the corner plot of one galaxy goes: beside the catalogue, named after it and the id."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in galaxy_id)
    return out.with_name(f"{out.stem}-corner-{safe}.png")


def parameter_columns(batch: Batch, sampler: ParameterSampler, options: ParameterPredictOptions,
                      out: Path) -> dict:
    """Catalogue rows of one batch (and the corner plots of the chosen galaxies in it)."""
    samples = sampler.samples(batch.images, batch.indices)
    for row, galaxy_id in enumerate(batch.ids):
        if galaxy_id in options.corner_ids:
            plot_corner(corner_path(out, galaxy_id), samples[row], None, f"posterior of {galaxy_id}")
    summary = summarise_parameters(samples)
    columns: dict[str, np.ndarray] = {"id": np.asarray(batch.ids)}
    if "split" in batch.columns:
        columns["split"] = batch.columns["split"]
    for p, name in enumerate(PARAMETERS):
        columns[f"{name}_mode"] = summary.mode[:, p]
        columns[f"{name}_median"] = summary.median[:, p]
        for level in LEVELS:
            low, high = summary.intervals[level]
            columns[f"{name}_hdi{level_name(level)}_low"] = low[:, p]
            columns[f"{name}_hdi{level_name(level)}_high"] = high[:, p]
        if options.save_samples:
            columns[f"{name}_samples"] = samples[..., p].astype(np.float32)
    columns = {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in columns.items()}
    return {**columns, **flags(summary.mode, options.thresholds)}


def describe_parameter_columns(save_samples: bool, thresholds: FlagThresholds) -> dict[str, str]:
    """What every column holds (written beside the catalogue and documented in docs/parameters.md)."""
    columns = {"id": "galaxy id (record id, or image path relative to the folder without suffix)"}
    for name in PARAMETERS:
        columns[f"{name}_mode"] = f"most probable {LABELS[name]} (maximum of a Gaussian KDE of the samples)"
        columns[f"{name}_median"] = f"median of the {LABELS[name]} samples"
        for level in LEVELS:
            for end in ("low", "high"):
                columns[f"{name}_hdi{level_name(level)}_{end}"] = \
                    f"{end} end of the {100 * level:.2f}% highest-density interval of {LABELS[name]}"
        if save_samples:
            columns[f"{name}_samples"] = f"every sample of {LABELS[name]} (array column)"
    columns.update({
        "highly_disk_dominated": f"mode of L_B/L_T <= {thresholds.disk_dominated}",
        "highly_bulge_dominated": f"mode of L_B/L_T >= {thresholds.bulge_dominated}",
        "small": f"mode of R_e < {thresholds.small_arcsec} arcsec"})
    return columns


def parameter_rows(model: ParameterModel, options: ParameterPredictOptions,
                   out: Path) -> Callable[[Batch], dict[str, np.ndarray]]:
    """The catalogue rows of a batch, from a sampler built once for every batch."""
    sampler = model.sampler(options.passes, options.seed, options.dropout_rate)
    return lambda batch: parameter_columns(batch, sampler, options, out)


def parameter_provenance(model: ParameterModel, source, options: ParameterPredictOptions) -> Callable[[int], dict]:
    """The catalogue's sidecar for a given number of rows."""
    rate = next(r for r in (options.dropout_rate, model.dropout_rate, model.training_rate) if r is not None)
    columns = describe_parameter_columns(options.save_samples, options.thresholds)
    return lambda rows: catalogue_provenance(source, options, rows, [{**model.describe(), "dropout_rate": rate}],
                                             columns, task="parameters")
