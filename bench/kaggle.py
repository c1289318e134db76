"""Print docs/kaggle.md's RMSE table from the calibration reports bench/kaggle.sh writes (no TensorFlow), with the
noise floor of the simulated release: the RMSE a model knowing every galaxy's true answer probabilities would score.

    python bench/kaggle.py data/kaggle-bench [N SEED]   # N, SEED: the simulated release's (default 6000 22)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RUNS = {  # report folder -> (what, the model directory whose galzoo.json tells how it was trained)
    "base-calibration": ("shipped base model as it is (no Kaggle label seen)", None),
    "fine-tuned-calibration": ("base model fine-tuned", "fine-tuned"),
    "paper-calibration": ("paper CNN from random weights", "paper"),
    "resnet50-calibration": ("ResNet50 from random weights", "resnet50"),
}


def training(folder: Path) -> str:
    """Epochs run by a trained model, as its galzoo.json records them."""
    sidecar = json.loads((folder / "galzoo.json").read_text())
    return f"{len(sidecar['history']['loss'])} epochs"


def noise_floor(root: Path, n: int, seed: int) -> float:
    """RMSE over all galaxies of the release's 37 columns against the same columns made from the true rho (the
    simulation redrawn with the release's n and seed): what the finite number of volunteers alone costs."""
    import pandas as pd

    from galzoo_tf.data.sources.synthetic import load_synthetic
    from galzoo_tf.kaggle import as_columns, kaggle_columns, rmse, weighted_fractions

    catalogue = load_synthetic(n, seed=seed)
    schema, galaxies = catalogue.schema, catalogue.table
    rho = {q.name: galaxies[[f"truth/rho/{a.key}" for a in q.answers]].to_numpy() for q in schema.questions}
    observed = pd.read_csv(root / "project" / "training_solutions_rev1.csv")[kaggle_columns(schema)].to_numpy()
    return rmse(as_columns(schema, weighted_fractions(schema, rho)), observed)


def table(root: Path, n: int, seed: int) -> list[str]:
    reports = {name: json.loads((root / name / "calibration.json").read_text())
               for name in RUNS if (root / name / "calibration.json").is_file()}
    first = next(iter(reports.values()))
    kaggle = first["kaggle"]
    lines = [f"{kaggle['galaxies']:,} test galaxies", "", "| model | training | 37-answer RMSE |",
             "| --- | --- | --- |"]
    for name, report in reports.items():
        what, model = RUNS[name]
        lines.append(f"| {what} | {training(root / model) if model else 'none'} | {report['kaggle_rmse']:.4f} |")
    lines.append(f"| mean-label baseline (training-split mean) | none | {kaggle['mean_label_baseline']:.4f} |")
    lines.append(f"| noise floor: the true rho of every galaxy (all {n:,}) | none | {noise_floor(root, n, seed):.4f} |")
    lines += [f"| published: {name} | real GZ2 images | {value:.4f} |" for name, value in kaggle["published"].items()]
    return lines


if __name__ == "__main__":
    arguments = sys.argv[1:]
    print("\n".join(table(Path(arguments[0] if arguments else "data/kaggle-bench"),
                           *(map(int, arguments[1:3]) if len(arguments) >= 3 else (6000, 22)))))
