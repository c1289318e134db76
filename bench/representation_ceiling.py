"""How much of one question a frozen trunk holds: test RMSE against the true rho from its features, by labels.

A campaign on a representation cannot beat what its features allow, whatever it acquires. This fits a ridge
regression of the observed vote fraction k/N on random subsets of the pool (and on all of it) and scores the RMSE
against the true rho of the test split, for two layers of the trunk: the dense features campaigns use (the input
of the MC dropout layer) and the convolutional features before that dense layer.

    python bench/representation_ceiling.py --trunk data/campaign/trunk-without-bar --data data/campaign/pool \
        --question bar --min-votes 10
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from sklearn.linear_model import RidgeCV
from sklearn.preprocessing import StandardScaler

from galzoo_tf.data.augment import augment
from galzoo_tf.data.inputs import RecordSource
from galzoo_tf.data.records import read_manifest
from galzoo_tf.schema import schema_of
from galzoo_tf.tasks.registry import load_model
from galzoo_tf.tasks.votes.heads import heads_for
from galzoo_tf.tasks.votes.posterior import DROPOUT_LAYER
from galzoo_tf.tasks.votes.targets import vote_table

BUDGETS = (256, 1024, 4096)
ALPHAS = np.logspace(-1, 5, 13)


def layer_models(trunk: keras.Model) -> dict[str, keras.Model]:
    """The dense features (MC dropout's input) and the features that dense layer reads."""
    dense_features = trunk.get_layer(DROPOUT_LAYER).input
    dense_layer = dense_features._keras_history.operation
    return {"dense (campaigns)": keras.Model(trunk.inputs, dense_features),
            "before the dense layer": keras.Model(trunk.inputs, dense_layer.input)}


def embed(models: dict[str, keras.Model], config, data: Path, split: str) -> dict[str, np.ndarray]:
    """Every record of a split through each layer model, un-augmented, in record order."""
    rows: dict[str, list[np.ndarray]] = {name: [] for name in models}
    for batch in RecordSource(data, split).batches(256):
        images = tf.map_fn(lambda image: augment(image, tf.zeros([2], tf.int64), config),
                           tf.constant(batch.images), fn_output_signature=tf.float32)
        for name, model in models.items():
            rows[name].append(keras.ops.convert_to_numpy(model(images, training=False)).reshape(len(images), -1))
    return {name: np.concatenate(parts).astype(np.float32) for name, parts in rows.items()}


def ridge_rmse(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_truth: np.ndarray) -> float:
    scaler = StandardScaler().fit(train_x)
    fit = RidgeCV(alphas=ALPHAS).fit(scaler.transform(train_x), train_y)
    predicted = np.clip(fit.predict(scaler.transform(test_x)), 0, 1)
    return float(np.sqrt(np.mean((predicted - test_truth) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trunk", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--question", default="bar")
    parser.add_argument("--min-votes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("data/bench/representation_ceiling.json"))
    args = parser.parse_args()
    start = time.perf_counter()
    model = load_model(args.trunk, "votes")
    head = heads_for(schema_of(read_manifest(args.data)), [args.question])[0]
    models = layer_models(model.model)
    tables = {split: vote_table(args.data, split, [head], args.min_votes) for split in ("train", "test")}
    features = {split: embed(models, model.augmentation.deterministic(), args.data, split) for split in tables}
    pool, test = tables["train"], tables["test"]
    labels = pool.observed_fraction
    rng = np.random.default_rng(args.seed)
    report = {"trunk": str(args.trunk), "data": str(args.data), "question": args.question,
              "min_votes": args.min_votes, "pool": len(pool.ids), "test": len(test.ids), "seed": args.seed,
              "constant_rmse": float(np.sqrt(np.mean((labels.mean() - test.truth) ** 2))), "layers": {}}
    budgets = [b for b in BUDGETS if b < len(pool.ids)] + [len(pool.ids)]
    for name in models:
        train_x, test_x = features["train"][name][pool.indices], features["test"][name][test.indices]
        curve = {}
        for budget in budgets:
            chosen = rng.choice(len(pool.ids), budget, replace=False)
            curve[str(budget)] = ridge_rmse(train_x[chosen], labels[chosen], test_x, test.truth)
        report["layers"][name] = {"width": int(train_x.shape[1]),
                                  "dead": int((train_x.std(axis=0) == 0).sum()), "ridge_rmse_by_labels": curve}
    report["seconds"] = round(time.perf_counter() - start, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print("| layer | width | dead | " + " | ".join(f"{b} labels" for b in budgets) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in budgets) + " |")
    for name, layer in report["layers"].items():
        print(f"| {name} | {layer['width']} | {layer['dead']} | " +
              " | ".join(f"{v:.4f}" for v in layer["ridge_rmse_by_labels"].values()) + " |")
    print(f"constant (pool mean k/N): {report['constant_rmse']:.4f}; {report['seconds']} s; {args.out}")


if __name__ == "__main__":
    main()
