"""The shipped models: a finished pretraining run copied into the package, in float32, with its recipe.

``make base-model`` prepares the pretraining universe, trains on every question (resumable)
and then runs ``python -m galzoo_tf.training.base_model RUN COMMAND``, which writes
``galzoo_tf/weights/base/model.keras`` (float32 whatever precision trained them, so it runs
on any CPU or GPU) and a ``galzoo.json`` that says how it was made. ``make gampen-base`` does
the same for GaMPEN on Ghosh et al. (2022)'s population, into ``weights/gampen-base``
(``python -m galzoo_tf.training.base_model RUN COMMAND gampen-base``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras

from galzoo_tf import __version__
from galzoo_tf.fileio import write_json_atomic
from galzoo_tf.tasks.registry import task_named
from galzoo_tf.training.callbacks import save_model_atomic
from galzoo_tf.training.model_dir import (
    BASE,
    FINAL,
    GAMPEN_BASE,
    LEGACY_TASK,
    SHIPPED,
    SIDECAR,
    load_keras,
    read_sidecar,
)

MAKE_TARGETS = {BASE: "make base-model", GAMPEN_BASE: "make gampen-base"}


def float32_twin(trained: keras.Model, sidecar: dict) -> keras.Model:
    """A float32 model of the trained one's task and architecture, holding its weights."""
    keras.config.set_dtype_policy("float32")
    model = task_named(sidecar.get("task", LEGACY_TASK)).rebuilt(trained, sidecar["config"])
    model.set_weights(trained.get_weights())
    return model


def ship(run: Path, command: str, name: str = BASE, root: Path = SHIPPED) -> Path:
    """Copy the model of the finished run ``run`` into the package (``root``) as ``name``, in float32, with how
    it was made."""
    target = root / name
    path, sidecar = read_sidecar(run)
    trained, config = load_keras(path), sidecar["config"]
    model = float32_twin(trained, sidecar)
    target.mkdir(parents=True, exist_ok=True)
    save_model_atomic(model, target / FINAL)
    data = {key: value for key, value in sidecar["data"].items() if key != "path"}  # no path of this machine
    shipped = {"command": command, "make": MAKE_TARGETS[name], "seed": config["seed"],
               "data_fingerprint": data["fingerprint"],
               "galzoo_version": __version__, "precision": "trained in mixed precision where the config says so; "
                                                           "stored in float32"}
    posterior = {**sidecar["posterior"], "tuned_on": {key: value for key, value in
                                                      sidecar["posterior"].get("tuned_on", {}).items()
                                                      if key != "data"}} if "posterior" in sidecar else None
    write_json_atomic(target / SIDECAR, {**sidecar, "data": data, "shipped": shipped,
                                         **({"posterior": posterior} if posterior else {})})
    return target


if __name__ == "__main__":  # the make target's last step: RUN COMMAND [NAME]
    print(ship(Path(sys.argv[1]), sys.argv[2], *sys.argv[3:4]))
