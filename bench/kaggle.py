"""Print docs/kaggle.md's RMSE table from the calibration reports bench/kaggle.sh writes (no TensorFlow).

    python bench/kaggle.py data/kaggle-bench
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


def table(root: Path) -> list[str]:
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
    lines += [f"| published: {name} | real GZ2 images | {value:.4f} |" for name, value in kaggle["published"].items()]
    return lines


if __name__ == "__main__":
    print("\n".join(table(Path(sys.argv[1] if len(sys.argv) > 1 else "data/kaggle-bench"))))
