"""The shipped base model: a finished pretraining run copied into the package, in float32, with its recipe.

``make base-model`` prepares the pretraining universe, trains on every question (resumable)
and then runs ``python -m galzoo_tf.training.base_model RUN COMMAND``, which writes
``galzoo_tf/weights/base/model.keras`` (weights only, float32 whatever precision trained
them, so it runs on any CPU or GPU) and a ``galzoo.json`` that says how it was made.
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras

from galzoo_tf import __version__
from galzoo_tf.fileio import write_json_atomic
from galzoo_tf.models import rebuild_vote_model
from galzoo_tf.training.callbacks import save_model_atomic
from galzoo_tf.training.model_dir import BASE, FINAL, SHIPPED, SIDECAR, load_keras, read_sidecar

MAKE_TARGET = "make base-model"


def ship(run: Path, command: str, target: Path = SHIPPED / BASE) -> Path:
    """Copy the vote model of the finished run ``run`` to ``target`` in float32 with how it was made."""
    path, sidecar = read_sidecar(run)
    trained, config = load_keras(path), sidecar["config"]
    keras.config.set_dtype_policy("float32")
    model = rebuild_vote_model(trained, config)
    model.set_weights(trained.get_weights())
    target.mkdir(parents=True, exist_ok=True)
    save_model_atomic(model, target / FINAL)
    data = {key: value for key, value in sidecar["data"].items() if key != "path"}  # no path of this machine
    shipped = {"command": command, "make": MAKE_TARGET, "seed": config["seed"], "data_fingerprint": data["fingerprint"],
               "galzoo_version": __version__, "precision": "trained in mixed precision where the config says so; "
                                                           "stored in float32"}
    write_json_atomic(target / SIDECAR, {**sidecar, "data": data, "shipped": shipped})
    return target


if __name__ == "__main__":  # the make target's last step: RUN COMMAND
    print(ship(Path(sys.argv[1]), sys.argv[2]))
