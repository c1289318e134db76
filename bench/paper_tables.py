"""Print the docs' tables of Walmsley et al. (2019) Tables 1-2 from calibration reports (bench/paper_tables.sh).

Usage: python bench/paper_tables.py data/paper-tables
For each question, the coverage error of single networks and of the MC posterior for each run (the paper's
linear 128-unit layer and galzoo's earlier ReLU), beside the paper's, then the point metrics and majority-answer
accuracy on all galaxies and on the most confident.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from galzoo_tf.tasks.votes.calibrate import PAPER_TABLES, key
from galzoo_tf.tasks.votes.coverage import PAPER_MAX_ERRORS

RUNS = ("linear", "relu")


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f} %"


def answer_report(question: str, report: dict) -> dict:
    """The coverage of the question's first answer alone (smooth/smooth: the paper's Table 1), else the report."""
    return report.get("by_answer", {}).get(f"{question}/{question}", report)


def coverage_table(question: str, reports: dict[str, dict]) -> list[str]:
    runs = [run for run in RUNS if run in reports]
    header = ["max error", *[f"{run} {kind}" for run in runs for kind in ("single", "MC")], "paper single",
              "paper MC"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for index, max_error in enumerate(PAPER_MAX_ERRORS):
        ours = [percent(answer_report(question, reports[run])["coverage_error"][kind][key(max_error)])
                for run in runs for kind in ("single", "mc")]
        paper = [percent(PAPER_TABLES[question][kind][index]) for kind in ("single", "mc")]
        lines.append(f"| {max_error:.2f} | " + " | ".join([*ours, *paper]) + " |")
    return lines


def metrics_table(question: str, reports: dict[str, dict]) -> list[str]:
    lines = ["| run | test galaxies | RMSE k_hat/N vs k/N | noise floor | RMSE mean rho vs true rho | majority "
             "accuracy, all / most confident | ROC AUC, all / most confident |", "|" + " --- |" * 7]
    for run, report in reports.items():
        majority = report["majority"][question]
        auc = [next(iter(majority[subset]["roc_auc"].values()), float("nan")) for subset in ("all", "most_confident")]
        rmse, galaxies = answer_report(question, report)["rmse"], answer_report(question, report)["galaxies"]
        lines.append(f"| {run} | {galaxies:,} | {rmse['fraction_vs_observed']:.3f} | "
                     f"{rmse['noise_floor']:.3f} | {rmse.get('rho_mean_vs_truth', float('nan')):.3f}"
                     f" | {majority['all']['accuracy']:.3f} / {majority['most_confident']['accuracy']:.3f} "
                     f"({majority['most_confident']['galaxies']}) | {auc[0]:.3f} / {auc[1]:.3f} |")
    return lines


def main(folder: Path) -> None:
    for question in ("smooth", "bar"):
        reports = {run: json.loads((folder / f"{question}-{run}-calibration" / "calibration.json").read_text())
                   for run in RUNS if (folder / f"{question}-{run}-calibration" / "calibration.json").is_file()}
        if not reports:
            continue
        print(f"\n{question}: coverage error (+ overconfident)\n")
        print("\n".join(coverage_table(question, reports)))
        print(f"\n{question}: point metrics\n")
        print("\n".join(metrics_table(question, reports)))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "data/paper-tables"))
