"""`galzoo calibrate` for parameter models: HDI coverage (GaMPEN §5, Fig. 8), errors, flags, dropout tuning.

Coverage at level p = the fraction of galaxies whose true value lies in the p highest-density
interval of its posterior; calibrated posteriors have coverage p at every p. The "typical
error" of a parameter is the 68.27th percentile of the absolute residual of the mode
(L_B/L_T) or of the absolute fractional residual (R_e, F): the paper's "within 0.1 of the
true value in ~68 % of cases". ``tune_dropout`` picks the test-time dropout rate whose
coverage is closest to the levels on the validation split (mean absolute difference over
parameters and levels) and stores it in galzoo.json, as for vote models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from galzoo_tf import __version__
from galzoo_tf.data.inputs import RecordSource
from galzoo_tf.errors import BadInputError
from galzoo_tf.fileio import write_json_atomic
from galzoo_tf.tasks.base import Progress
from galzoo_tf.tasks.parameters.figures import calibration_figures, plot_crops
from galzoo_tf.tasks.parameters.model import ParameterModel
from galzoo_tf.tasks.parameters.posterior import (
    LEVELS,
    ParameterSummary,
    interval_coverage,
    level_name,
    summarise_parameters,
)
from galzoo_tf.tasks.parameters.targets import PARAMETERS, TRUTH_KEYS, check_parameters
from galzoo_tf.tasks.requests import REPORT, CalibrateRequest, CalibrationReport, ReportTable
from galzoo_tf.training.model_dir import record_dropout_rate

PAPER_COVERAGE = {"bulge_to_total": (0.718, 0.969, 0.989), "r_e_arcsec": (0.681, 0.959, 0.983),
                  "flux": (0.787, 0.982, 0.999), "mean": (0.729, 0.970, 0.990)}  # GaMPEN Table 2


@dataclass(frozen=True)
class FlagThresholds:
    """Qualitative labels where quantitative predictions are least reliable (GaMPEN §6.4)."""

    disk_dominated: float = 0.1  # L_B/L_T <= this: highly disk-dominated
    bulge_dominated: float = 0.85  # L_B/L_T >= this: highly bulge-dominated
    small_arcsec: float = 1.0  # R_e below this: small


def flags(values: np.ndarray, thresholds: FlagThresholds) -> dict[str, np.ndarray]:
    """The three flags of physical values (galaxies, 3) (predicted modes or truth)."""
    return {"highly_disk_dominated": values[:, 0] <= thresholds.disk_dominated,
            "highly_bulge_dominated": values[:, 0] >= thresholds.bulge_dominated,
            "small": values[:, 1] < thresholds.small_arcsec}


@dataclass
class SplitSamples:
    """Posterior samples and truth of a split's galaxies."""

    name: str
    ids: np.ndarray
    truth: np.ndarray  # (galaxies, 3)
    samples: np.ndarray  # (galaxies, T, 3)
    scales: np.ndarray  # the spatial transformer's s per galaxy (1: no crop)

    @cached_property
    def summary(self) -> ParameterSummary:
        """Modes, medians and HDIs of the samples: computed once for the report and its figures."""
        return summarise_parameters(self.samples)


def sample_split(model: ParameterModel, data: Path, split: str, passes: int, seed: int, rate: float | None,
                 batch_size: int, progress: Callable[[int, int], None] | None = None) -> SplitSamples:
    """Sample every galaxy (R_e > 0, F > 0) of a split at a test-time dropout rate.

    True L_B/L_T is clipped to [epsilon, 1 - epsilon] like the training targets: pure disks
    and spheroids are judged against the closest value the model can represent.
    """
    check_parameters(Path(data))
    sampler, epsilon = model.sampler(passes, seed, rate), model.scaler.epsilon
    source = RecordSource(data, split, TRUTH_KEYS)
    ids, truth, samples, scales, done = [], [], [], [], 0
    for batch in source.batches(batch_size):
        values = np.stack([batch.columns[key] for key in TRUTH_KEYS], axis=1).astype(np.float64)
        galaxy = (values[:, 1] > 0) & (values[:, 2] > 0)
        values[:, 0] = np.clip(values[:, 0], epsilon, 1 - epsilon)  # what the model can represent
        if galaxy.any():
            views = sampler.views(batch.images[galaxy])
            samples.append(sampler.samples(batch.images[galaxy], batch.indices[galaxy], views))
            scales.append(sampler.crops(views)[1])
            ids += [i for i, keep in zip(batch.ids, galaxy, strict=True) if keep]
            truth.append(values[galaxy])
        done += batch.consumed
        if progress:
            progress(done, source.total)
    if not ids:
        raise BadInputError("no galaxies", f"{data}: the {split} split has no galaxy with parameters")
    return SplitSamples(split, np.asarray(ids), np.concatenate(truth), np.concatenate(samples), np.concatenate(scales))


def typical_errors(summary: ParameterSummary, truth: np.ndarray) -> dict[str, float]:
    """68.27th percentile of |mode - truth| (L_B/L_T) and of |mode - truth| / truth (R_e, F)."""
    residual = summary.mode - truth
    relative = np.abs(residual) / np.where(np.arange(3) == 0, 1.0, truth)
    return {name: float(np.percentile(relative[:, p], 68.27)) for p, name in enumerate(PARAMETERS)}


def assess(split: SplitSamples, thresholds: FlagThresholds) -> dict:
    """Coverage, errors, residual statistics, uncertainty-residual correlation and flag accuracy of a split."""
    summary = split.summary
    coverage = interval_coverage(summary, split.truth)
    residual = summary.mode - split.truth
    width = summary.intervals[LEVELS[0]][1] - summary.intervals[LEVELS[0]][0]
    predicted, true = flags(summary.mode, thresholds), flags(split.truth, thresholds)
    report = {
        "galaxies": int(len(split.ids)),
        "coverage": {name: {level_name(level): float(coverage[level][p]) for level in LEVELS}
                     for p, name in enumerate(PARAMETERS)},
        "typical_error": typical_errors(summary, split.truth),
        "residual": {name: {"mean": float(residual[:, p].mean()), "median": float(np.median(residual[:, p])),
                            "std": float(residual[:, p].std())} for p, name in enumerate(PARAMETERS)},
        "spearman_uncertainty_vs_residual": {
            name: float(spearmanr(width[:, p], np.abs(residual[:, p])).statistic) for p, name in enumerate(PARAMETERS)},
        "stn": {"scale_min": float(split.scales.min()), "scale_max": float(split.scales.max()),
                "spearman_scale_vs_r_e": float(spearmanr(split.scales, split.truth[:, 1]).statistic)},
        "flags": {name: {"accuracy": float((predicted[name] == true[name]).mean()),
                         "predicted": int(predicted[name].sum()), "true": int(true[name].sum()),
                         "both": int((predicted[name] & true[name]).sum())} for name in predicted},
    }
    report["coverage"]["mean"] = {level_name(level): float(coverage[level].mean()) for level in LEVELS}
    return report


def stn_figure(model: ParameterModel, data: Path, split: SplitSamples, out: Path, count: int = 4) -> Path:
    """The spatial transformer's crops of the galaxies it crops most and least (GaMPEN Fig. 5)."""
    order = np.argsort(split.scales)
    chosen = [*order[:count], *order[-count:]]
    position = {split.ids[i]: rank for rank, i in enumerate(chosen)}
    found: dict[int, np.ndarray] = {}
    for batch in RecordSource(data, split.name).batches(64):
        keep = [i for i, gid in enumerate(batch.ids) if gid in position]
        found.update({position[batch.ids[i]]: batch.images[i] for i in keep})
    images = np.stack([found[rank] for rank in range(len(chosen))])
    sampler = model.sampler(1, 0)
    views = sampler.views(images)
    crops, scales = sampler.crops(views)
    return plot_crops(out / "stn-crops.png", views.numpy(), crops, scales, split.truth[chosen, 1])


CRITERION = "smallest mean |HDI coverage - level| over parameters and levels"


def calibration_score(report: dict) -> float:
    """Mean |coverage - level| over parameters and levels: 0 when perfectly calibrated."""
    return float(np.mean([abs(report["coverage"][name][level_name(level)] - level)
                          for name in PARAMETERS for level in LEVELS]))


def tune_dropout(model: ParameterModel, data: Path, options: CalibrateRequest, thresholds: FlagThresholds) -> dict:
    """Score every test-time rate on the tuning split; the best is the one with the smallest score."""
    scores = {}
    for rate in options.tune_dropout:
        split = sample_split(model, data, options.tune_split, options.passes, options.seed, rate, options.batch_size)
        scores[rate] = calibration_score(assess(split, thresholds))
    best = min(scores, key=scores.get)
    return {"split": options.tune_split, "scores": {f"{r:g}": s for r, s in scores.items()}, "best": best}


def calibrate_parameters(model: ParameterModel, data: Path, out: Path, options: CalibrateRequest,
                         thresholds: FlagThresholds = FlagThresholds(), progress: Progress = None) -> dict:
    """Report (and with ``tune_dropout``, recalibrate) a parameter model; writes calibration.json and figures.

    ``options.passes`` must be set (``calibration_report`` fills in the task's default, 100).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"galzoo_version": __version__, "task": "parameters", "model": str(model.path.resolve()),
              "model_sha256": model.checksum(), "data": str(Path(data).resolve()), "seed": options.seed,
              "options": {"split": options.split, "passes": options.passes, "seed": options.seed,
                          "batch_size": options.batch_size, "tune_dropout": list(options.tune_dropout),
                          "tune_split": options.tune_split, "thresholds": asdict(thresholds)},
              "levels": list(LEVELS), "paper_coverage": PAPER_COVERAGE}
    if options.tune_dropout:
        tuning = tune_dropout(model, data, options, thresholds)
        record_dropout_rate(model.path, tuning["best"], data, options.tune_split, CRITERION, passes=options.passes,
                            seed=options.seed)
        result["tuning"] = tuning
    rate = result["tuning"]["best"] if options.tune_dropout else (model.dropout_rate or model.training_rate)
    split = sample_split(model, data, options.split, options.passes, options.seed, rate, options.batch_size, progress)
    result.update({"split": options.split, "dropout_rate": rate, **assess(split, thresholds)})
    result["score"] = calibration_score(result)
    result["figures"] = calibration_figures(out, split, result) + [stn_figure(model, data, split, out).name]
    write_json_atomic(out / REPORT, result)
    return result


def level_table(result: dict) -> list[list[str]]:
    """Coverage per parameter and level, beside the paper's Table 2."""
    rows = []
    for name in (*PARAMETERS, "mean"):
        ours = [f"{100 * result['coverage'][name][level_name(level)]:.1f}%" for level in LEVELS]
        paper = [f"{100 * value:.1f}%" for value in PAPER_COVERAGE[name]]
        rows.append([name, *ours, *paper])
    return rows


def report_tables(result: dict, passes: int) -> list[ReportTable]:
    """What `galzoo calibrate` shows of a parameter model's report."""
    levels = [f"{100 * level:.2f}%" for level in LEVELS]
    coverage = ReportTable(f"HDI coverage on the {result['split']} split ({result['galaxies']:,} galaxies, "
                           f"T = {passes}, dropout {result['dropout_rate']:g})",
                           ["parameter", *[f"ours {v}" for v in levels], *[f"paper {v}" for v in levels]],
                           level_table(result))
    errors = result["typical_error"]
    rows = [["L_B/L_T: 68th percentile |error|", f"{errors['bulge_to_total']:.3f}"],
            ["R_e: 68th percentile |fractional error|", f"{100 * errors['r_e_arcsec']:.1f}%"],
            ["flux: 68th percentile |fractional error|", f"{100 * errors['flux']:.1f}%"]]
    rows += [[f"flag {name}: accuracy", f"{100 * value['accuracy']:.1f}%"] for name, value in result["flags"].items()]
    return [coverage, ReportTable("errors of the most probable value and flag accuracy", ["", ""], rows)]


def calibration_report(model: ParameterModel, data: Path, out: Path, request: CalibrateRequest, default_passes: int,
                       progress: Progress = None) -> CalibrationReport:
    """HDI coverage, typical errors and flags of a parameter model, beside GaMPEN's Table 2."""
    passes = request.passes or default_passes
    result = calibrate_parameters(model, data, out, replace(request, passes=passes), progress=progress)
    return CalibrationReport(result, report_tables(result, passes),
                             f"report: {out / 'calibration.json'}; figures: {', '.join(result['figures'])} in {out}")
