"""Calibration figures of Walmsley et al. (2019), Figs. 4-5 and 7-10, written atomically as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from galzoo_tf.plots import figure_grid as _figure


def _require_galaxies(count: int, what: str) -> None:
    """Refuse empty inputs up front: an empty calibration figure would silently hide a broken pipeline."""
    if count == 0:
        raise ValueError(f"cannot plot {what}: no galaxies given")


def plot_coverage(path: Path, max_errors: np.ndarray, expected: dict[str, np.ndarray], actual: np.ndarray,
                  title: str) -> Path:
    """Fig. 7: expected vs actual count of galaxies within each maximum vote-fraction error, to judge calibration."""
    _require_galaxies(len(max_errors), "coverage")
    with _figure(path, title) as axes:
        axis = axes[0, 0]
        for label, counts in expected.items():
            axis.plot(max_errors, counts, label=f"expected, {label}")
        axis.plot(max_errors, actual, "ko-", markersize=3, label="actual")
        axis.set(xlim=(0, 0.5), xlabel="max error in vote fraction", ylabel="galaxies within max error")
        axis.legend(fontsize=8)
    return path


def plot_count_posteriors(path: Path, mc: np.ndarray, single: np.ndarray, observed: np.ndarray,
                          total_votes: np.ndarray, labels: list[str], title: str) -> Path:
    """Figs. 4-5: per-galaxy p(k) from MC dropout and from a single network against the observed k."""
    galaxies = len(mc)
    _require_galaxies(galaxies, "count posteriors")
    columns = min(4, galaxies)
    with _figure(path, title, -(-galaxies // columns), columns, size=(3, 2.4)) as axes:
        for axis in axes.flat[galaxies:]:
            axis.axis("off")
        for i, axis in enumerate(axes.flat[:galaxies]):
            total = int(total_votes[i])
            k = np.arange(total + 1)
            axis.bar(k, mc[i, :total + 1], width=1.0, color="tab:green", alpha=0.5, label="MC dropout")
            axis.plot(k, single[i, :total + 1], "k-", linewidth=1, label="single network")
            axis.axvline(observed[i], color="tab:red", linestyle="--", label="observed")
            axis.set_title(f"{labels[i]} k={int(observed[i])} N={total}", fontsize=8)
            axis.set_xlabel("votes k", fontsize=8)
            axis.tick_params(labelsize=7)
        axes.flat[0].legend(fontsize=6)
    return path


def plot_distributions(path: Path, predicted_fraction: np.ndarray, observed_fraction: np.ndarray,
                       predicted_k: np.ndarray, observed_k: np.ndarray, title: str) -> Path:
    """Fig. 8: predicted vs observed distributions of vote fraction and k, to spot global bias."""
    _require_galaxies(len(observed_fraction), "distributions")
    highest = int(max(np.max(predicted_k), np.max(observed_k)))
    panels = [(predicted_fraction, observed_fraction, np.linspace(0, 1, 21), "vote fraction"),
              (predicted_k, observed_k, np.arange(highest + 2) - 0.5, "votes k")]
    with _figure(path, title, 1, 2, size=(5, 4)) as axes:
        for axis, (predicted, observed, bins, name) in zip(axes.flat, panels, strict=True):
            axis.hist(predicted, bins=bins, histtype="step", label="predicted")
            axis.hist(observed, bins=bins, histtype="step", color="k", label="observed")
            axis.set(xlabel=name, ylabel="galaxies")
            axis.legend(fontsize=8)
    return path


def _roc_answers(majority: np.ndarray, answers: list[str]) -> tuple[list[int], list[int]]:
    """Answers that get a one-vs-rest ROC curve (answer 0 only for yes/no questions), and those skipped as one-class."""
    candidates = [0] if len(answers) == 2 else list(range(len(answers)))
    drawable = [j for j in candidates if 0 < np.sum(majority == j) < len(majority)]
    return drawable, [j for j in candidates if j not in drawable]


def majority_auc(scores: np.ndarray, majority: np.ndarray, answers: list[str]) -> dict[str, float]:
    """One-vs-rest ROC AUC of each answer's predicted mean rho at finding the volunteer majority (Fig. 9 legend)."""
    from sklearn.metrics import roc_auc_score

    _require_galaxies(len(majority), "ROC")
    drawable, _ = _roc_answers(majority, answers)
    return {answers[j]: float(roc_auc_score(majority == j, scores[:, j])) for j in drawable}


def plot_roc(path: Path, scores: np.ndarray, majority: np.ndarray, answers: list[str], title: str) -> Path:
    """Fig. 9: ROC curves of the majority answer from predicted mean rho, AUC in the legend."""
    from sklearn.metrics import roc_curve

    aucs = majority_auc(scores, majority, answers)
    drawable, skipped = _roc_answers(majority, answers)
    note = f" (only one class present for {', '.join(answers[j] for j in skipped)})" if skipped else ""
    with _figure(path, title + note, size=(5, 5)) as axes:
        axis = axes[0, 0]
        for j in drawable:
            false_positive, true_positive, _ = roc_curve(majority == j, scores[:, j])
            axis.plot(false_positive, true_positive, label=f"{answers[j]} (AUC {aucs[answers[j]]:.3f})")
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":")
        axis.set(xlim=(0, 1), ylim=(0, 1), xlabel="false positive rate", ylabel="true positive rate")
        if drawable:
            axis.legend(fontsize=8, loc="lower right")
    return path


def plot_confusion(path: Path, predicted: np.ndarray, majority: np.ndarray, answers: list[str], title: str) -> Path:
    """Fig. 10: confusion matrix of volunteer majority (rows) against predicted answer (columns), counts in cells."""
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

    _require_galaxies(len(majority), "confusion matrix")
    matrix = confusion_matrix(majority, predicted, labels=list(range(len(answers))))
    with _figure(path, title, size=(4.5, 4)) as axes:
        axis = axes[0, 0]
        ConfusionMatrixDisplay(matrix, display_labels=answers).plot(ax=axis, colorbar=False, values_format="d")
        axis.set(xlabel="predicted", ylabel="volunteer majority")
    return path
