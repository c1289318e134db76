"""Print docs/kaggle.md's tables from the calibration reports bench/kaggle.sh writes (no TensorFlow): the RMSE of
each model with the noise floor of the simulated release (the RMSE a model knowing every galaxy's true answer
probabilities would score), what the pseudo-count N changes, and the mean-label RMSE of the real GZ2 Stripe 82
counts in ../shared converted to the Kaggle columns.

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


def read_reports(root: Path, names) -> dict[str, dict]:
    return {name: json.loads((root / name / "calibration.json").read_text())
            for name in names if (root / name / "calibration.json").is_file()}


def table(root: Path, n: int, seed: int) -> list[str]:
    reports = read_reports(root, RUNS)
    if not reports:
        sys.exit(f"no calibration reports in {root}: run bench/kaggle.sh {root} first")
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


def votes_table(root: Path) -> list[str]:
    """The paper CNN's RMSE and MC coverage error at 0.05 for each pseudo-count N."""
    runs = {10: "paper-votes10-calibration", 40: "paper-calibration", 100: "paper-votes100-calibration"}
    reports = read_reports(root, runs.values())
    lines = ["", "| --votes N | 37-answer RMSE | MC coverage error at 0.05 |", "| --- | --- | --- |"]
    return lines + [f"| {votes} | {reports[name]['kaggle_rmse']:.4f} | "
                    f"{100 * reports[name]['coverage_error']['mc']['0.05']:+.1f} % |"
                    for votes, name in runs.items() if name in reports]


def stripe82_mean_label(seed: int = 0) -> str:
    """The mean-label RMSE of the real Stripe 82 counts as Kaggle columns: one random half's column means scored on
    the other half."""
    import numpy as np
    import pandas as pd

    from galzoo_tf.kaggle import KAGGLE_TREE, as_columns, from_counts, rmse
    from galzoo_tf.schema import load_schema

    path = Path(__file__).parents[1] / ".." / "shared" / "data" / "gz2_stripe82_counts" / "table5.csv.gz"
    if not path.is_file():
        return "(the real Stripe 82 counts are not in ../shared)"
    schema, raw = load_schema(KAGGLE_TREE), pd.read_csv(path)
    counts = {q.name: raw[[schema.count_column(a) for a in q.answers]].to_numpy() for q in schema.questions}
    columns = as_columns(schema, from_counts(schema, counts))
    order = np.random.default_rng(seed).permutation(len(columns))
    first, second = columns[order[:len(order) // 2]], columns[order[len(order) // 2:]]
    score = rmse(np.broadcast_to(first.mean(axis=0), second.shape), second)
    median = np.median(raw["total_classifications"])
    return (f"real GZ2 Stripe 82 counts ({len(columns):,} galaxies, median N {median:g}) as Kaggle columns: mean-label "
            f"RMSE {score:.4f}")


if __name__ == "__main__":
    arguments = sys.argv[1:]
    folder = Path(arguments[0] if arguments else "data/kaggle-bench")
    print("\n".join(table(folder, *(map(int, arguments[1:3]) if len(arguments) >= 3 else (6000, 22)))))
    print("\n".join(votes_table(folder)))
    print("\n" + stripe82_mean_label())
