"""A model directory: its file names, ``model.keras`` loaded safely with ``galzoo.json``, and what later stages add.

``galzoo.json`` may carry a ``posterior`` section written by ``galzoo calibrate
--tune-dropout`` (the test-time dropout rate that calibrated best, with what it was tuned
on) and an ``expert`` section (expert-label mappings). Sampling uses the tuned rate unless
told otherwise, so ``galzoo predict`` gives recalibrated posteriors without new options.
Which task a directory holds is decided by ``galzoo_tf.tasks.load_model``, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras

from galzoo_tf import __version__
from galzoo_tf.data.augment import AugmentConfig
from galzoo_tf.data.layout import ImageSpec
from galzoo_tf.data.records import read_manifest
from galzoo_tf.errors import BadInputError
from galzoo_tf.fileio import read_json, sha256_file, write_json_atomic
from galzoo_tf.outputs import Output, OutputLock

CHECKPOINT, BEST, STATE = "checkpoint.keras", "best.keras", "train-state.json"
FINAL, SIDECAR, RUN_CONFIG = "model.keras", "galzoo.json", "train-config.json"
RECORD_WAIT_SECONDS = 60  # a calibration storing its section waits this long for another one to finish
LEGACY_TASK = "votes"  # what a galzoo.json or run config written before tasks were recorded holds
DEFAULT_IMAGE = {"shape": [256, 256, 3], "dtype": "uint8", "encoding": "raw"}  # models trained before it was kept
BASE = "base"  # --model base, --init-from base: the base model shipped in the package
GAMPEN_BASE = "gampen-base"  # --init-from gampen-base: GaMPEN pretrained on Ghosh et al. (2022)'s population
SHIPPED_MODELS = (BASE, GAMPEN_BASE)
SHIPPED = Path(__file__).resolve().parent.parent / "weights"  # galzoo_tf/weights/<name>/model.keras, galzoo.json


@dataclass(frozen=True)
class SavedModel:
    """A loaded model directory: model.keras, what galzoo.json says, and what every task reads of it."""

    path: Path
    model: keras.Model
    sidecar: dict

    @property
    def task(self) -> str:
        return self.sidecar.get("task", LEGACY_TASK)

    @property
    def augmentation(self) -> AugmentConfig:
        return AugmentConfig.from_json(self.sidecar["augmentation"])

    @property
    def image(self) -> ImageSpec:
        """The stored image frame the model was trained on (new images are resized to it)."""
        raw = self.sidecar.get("image", DEFAULT_IMAGE)
        return ImageSpec(tuple(raw["shape"]), raw["dtype"], raw.get("encoding", "raw"))

    @property
    def dropout_rate(self) -> float | None:
        """Test-time dropout rate chosen by calibration, or None for the training rate."""
        return self.sidecar.get("posterior", {}).get("dropout_rate")

    def checksum(self) -> str:
        return sha256_file(self.path / FINAL)

    def describe(self) -> dict:
        """How catalogues and reports name the model: its path and checksum."""
        return {"path": str(self.path.resolve()), "sha256": self.checksum()}


def model_path(given: str | Path) -> Path:
    """A ``--model`` value as a directory: ``base`` and ``gampen-base`` are the shipped models, anything else a
    path."""
    name = str(given)
    if name not in SHIPPED_MODELS:
        return Path(given)
    if Path(name).is_dir():
        raise BadInputError("bad option", f"--model {name} names a shipped model, but ./{name} is a directory "
                                          "too; give that directory as an absolute path, or rename it")
    shipped = SHIPPED / name
    if not (shipped / FINAL).is_file():
        raise BadInputError("not a model", f"the shipped model {name} is not installed ({shipped}); "
                                           f"`make {name if name != BASE else 'base-model'}` trains it")
    return shipped


def check_changeable(path: Path, because: str = "") -> None:
    """A clear error before anything would be stored in a shipped model (``because``: what would store it)."""
    if Path(path).resolve().is_relative_to(SHIPPED):
        raise BadInputError("read-only model", f"{path}: the shipped base model is not changed{because}; fine-tune "
                                               "it (`galzoo train --init-from base`) and calibrate that model")


def read_sidecar(path: str | Path) -> tuple[Path, dict]:
    """The directory (``base``: the shipped model) and its ``galzoo.json``; a clear error unless both model
    files are there and readable."""
    path = model_path(path)
    if not path.is_dir():
        raise BadInputError("not a model", f"{path}: no such model directory (from `galzoo train`)")
    for name in (FINAL, SIDECAR):
        if not (path / name).is_file():
            raise BadInputError("not a model", f"{path}: no {name}; pass a model directory written by "
                                               "`galzoo train` (it writes both when training ends)")
    return path, read_json(path / SIDECAR)


def fine_tuning_source(init_from: str | Path, task: str) -> tuple[Path, keras.Model, dict]:
    """``--init-from``: the model directory, its Keras model (safe mode) and galzoo.json, checked to be of ``task``."""
    path, sidecar = read_sidecar(init_from)
    if sidecar.get("task", LEGACY_TASK) != task:
        raise BadInputError("not a model", f"--init-from {init_from}: a {sidecar.get('task')!r} model; "
                                           f"fine-tuning needs a {task} model (from `galzoo train --task {task}`)")
    return path, load_keras(path), sidecar


def load_keras(path: Path, name: str = FINAL) -> keras.Model:
    """``name`` (model.keras) of a model directory in safe mode (no Lambda layers, no pickles: galzoo's
    layers are registered); a file Keras cannot load, or will not in safe mode, is one clear error."""
    file = path / name
    try:
        return keras.saving.load_model(file, safe_mode=True)
    except Exception as exc:  # Keras raises ValueError, OSError, zipfile and h5py errors, KeyError, TypeError
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "safe_mode" in str(exc):
            raise BadInputError("unsafe model", f"{file}: refused in safe mode: it holds code Keras would have "
                                                "to run to load it (e.g. a Lambda layer); galzoo loads only "
                                                "models made of known layers") from None
        raise BadInputError("broken model", f"{file}: cannot load the model ({reason}); the file is damaged, "
                                            "truncated or not a Keras model of galzoo's") from None


def record_dropout_rate(path: Path, rate: float, data: Path, split: str, criterion: str, fitted: dict | None = None,
                        **sampling) -> None:
    """Store calibration's tuned test-time dropout rate (and any other ``fitted`` value, e.g. the vote task's
    logit spread) in galzoo.json (atomically), with what it was tuned on.

    One format for every task: the records' path and fingerprint, the split, the sampling
    settings (passes, seed, ...), the criterion and the galzoo version.
    """
    tuned_on = {"data": str(Path(data).resolve()), "split": split, "fingerprint": read_manifest(data)["fingerprint"],
                **sampling}
    record_section(path, "posterior", {"dropout_rate": rate, **(fitted or {}), "tuned_on": tuned_on,
                                       "criterion": criterion, "galzoo_version": __version__})


def record_section(path: Path, name: str, value: dict, merge: bool = False) -> None:
    """Replace one section of galzoo.json (or, with ``merge``, update its keys), atomically, re-reading the file."""
    check_changeable(path)
    with OutputLock(Output.directory(path, option="--model"), wait=RECORD_WAIT_SECONDS):  # no section is lost
        sidecar = read_json(path / SIDECAR)
        write_json_atomic(path / SIDECAR, {**sidecar, name: {**sidecar.get(name, {}), **value} if merge else value})
