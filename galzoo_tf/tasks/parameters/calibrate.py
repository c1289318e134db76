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
from galzoo_tf.fileio import nan_to_null, write_json_atomic
from galzoo_tf.tasks.base import Progress
from galzoo_tf.tasks.parameters.figures import calibration_figures, fractional_residuals, plot_crops
from galzoo_tf.tasks.parameters.model import ParameterModel
from galzoo_tf.tasks.parameters.posterior import (
    LEVELS,
    ParameterSummary,
    interval_coverage,
    level_name,
    summarise_parameters,
)
from galzoo_tf.tasks.parameters.targets import EPSILON, PARAMETERS, TRUTH_KEYS, check_parameters
from galzoo_tf.tasks.requests import REPORT, CalibrateRequest, CalibrationReport, ReportTable
from galzoo_tf.training.model_dir import fine_tuning_source, record_dropout_rate

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
    epsilon: float = EPSILON  # true L_B/L_T was clipped to [epsilon, 1 - epsilon]
    thresholds: FlagThresholds = FlagThresholds()

    @cached_property
    def summary(self) -> ParameterSummary:
        """Modes, medians and HDIs of the samples: computed once for the report and its figures."""
        return summarise_parameters(self.samples)

    @cached_property
    def flagged(self) -> dict[str, np.ndarray]:
        """The flags of the predicted modes (GaMPEN §6.4 assigns them from predictions)."""
        return flags(self.summary.mode, self.thresholds)

    @property
    def single_component(self) -> np.ndarray:
        """Pure disks and pure bulges: true L_B/L_T at 0 or 1 (clipped to epsilon)."""
        return (self.truth[:, 0] <= self.epsilon) | (self.truth[:, 0] >= 1 - self.epsilon)


def sample_split(model: ParameterModel, data: Path, split: str, passes: int, seed: int, rate: float | None,
                 batch_size: int, progress: Callable[[int, int], None] | None = None,
                 thresholds: FlagThresholds = FlagThresholds()) -> SplitSamples:
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
    return SplitSamples(split, np.asarray(ids), np.concatenate(truth), np.concatenate(samples), np.concatenate(scales),
                        epsilon, thresholds)


TYPICAL = 68.27  # the percentile of |error| GaMPEN calls typical ("within 0.1 in ~68 % of cases")


def typical_errors(summary: ParameterSummary, truth: np.ndarray) -> dict[str, float]:
    """68.27th percentile of |mode - truth| (L_B/L_T) and of |mode - truth| / truth (R_e, F)."""
    relative = np.abs(fractional_residuals(truth, summary.mode))
    return {name: float(np.percentile(relative[:, p], TYPICAL)) for p, name in enumerate(PARAMETERS)}


def flag_metrics(predicted: np.ndarray, true: np.ndarray) -> dict:
    """Precision (of the galaxies flagged, the share truly so: GaMPEN's "accuracy of the labels", Fig. 20) and
    recall (of the galaxies truly so, the share flagged). Accuracy would count the unflagged majority too, so a
    flag that never fires would score high; undefined ratios are NaN."""
    both = int((predicted & true).sum())
    return {"precision": both / predicted.sum() if predicted.any() else float("nan"),
            "recall": both / true.sum() if true.any() else float("nan"),
            "predicted": int(predicted.sum()), "true": int(true.sum()), "both": both}


def r_squared(summary: ParameterSummary, truth: np.ndarray) -> dict[str, float]:
    """Tuccillo et al. (2018)'s "degree of regression accuracy" R^2 (GaMPEN eq. 17) of the mode, for L_B/L_T, R_e
    and the magnitude -2.5 log10 F (the paper's R^2 are for magnitude and R_e: 0.998 and 0.980)."""
    from sklearn.metrics import r2_score

    return {"bulge_to_total": float(r2_score(truth[:, 0], summary.mode[:, 0])),
            "r_e_arcsec": float(r2_score(truth[:, 1], summary.mode[:, 1])),
            "magnitude": float(r2_score(-2.5 * np.log10(truth[:, 2]), -2.5 * np.log10(summary.mode[:, 2])))}


def after_flagging(split: SplitSamples) -> dict:
    """Typical errors where numbers are kept: L_B/L_T of the galaxies not flagged highly disk- or bulge-dominated,
    R_e of those not flagged small (GaMPEN Fig. 19: 0.10 -> 0.076 for L_B/L_T)."""
    relative = np.abs(fractional_residuals(split.truth, split.summary.mode))
    kept = {"bulge_to_total": ~(split.flagged["highly_disk_dominated"] | split.flagged["highly_bulge_dominated"]),
            "r_e_arcsec": ~split.flagged["small"]}
    return {name: {"galaxies": int(chosen.sum()),
                   "typical_error": float(np.percentile(relative[chosen, PARAMETERS.index(name)], TYPICAL))
                   if chosen.any() else float("nan")} for name, chosen in kept.items()}


def assess(split: SplitSamples) -> dict:
    """Coverage, errors, residual statistics, uncertainty-residual correlation and flag accuracy of a split."""
    summary = split.summary
    coverage = interval_coverage(summary, split.truth)
    residual = summary.mode - split.truth
    width = summary.intervals[LEVELS[0]][1] - summary.intervals[LEVELS[0]][0]
    predicted, true = split.flagged, flags(split.truth, split.thresholds)
    single = split.single_component
    report = {
        "galaxies": int(len(split.ids)),
        "coverage": {name: {level_name(level): float(coverage[level][p]) for level in LEVELS}
                     for p, name in enumerate(PARAMETERS)},
        "typical_error": typical_errors(summary, split.truth),
        "typical_error_absolute": {name: float(np.percentile(np.abs(residual[:, p]), TYPICAL))
                                   for p, name in enumerate(PARAMETERS)},
        "r_squared": r_squared(summary, split.truth),
        "after_flagging": after_flagging(split),
        "bulge_to_total_residual_std": {"single_component": float(residual[single, 0].std()) if single.any()
                                        else float("nan"),
                                        "bulge_and_disk": float(residual[~single, 0].std()) if (~single).any()
                                        else float("nan")},
        "residual": {name: {"mean": float(residual[:, p].mean()), "median": float(np.median(residual[:, p])),
                            "std": float(residual[:, p].std())} for p, name in enumerate(PARAMETERS)},
        "spearman_uncertainty_vs_residual": {
            name: float(spearmanr(width[:, p], np.abs(residual[:, p])).statistic) for p, name in enumerate(PARAMETERS)},
        "stn": {"scale_min": float(split.scales.min()), "scale_max": float(split.scales.max()),
                "spearman_scale_vs_r_e": float(spearmanr(split.scales, split.truth[:, 1]).statistic)},
        "flags": {name: flag_metrics(predicted[name], true[name]) for name in predicted},
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
    scores, coverage = {}, {}
    for rate in options.tune_dropout:
        split = sample_split(model, data, options.tune_split, options.passes, options.seed, rate, options.batch_size,
                             thresholds=thresholds)
        report = assess(split)
        scores[rate], coverage[f"{rate:g}"] = calibration_score(report), report["coverage"]
    best = min(scores, key=scores.get)
    return {"split": options.tune_split, "scores": {f"{r:g}": s for r, s in scores.items()}, "best": best,
            "coverage": coverage}


def compare_trained_rates(model: ParameterModel, data: Path, options: CalibrateRequest,
                          thresholds: FlagThresholds) -> dict:
    """GaMPEN's own choice of the dropout rate (§5, Fig. 8): networks trained at different rates, each sampled at
    its training rate on the tuning split; the best calibrated by the tuning criterion is named, not stored."""
    others = [ParameterModel(*fine_tuning_source(path, "parameters")) for path in options.trained_rates]
    compared = []
    for candidate in [model, *others]:
        split = sample_split(candidate, data, options.tune_split, options.passes, options.seed,
                             candidate.training_rate, options.batch_size, thresholds=thresholds)
        report = assess(split)
        compared.append({"model": str(candidate.path.resolve()), "dropout_rate": candidate.training_rate,
                         "score": calibration_score(report), "coverage": report["coverage"]})
    if len({entry["dropout_rate"] for entry in compared}) < len(compared):
        raise BadInputError("bad option", "--trained-rate: two of the models were trained at the same dropout "
                                          "rate; compare networks trained at different rates")
    best = min(compared, key=lambda entry: entry["score"])
    return {"split": options.tune_split, "criterion": CRITERION, "models": compared, "best": best["model"],
            "best_dropout_rate": best["dropout_rate"]}


def calibrate_parameters(model: ParameterModel, data: Path, out: Path, options: CalibrateRequest,
                         thresholds: FlagThresholds = FlagThresholds(), progress: Progress = None) -> dict:
    """Report (and with ``tune_dropout``, recalibrate) a parameter model; writes calibration.json and figures.

    ``options.passes`` must be set (``calibration_report`` fills in the task's default, GaMPEN's 1000).
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
    if options.trained_rates:
        result["trained_rates"] = compare_trained_rates(model, data, options, thresholds)
    rate = result["tuning"]["best"] if options.tune_dropout else \
        (model.training_rate if model.dropout_rate is None else model.dropout_rate)  # a calibrated 0 is a rate
    split = sample_split(model, data, options.split, options.passes, options.seed, rate, options.batch_size,
                         progress, thresholds)
    result.update({"split": options.split, "dropout_rate": rate, **assess(split)})
    result["score"] = calibration_score(result)
    result["figures"] = calibration_figures(out, split, result) + [stn_figure(model, data, split, out).name]
    write_json_atomic(out / REPORT, nan_to_null(result))  # undefined precision or recall: null
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
    rows += [[f"R^2 of {name.replace('_', ' ')}", f"{value:.3f}"] for name, value in result["r_squared"].items()]
    rows += [[f"{name}: typical error where not flagged ({kept['galaxies']:,} galaxies)",
              f"{kept['typical_error']:.3f}" if name == "bulge_to_total" else f"{100 * kept['typical_error']:.1f}%"]
             for name, kept in result["after_flagging"].items()]
    rows += [[f"flag {name}: precision / recall ({value['predicted']:,} flagged, {value['true']:,} true)",
              f"{_percent(value['precision'])} / {_percent(value['recall'])}"]
             for name, value in result["flags"].items()]
    tables = [coverage]
    if "trained_rates" in result:
        compared = result["trained_rates"]
        tables.append(ReportTable(f"networks trained at different dropout rates, on the {compared['split']} split "
                                  "(GaMPEN's choice; lower score is better calibrated)",
                                  ["dropout rate", "score", *[f"mean coverage {v}" for v in levels], "model"],
                                  [[f"{e['dropout_rate']:g}", f"{e['score']:.4f}",
                                    *[f"{100 * e['coverage']['mean'][level_name(level)]:.1f}%" for level in LEVELS],
                                    e["model"] + (" (best)" if e["model"] == compared["best"] else "")]
                                   for e in sorted(compared["models"], key=lambda e: e["dropout_rate"])]))
    return [*tables, ReportTable("errors of the most probable value and flags (paper: 0.10, 7 %, 1 %; R^2 "
                                  "magnitude 0.998, R_e 0.980; L_B/L_T 0.076 after flagging)", ["", ""], rows)]


def _percent(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{100 * value:.1f}%"


def calibration_report(model: ParameterModel, data: Path, out: Path, request: CalibrateRequest, default_passes: int,
                       progress: Progress = None) -> CalibrationReport:
    """HDI coverage, typical errors and flags of a parameter model, beside GaMPEN's Table 2."""
    passes = request.passes or default_passes
    result = calibrate_parameters(model, data, out, replace(request, passes=passes), progress=progress)
    return CalibrationReport(result, report_tables(result, passes),
                             f"report: {out / 'calibration.json'}; figures: {', '.join(result['figures'])} in {out}")
