"""Real galaxies: how well a vote model's representation finds DECaLS rings (../shared/data/decals_rings).

    python bench/rings.py --model base --out data/bench/rings

470 real DECaLS images with a balanced expert ring label (Zoobot's fine-tuning tutorial set).
(a) Linear probe: logistic regression (its C chosen by inner cross-validation) on frozen
`galzoo embed` features, ROC AUC by stratified 5-fold cross-validation, beside PCA of the
pixels + logistic regression and the same network with random weights. (b) Fine-tuning:
the model fine-tuned on 300 labelled galaxies (255 train, 45 validation; N = 1 votes of a
one-question ring tree) against the same network trained from scratch on the same 300, ROC
AUC of the MC dropout mean probability on the other 170, with reliability curves. (c)
Similarity: the mean fraction of rings among each ring's 10 nearest neighbours (cosine). (d) Zero
shot: the model's own GZ2 heads, trained only on simulations, on the real images (ring AUC, and
Spearman correlations with the catalogue's featured, not-edge-on and spiral-arms fractions).
Writes rings.json and rings.png in --out; docs/representation.md shows them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "decals_rings"
LABELLED, VALIDATION, NEIGHBOURS, FOLDS = 300, 45, 10, 5

def catalogue(seed: int) -> pd.DataFrame:
    """The rings catalogue with a seeded split: 255 train, 45 val, 170 test, each balanced as the whole."""
    from sklearn.model_selection import train_test_split

    table = pd.read_csv(SHARED / "catalogue.csv")
    labelled, test = train_test_split(np.arange(len(table)), train_size=LABELLED, stratify=table["ring"],
                                      random_state=seed)
    train, val = train_test_split(labelled, test_size=VALIDATION, stratify=table["ring"].iloc[labelled],
                                  random_state=seed)
    split = np.empty(len(table), dtype=object)
    split[train], split[val], split[test] = "train", "val", "test"
    return table.assign(split=split)


def random_model(model_dir: Path, out: Path, seed: int) -> Path:
    """The model's architecture with fresh random weights, as a model directory `galzoo embed` reads."""
    import keras

    from galzoo_tf.models import rebuild_vote_model
    from galzoo_tf.tasks.registry import load_model
    from galzoo_tf.training.callbacks import save_model_atomic

    trained = load_model(model_dir)
    keras.utils.set_random_seed(seed)
    model = rebuild_vote_model(trained.model, trained.sidecar["config"])
    out.mkdir(parents=True, exist_ok=True)
    save_model_atomic(model, out / "model.keras")
    (out / "galzoo.json").write_text(json.dumps({**trained.sidecar, "posterior": {}}))
    return out


def embeddings(model_dir: Path, out: Path, views: int, seed: int) -> dict[str, np.ndarray]:
    from galzoo_tf.data.inputs import ImageInputs
    from galzoo_tf.representation.embed import EmbedOptions, embed_catalogue
    from galzoo_tf.representation.search import read_embeddings

    if not out.is_file():
        embed_catalogue(model_dir, ImageInputs(images=SHARED / "images"), out, EmbedOptions(views=views, seed=seed))
    read = read_embeddings(out)
    return dict(zip(read.ids, read.vectors, strict=True))


def pixels(ids: list[str], size: int = 64) -> np.ndarray:
    """Greyscale pixels at ``size`` px: the input of the PCA baseline."""
    from PIL import Image

    return np.stack([np.asarray(Image.open(SHARED / "images" / f"{i}.png").convert("L").resize((size, size)),
                                np.float32).ravel() / 255 for i in ids])


def probe_auc(features: np.ndarray, labels: np.ndarray, seed: int, pca: int | None = None) -> dict:
    """ROC AUC of logistic regression on ``features`` by stratified 5-fold cross-validation (mean, std)."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    steps = [StandardScaler(), *([PCA(pca, random_state=seed)] if pca else []),
             LogisticRegressionCV(Cs=10, cv=5, scoring="roc_auc", max_iter=5000)]
    scores = cross_val_score(make_pipeline(*steps), features, labels, scoring="roc_auc",
                             cv=StratifiedKFold(FOLDS, shuffle=True, random_state=seed))
    return {"auc": float(scores.mean()), "auc_std": float(scores.std()), "folds": scores.round(4).tolist()}


def ring_neighbour_fraction(features: np.ndarray, labels: np.ndarray) -> float:
    """Mean fraction of rings among the 10 nearest neighbours (cosine) of each ring, itself left out."""
    from galzoo_tf.representation.search import nearest_neighbours

    rings = np.flatnonzero(labels == 1)
    indices, _ = nearest_neighbours(features, features[rings], NEIGHBOURS + 1)
    return float(np.mean([labels[row[row != ring][:NEIGHBOURS]].mean() for ring, row in zip(rings, indices,
                                                                                          strict=True)]))


def ring_records(table: pd.DataFrame, out: Path, seed: int) -> Path:
    """Records of the one-question ring tree, N = 1 vote per galaxy (the expert label), with the split given."""
    from galzoo_tf.data.prepare import PrepareOptions, write_records
    from galzoo_tf.data.sources.folder import load_folder

    records = out / "records"
    if (records / "manifest.json").is_file():
        return records
    out.mkdir(parents=True, exist_ok=True)
    labels = pd.DataFrame({"id": table["iauname"], "file": table["iauname"] + ".png", "split": table["split"],
                           "ring": table["ring"]})
    labels.to_csv(out / "labels.csv", index=False)
    write_records(load_folder(SHARED / "images", out / "labels.csv", label_column="ring"), records,
                  PrepareOptions(seed=seed), workers=0)
    return records


def fine_tuned(records: Path, out: Path, name: str, seed: int, epochs: int, **config) -> dict:
    """Train (or fine-tune) on the 300, then the test AUC and reliability of the MC dropout mean probability."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import roc_auc_score

    from galzoo_tf.catalogues.predict import predict_catalogue
    from galzoo_tf.data.inputs import ImageInputs
    from galzoo_tf.tasks.requests import PredictRequest
    from galzoo_tf.training.loop import TrainConfig, train

    model_dir, started = out / name, time.perf_counter()
    if not (model_dir / "galzoo.json").is_file():
        shutil.rmtree(model_dir, ignore_errors=True)
        train(records, model_dir, TrainConfig(question="ring", epochs=epochs, batch_size=32, seed=seed,
                                              patience=10, **config), verbose=0)
    catalogue_path = out / f"{name}-test.parquet"
    if not catalogue_path.is_file():
        predict_catalogue([model_dir], ImageInputs(records=records, split="test"), catalogue_path,
                          PredictRequest(passes=30, seed=seed))
    predicted = pd.read_parquet(catalogue_path)
    labels = pd.read_csv(out / "labels.csv").set_index("id").loc[predicted["id"], "ring"].to_numpy()
    probability = predicted["ring_yes_rho_mean"].to_numpy()
    observed, expected = calibration_curve(labels, probability, n_bins=5, strategy="quantile")
    sidecar = json.loads((model_dir / "galzoo.json").read_text())
    return {"auc": float(roc_auc_score(labels, probability)), "test_galaxies": int(len(labels)),
            "epochs_run": len(sidecar["history"]["val_loss"]), "best_val_loss": sidecar["best_val_loss"],
            "reliability": {"predicted": expected.round(4).tolist(), "observed": observed.round(4).tolist()},
            "seconds": round(time.perf_counter() - started, 1)}


def zero_shot(model_dir: Path, out: Path, seed: int) -> dict:
    """The model's own GZ2 heads on the real images, never shown a real galaxy: ring ROC AUC from
    P(odd) x P(ring | odd), and Spearman correlations with the three volunteer fractions of the catalogue."""
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    from galzoo_tf.catalogues.predict import predict_catalogue
    from galzoo_tf.data.inputs import ImageInputs
    from galzoo_tf.tasks.requests import PredictRequest

    path = out / "zero-shot.parquet"
    if not path.is_file():
        predict_catalogue([model_dir], ImageInputs(images=SHARED / "images"), path,
                          PredictRequest(passes=30, seed=seed))
    predicted = pd.read_parquet(path).set_index("id")
    table = pd.read_csv(SHARED / "catalogue.csv").set_index("iauname")
    rho = predicted.loc[table.index]
    pairs = {"featured": ("smooth_features_rho_mean", table["smooth-or-featured_featured-or-disk_fraction"]),
             "not edge-on": ("edgeon_no_rho_mean", table["disk-edge-on_no_fraction"]),
             "spiral arms": ("spiral_spiral_rho_mean", 1 - table["has-spiral-arms_no_fraction"])}
    ring_score = rho["odd_yes_rho_mean"] * rho["odd_feature_ring_rho_mean"]
    return {"ring_auc": float(roc_auc_score(table["ring"], ring_score)),
            "spearman": {name: float(spearmanr(rho[column], fraction).statistic)
                         for name, (column, fraction) in pairs.items()}}


def figure(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (bars, curve) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    probes = result["linear_probe"]
    bars.barh(list(probes), [p["auc"] for p in probes.values()], xerr=[p["auc_std"] for p in probes.values()],
              color="tab:blue", label="linear probe (5-fold CV)")
    tuned = result["fine_tuning"]
    bars.barh([f"{k} (300 labels)" for k in tuned], [t["auc"] for t in tuned.values()], color="tab:orange",
              label="trained on 300, tested on 170")
    bars.axvline(0.5, color="grey", lw=0.8)
    bars.set_xlim(0.4, 1.0)
    bars.set_xlabel("ROC AUC, ring vs no ring")
    bars.legend(loc="lower right", fontsize=8)
    for name, tuned_result in tuned.items():
        rel = tuned_result["reliability"]
        curve.plot(rel["predicted"], rel["observed"], "o-", label=f"{name} (AUC {tuned_result['auc']:.3f})")
    curve.plot([0, 1], [0, 1], "k:", lw=0.8)
    curve.set_xlabel("MC dropout mean probability of a ring (quantile bins)")
    curve.set_ylabel("fraction that are rings")
    curve.legend(fontsize=8)
    figure.suptitle("real DECaLS rings: 470 galaxies, balanced")
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="base", help="A vote model directory or 'base'.")
    parser.add_argument("--out", type=Path, default=Path("data/bench/rings"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--views", type=int, default=1, help="Augmented views averaged per embedding.")
    parser.add_argument("--epochs", type=int, default=30, help="Epochs of fine-tuning and of training from scratch.")
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED}: the DECaLS rings are not here (they come with ../shared)")
    from galzoo_tf.training.model_dir import model_path

    out, model = args.out, model_path(args.model)
    out.mkdir(parents=True, exist_ok=True)
    table = catalogue(args.seed)
    ids, labels = list(table["iauname"]), table["ring"].to_numpy()
    random_dir = random_model(model, out / "random-weights", args.seed)
    features = {"base model embedding": embeddings(model, out / "emb-model.parquet", args.views, args.seed),
                "random-weights embedding": embeddings(random_dir, out / "emb-random.parquet", args.views, args.seed)}
    matrices = {name: np.stack([values[i] for i in ids]) for name, values in features.items()}
    result = {"model": str(model), "seed": args.seed, "views": args.views, "galaxies": len(ids),
              "rings": int(labels.sum()), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "command": f"python bench/rings.py --model {args.model} --seed {args.seed} --views {args.views} "
                         f"--epochs {args.epochs}",
              "linear_probe": {name: probe_auc(matrix, labels, args.seed) for name, matrix in matrices.items()}}
    result["linear_probe"]["PCA(50) of 64 px pixels"] = probe_auc(pixels(ids), labels, args.seed, pca=50)
    matrices["pixels"] = pixels(ids)
    result["ring_neighbour_fraction"] = {name: ring_neighbour_fraction(m, labels) for name, m in matrices.items()}
    result["zero_shot"] = zero_shot(model, out, args.seed)
    records = ring_records(table, out, args.seed)
    size = int(json.loads((model / "galzoo.json").read_text())["config"]["image_size"])
    result["fine_tuning"] = {
        "fine-tuned base": fine_tuned(records, out, "fine-tuned", args.seed, args.epochs, image_size=size,
                                      init_from=str(model)),
        "base, head only": fine_tuned(records, out, "head-only", args.seed, args.epochs, image_size=size,
                                      init_from=str(model), freeze=("trunk",)),
        "from scratch": fine_tuned(records, out, "scratch", args.seed, args.epochs, image_size=size)}
    (out / "rings.json").write_text(json.dumps(result, indent=1))
    figure(result, out / "rings.png")
    print(json.dumps({k: v for k, v in result.items() if k != "fine_tuning"}, indent=1))
    print(json.dumps({k: {"auc": v["auc"], "epochs_run": v["epochs_run"]} for k, v in result["fine_tuning"].items()},
                     indent=1))


if __name__ == "__main__":
    main()
