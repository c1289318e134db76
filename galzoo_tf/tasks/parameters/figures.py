"""Figures of parameter posteriors (GaMPEN Figs. 5, 8, 11-19 and a corner plot), written atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from galzoo_tf.plots import figure_grid, montage, save_figure
from galzoo_tf.tasks.parameters.posterior import LEVELS, level_name
from galzoo_tf.tasks.parameters.targets import LABELS, PARAMETERS

LOG_SCALED = (False, True, True)  # R_e and F span decades: log axes


def plot_coverage(path: Path, coverage: dict) -> Path:
    """Coverage of the HDIs per parameter and on average against the ideal (GaMPEN Fig. 8, Table 2)."""
    names = [*PARAMETERS, "mean"]
    with figure_grid(path, "coverage of highest-density intervals (ideal: the dashed levels)") as axes:
        axis = axes[0, 0]
        positions = np.arange(len(LEVELS))
        for offset, name in enumerate(names):
            values = [100 * coverage[name][level_name(level)] for level in LEVELS]
            axis.bar(positions + (offset - 1.5) * 0.2, values, 0.2, label=LABELS.get(name, name))
        for position, level in zip(positions, LEVELS, strict=True):
            axis.hlines(100 * level, position - 0.45, position + 0.45, colors="k", linestyles="--")
        axis.set_xticks(positions, [f"{100 * level:.2f}%" for level in LEVELS])
        axis.set_ylim(50, 102)
        axis.set_ylabel("coverage [%]")
        axis.legend(fontsize=8)
    return path


def plot_predicted_vs_true(path: Path, truth: np.ndarray, mode: np.ndarray) -> Path:
    """Mode against truth in hexagonal bins, log colour scale (GaMPEN Fig. 11)."""
    with figure_grid(path, "most probable value vs truth", 1, 3, (4.2, 4)) as axes:
        for p, (name, log) in enumerate(zip(PARAMETERS, LOG_SCALED, strict=True)):
            axis = axes[0, p]
            x, y = (np.log10(truth[:, p]), np.log10(mode[:, p])) if log else (truth[:, p], mode[:, p])
            axis.hexbin(x, y, gridsize=30, bins="log", mincnt=1, cmap="viridis")
            low, high = min(x.min(), y.min()), max(x.max(), y.max())
            axis.plot([low, high], [low, high], "k--", lw=1)
            label = f"log10 {LABELS[name]}" if log else LABELS[name]
            axis.set_xlabel(f"true {label}")
            axis.set_ylabel(f"predicted {label}")
    return path


def fractional_residuals(truth: np.ndarray, mode: np.ndarray) -> np.ndarray:
    """mode - truth for L_B/L_T, (mode - truth) / truth for R_e and F (GaMPEN Fig. 16's dimensionless form)."""
    return (mode - truth) / np.where(np.arange(3) == 0, 1.0, truth)


def _residual_label(p: int) -> str:
    return "predicted - true" if p == 0 else "(predicted - true) / true"


def plot_residuals(path: Path, truth: np.ndarray, mode: np.ndarray, against: str = "true") -> Path:
    """Residuals of the mode (fractional for R_e and F) against the true (GaMPEN Figs. 13, 16) or the predicted
    values (Fig. 14, where flags are chosen)."""
    relative = fractional_residuals(truth, mode)
    shown = truth if against == "true" else mode
    with figure_grid(path, f"residuals of the most probable value against the {against} value", 1, 3,
                     (4.2, 4)) as axes:
        for p, (name, log) in enumerate(zip(PARAMETERS, LOG_SCALED, strict=True)):
            axis = axes[0, p]
            x = np.log10(shown[:, p]) if log else shown[:, p]
            axis.hexbin(x, relative[:, p], gridsize=30, bins="log", mincnt=1, cmap="viridis")
            axis.axhline(0, color="k", ls=":", lw=1)
            axis.set_xlabel(f"{against} {'log10 ' if log else ''}{LABELS[name]}")
            axis.set_ylabel(_residual_label(p))
    return path


def _histogram(axis, values: np.ndarray, label: str | None = None, **style) -> None:
    """A step histogram with its mean, median and spread in the label."""
    stats = f"mu {values.mean():+.3f}, median {np.median(values):+.3f}, sigma {values.std():.3f}"
    axis.hist(values, bins=60, histtype="step", label=f"{label}: {stats}" if label else stats, **style)


def plot_residual_histograms(path: Path, truth: np.ndarray, mode: np.ndarray) -> Path:
    """Histograms of the residuals with their mean, median and standard deviation (GaMPEN Fig. 12)."""
    relative = fractional_residuals(truth, mode)
    with figure_grid(path, "residuals of the most probable value", 1, 3, (4.2, 3.6)) as axes:
        for p, name in enumerate(PARAMETERS):
            axis = axes[0, p]
            _histogram(axis, np.clip(relative[:, p], -1, 1), LABELS[name])
            axis.axvline(0, color="k", ls="--", lw=1)
            axis.set(xlabel=_residual_label(p), ylabel="galaxies", yscale="log")
            axis.legend(fontsize=6)
    return path


def plot_bulge_residuals_by_components(path: Path, truth: np.ndarray, mode: np.ndarray, single: np.ndarray,
                                       thresholds: tuple[float, float]) -> Path:
    """L_B/L_T residual histograms of single-component galaxies, of all two-component galaxies and of those with
    intermediate L_B/L_T (GaMPEN Fig. 15)."""
    residual = mode[:, 0] - truth[:, 0]
    middle = ~single & (truth[:, 0] > thresholds[0]) & (truth[:, 0] < thresholds[1])
    with figure_grid(path, "L_B/L_T residuals by number of components", size=(6, 4)) as axes:
        axis = axes[0, 0]
        for label, chosen in (("single component", single), ("bulge + disk", ~single),
                              (f"bulge + disk, {thresholds[0]:g} < L_B/L_T < {thresholds[1]:g}", middle)):
            if chosen.any():
                _histogram(axis, residual[chosen], f"{label} ({chosen.sum()})")
        axis.axvline(0, color="k", ls="--", lw=1)
        axis.set(xlabel="predicted - true L_B/L_T", ylabel="galaxies", yscale="log")
        axis.legend(fontsize=6)
    return path


def plot_uncertainty_vs_truth(path: Path, truth: np.ndarray, width: np.ndarray) -> Path:
    """Width of the 68.27 % HDI (fractional for R_e and F) against each true value (GaMPEN Fig. 17)."""
    relative = width / np.where(np.arange(3) == 0, 1.0, truth)
    with figure_grid(path, "predicted uncertainty against the true values", 1, 3, (4.2, 4)) as axes:
        for p, (name, log) in enumerate(zip(PARAMETERS, LOG_SCALED, strict=True)):
            axis = axes[0, p]
            x = np.log10(truth[:, p]) if log else truth[:, p]
            axis.hexbin(x, relative[:, p], gridsize=30, bins="log", mincnt=1, cmap="viridis")
            axis.set_xlabel(f"true {'log10 ' if log else ''}{LABELS[name]}")
            axis.set_ylabel("68.27% HDI width" + ("" if p == 0 else " / true"))
    return path


def plot_flagging(path: Path, truth: np.ndarray, mode: np.ndarray, flagged: dict[str, np.ndarray],
                  thresholds: tuple[float, float, float]) -> Path:
    """Residuals against the predicted L_B/L_T and R_e with the flagged ranges shaded, and their histograms before
    and after the flagged galaxies get labels instead of numbers (GaMPEN Fig. 19)."""
    relative = fractional_residuals(truth, mode)
    bulge_flagged = flagged["highly_disk_dominated"] | flagged["highly_bulge_dominated"]
    rows = ((0, bulge_flagged, [(0, thresholds[0]), (thresholds[1], 1)], False),
            (1, flagged["small"], [(None, np.log10(thresholds[2]))], True))
    with figure_grid(path, "residuals before and after flagging", 2, 2, (5, 3.6)) as axes:
        for row, (p, chosen, shaded, log) in enumerate(rows):
            x = np.log10(mode[:, p]) if log else mode[:, p]
            axes[row, 0].hexbin(x, relative[:, p], gridsize=30, bins="log", mincnt=1, cmap="viridis")
            for low, high in shaded:
                axes[row, 0].axvspan(x.min() if low is None else low, high, color="grey", alpha=0.25)
            axes[row, 0].set(xlabel=f"predicted {'log10 ' if log else ''}{LABELS[PARAMETERS[p]]}",
                             ylabel=_residual_label(p))
            _histogram(axes[row, 1], np.clip(relative[:, p], -1, 1), "all", color="grey")
            if (~chosen).any():
                _histogram(axes[row, 1], np.clip(relative[~chosen, p], -1, 1), "not flagged", color="C0")
            axes[row, 1].set(xlabel=_residual_label(p), ylabel="galaxies", yscale="log")
            axes[row, 1].legend(fontsize=6)
    return path


def plot_coverage_vs_dropout(path: Path, rates: Sequence[float], coverage: Sequence[dict], title: str) -> Path:
    """Coverage of each level against the dropout rate, per parameter and on average (GaMPEN Fig. 8)."""
    order = np.argsort(rates)
    x = np.asarray(rates, float)[order]
    names = [*PARAMETERS, "mean"]
    with figure_grid(path, title, 1, len(names), (3.6, 3.4)) as axes:
        for column, name in enumerate(names):
            axis = axes[0, column]
            for level in LEVELS:
                values = [100 * coverage[i][name][level_name(level)] for i in order]
                line, = axis.plot(x, values, "o-", label=f"{100 * level:.2f}%")
                axis.axhline(100 * level, color=line.get_color(), ls="--", lw=1)
            axis.set(xlabel="dropout rate", ylabel="coverage [%]", title=LABELS.get(name, name))
            axis.set_xscale("symlog", linthresh=max(1e-4, float(x[x > 0].min()) if (x > 0).any() else 1e-4))
        axes[0, 0].legend(fontsize=7)
    return path


def plot_uncertainty(path: Path, width: np.ndarray, residual: np.ndarray, spearman: dict) -> Path:
    """68 % HDI width against |residual|, with Spearman's rank correlation (GaMPEN Fig. 18)."""
    with figure_grid(path, "predicted uncertainty vs error", 1, 3, (4.2, 4)) as axes:
        for p, name in enumerate(PARAMETERS):
            axis = axes[0, p]
            axis.hexbin(np.abs(residual[:, p]), width[:, p], gridsize=30, bins="log", mincnt=1, xscale="log",
                        yscale="log", cmap="viridis")
            axis.set_xlabel(f"|residual| of {LABELS[name]}")
            axis.set_ylabel("68.27% HDI width")
            axis.set_title(f"Spearman rho = {spearman[name]:.2f}", fontsize=9)
    return path


def plot_corner(path: Path, samples: np.ndarray, truth: np.ndarray | None, title: str) -> Path:
    """Joint posterior of one galaxy (samples (T, 3)), log10 for R_e and F, the truth marked when known."""
    import corner
    import matplotlib

    matplotlib.use("Agg")
    shown = np.column_stack([np.log10(samples[:, p]) if log else samples[:, p]
                             for p, log in enumerate(LOG_SCALED)])
    marks = None if truth is None else [np.log10(v) if log else v for v, log in zip(truth, LOG_SCALED, strict=True)]
    labels = [f"log10 {LABELS[n]}" if log else LABELS[n] for n, log in zip(PARAMETERS, LOG_SCALED, strict=True)]
    figure = corner.corner(shown, labels=labels, truths=marks, quantiles=[0.16, 0.5, 0.84], show_titles=True,
                           title_fmt=".3f")
    figure.suptitle(title, fontsize=9)
    return save_figure(figure, path)


def plot_crops(path: Path, images: np.ndarray, crops: np.ndarray, scales: np.ndarray, sizes: Sequence[float]) -> Path:
    """Input views and the STN's crops side by side, with s and the true R_e (GaMPEN Figs. 4-5)."""
    pairs, captions = [], []
    for image, crop, scale, size in zip(images, crops, scales, sizes, strict=True):
        pairs += [image, crop]
        captions += [f"input, R_e {size:.2f}\"", f"STN crop, s = {scale:.2f}"]
    return montage(pairs, captions, path, columns=4,
                   title="spatial transformer: the most cropped galaxies (top rows) and the least (bottom rows)")


def calibration_figures(out: Path, split, result: dict) -> list[str]:
    """Every figure of a parameter calibration report; returns their file names."""
    summary = split.summary
    width = summary.intervals[LEVELS[0]][1] - summary.intervals[LEVELS[0]][0]
    thresholds = result["options"]["thresholds"]
    bounds = (thresholds["disk_dominated"], thresholds["bulge_dominated"])
    paths = [plot_coverage(out / "coverage.png", result["coverage"]),
             plot_predicted_vs_true(out / "predicted-vs-true.png", split.truth, summary.mode),
             plot_residual_histograms(out / "residual-histograms.png", split.truth, summary.mode),
             plot_residuals(out / "residuals.png", split.truth, summary.mode),
             plot_residuals(out / "residuals-vs-predicted.png", split.truth, summary.mode, "predicted"),
             plot_bulge_residuals_by_components(out / "bulge-residuals-by-components.png", split.truth,
                                                summary.mode, split.single_component, bounds),
             plot_uncertainty_vs_truth(out / "uncertainty-vs-true.png", split.truth, width),
             plot_uncertainty(out / "uncertainty.png", width, summary.mode - split.truth,
                              result["spearman_uncertainty_vs_residual"]),
             plot_flagging(out / "flagging.png", split.truth, summary.mode, split.flagged,
                           (*bounds, thresholds["small_arcsec"])),
             plot_corner(out / "corner.png", split.samples[0], split.truth[0], f"posterior of {split.ids[0]}")]
    if "tuning" in result:
        tuning = result["tuning"]
        paths.append(plot_coverage_vs_dropout(out / "coverage-vs-dropout.png", [float(r) for r in tuning["coverage"]],
                                              list(tuning["coverage"].values()),
                                              f"HDI coverage against the dropout rate ({tuning['split']} split)"))
    if "trained_rates" in result:
        compared = result["trained_rates"]["models"]
        paths.append(plot_coverage_vs_dropout(out / "coverage-vs-trained-dropout.png",
                                              [e["dropout_rate"] for e in compared], [e["coverage"] for e in compared],
                                              "HDI coverage of networks trained at each dropout rate "
                                              f"({result['trained_rates']['split']} split)"))
    return [p.name for p in paths]
