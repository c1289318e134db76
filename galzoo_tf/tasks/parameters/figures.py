"""Figures of parameter posteriors (GaMPEN Figs. 5, 8, 11, 13, 16, 18 and a corner plot), written atomically."""

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


def plot_residuals(path: Path, truth: np.ndarray, mode: np.ndarray) -> Path:
    """Residual (L_B/L_T) and fractional residuals (R_e, F) of the mode against truth (GaMPEN Figs. 13, 16)."""
    residual = mode - truth
    relative = residual / np.where(np.arange(3) == 0, 1.0, truth)
    with figure_grid(path, "residuals of the most probable value (fractional for R_e and F)", 1, 3,
                     (4.2, 4)) as axes:
        for p, (name, log) in enumerate(zip(PARAMETERS, LOG_SCALED, strict=True)):
            axis = axes[0, p]
            x = np.log10(truth[:, p]) if log else truth[:, p]
            axis.hexbin(x, relative[:, p], gridsize=30, bins="log", mincnt=1, cmap="viridis")
            axis.axhline(0, color="k", ls=":", lw=1)
            axis.set_xlabel(f"true {'log10 ' if log else ''}{LABELS[name]}")
            axis.set_ylabel("predicted - true" if p == 0 else "(predicted - true) / true")
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
    paths = [plot_coverage(out / "coverage.png", result["coverage"]),
             plot_predicted_vs_true(out / "predicted-vs-true.png", split.truth, summary.mode),
             plot_residuals(out / "residuals.png", split.truth, summary.mode),
             plot_uncertainty(out / "uncertainty.png", width, summary.mode - split.truth,
                              result["spearman_uncertainty_vs_residual"]),
             plot_corner(out / "corner.png", split.samples[0], split.truth[0], f"posterior of {split.ids[0]}")]
    return [p.name for p in paths]
