"""Expert-label rescaling (Walmsley et al. 2019, Appendix A): from predicted vote fractions to an expert's probability.

A volunteer vote fraction is not the probability that an expert would say yes: a weak bar
draws a third of the votes and an expert still calls it barred. A logistic regression
(scikit-learn) from the predicted vote fraction of one answer (its mean rho) to an expert's
binary label is fitted on a random part of the expert-labelled galaxies and judged on the
rest: calibration curve (5 bins), predicted against actual number of positives with its
Poisson error, ROC. The mapping is stored in the model's galzoo.json, and `galzoo predict`
then adds the column ``expert_<COLUMN>_probability``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from galzoo_tf.errors import BadInputError
from galzoo_tf.plots import figure_grid

TRUE_VALUES, FALSE_VALUES = {"1", "true", "yes", "y", "t"}, {"0", "false", "no", "n", "f"}
CALIBRATION_BINS = 5


def read_expert_labels(path: Path, column: str) -> pd.Series:
    """An id -> 0/1 series from a CSV with an ``id`` column and the expert's column (1/0, true/false, yes/no)."""
    if not Path(path).is_file():
        raise BadInputError("missing file", f"{path}: no such expert-label file")
    table = pd.read_csv(path, dtype=str)
    for needed in ("id", column):
        if needed not in table.columns:
            raise BadInputError("missing column", f"{path}: no {needed!r} column (columns: "
                                                  f"{', '.join(table.columns[:8])})")
    values = table[column].str.strip().str.lower()
    bad = ~values.isin(TRUE_VALUES | FALSE_VALUES)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise BadInputError("bad label", f"{path}, row {row + 2}: {column} = {table[column].iloc[row]!r} is not a "
                                         "binary label (1/0, true/false, yes/no)")
    if table["id"].duplicated().any():
        raise BadInputError("duplicate id", f"{path}: id {table['id'][table['id'].duplicated()].iloc[0]!r} repeats")
    return pd.Series(values.isin(TRUE_VALUES).astype(int).to_numpy(), index=table["id"].to_numpy(), name=column)


@dataclass(frozen=True)
class ExpertMapping:
    """p(expert says yes) = sigmoid(intercept + coefficient x predicted vote fraction of question/answer)."""

    column: str
    question: str
    answer: str
    coefficient: float
    intercept: float

    def probability(self, fraction: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(self.intercept + self.coefficient * np.asarray(fraction, np.float64))))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict) -> ExpertMapping:
        return cls(**raw)


def _totals(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """Expected positives (sum of probabilities) against the actual count and its Poisson error."""
    actual = int(labels.sum())
    expected = float(probabilities.sum())
    error = float(np.sqrt(max(actual, 1)))
    return {"expected": expected, "actual": actual, "poisson_error": error,
            "within_poisson_error": bool(abs(expected - actual) <= error)}


def fit_expert(fraction: np.ndarray, labels: np.ndarray, column: str, question: str, answer: str, seed: int = 0,
               train_fraction: float = 0.5) -> tuple[ExpertMapping, dict]:
    """Fit the mapping on a random ``train_fraction`` of galaxies; judge it, and the raw fractions, on the rest."""
    from sklearn.calibration import calibration_curve
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score, roc_curve
    from sklearn.model_selection import train_test_split

    fraction, labels = np.asarray(fraction, np.float64), np.asarray(labels, int)
    if len(labels) < 20 or labels.min() == labels.max():
        raise BadInputError("too few labels", f"expert rescaling needs at least 20 labelled galaxies of both "
                                              f"classes; got {len(labels)} with {int(labels.sum())} positive")
    train, held = train_test_split(np.arange(len(labels)), train_size=train_fraction, random_state=seed,
                                   stratify=labels)
    fit = LogisticRegression(C=np.inf).fit(fraction[train, None], labels[train])  # one feature: no shrinkage
    mapping = ExpertMapping(column, question, answer, float(fit.coef_[0, 0]), float(fit.intercept_[0]))
    rescaled, raw, truth = mapping.probability(fraction[held]), fraction[held], labels[held]
    curves = {}
    for name, values in (("rescaled", rescaled), ("raw_fraction", raw)):
        observed, predicted = calibration_curve(truth, values, n_bins=CALIBRATION_BINS)
        curves[name] = {"predicted": predicted.tolist(), "observed": observed.tolist()}
    false_positive, true_positive, _ = roc_curve(truth, raw)
    report = {"column": column, "question": question, "answer": answer, "train": int(len(train)),
              "held_out": int(len(held)), "coefficient": mapping.coefficient, "intercept": mapping.intercept,
              "positives": {"rescaled": _totals(rescaled, truth), "raw_fraction": _totals(raw, truth)},
              "calibration_curve": curves, "roc_auc": float(roc_auc_score(truth, raw)),
              "roc": {"false_positive_rate": false_positive.tolist(), "true_positive_rate": true_positive.tolist()}}
    return mapping, report


def plot_expert(path: Path, report: dict, title: str) -> Path:
    """Calibration curves (rescaled vs raw), expected vs actual positives, ROC."""
    with figure_grid(path, title, columns=3, size=(4, 3.6)) as grid:
        curve, totals, roc = grid[0]
        curve.plot([0, 1], [0, 1], color="grey", linestyle=":")
        for name, colour in (("rescaled", "tab:blue"), ("raw_fraction", "tab:orange")):
            points = report["calibration_curve"][name]
            curve.plot(points["predicted"], points["observed"], "o-", color=colour, label=name.replace("_", " "))
        curve.set_xlabel("predicted probability")
        curve.set_ylabel("fraction the expert calls yes")
        curve.legend()
        positives = report["positives"]
        totals.bar(["rescaled", "raw fraction"], [positives["rescaled"]["expected"],
                                                  positives["raw_fraction"]["expected"]], color="tab:blue")
        actual = positives["rescaled"]["actual"]
        totals.axhspan(actual - positives["rescaled"]["poisson_error"],
                       actual + positives["rescaled"]["poisson_error"], color="tab:green", alpha=0.3,
                       label=f"actual {actual} +- Poisson")
        totals.set_ylabel("expected positives (held-out)")
        totals.legend()
        roc.plot(report["roc"]["false_positive_rate"], report["roc"]["true_positive_rate"], color="tab:blue")
        roc.plot([0, 1], [0, 1], color="grey", linestyle=":")
        roc.set_xlabel("false positive rate")
        roc.set_ylabel("true positive rate")
        roc.set_title(f"AUC {report['roc_auc']:.3f}", fontsize=9)
    return path
