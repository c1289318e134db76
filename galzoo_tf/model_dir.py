"""A trained vote model directory as later stages read it: model.keras, galzoo.json, posterior settings.

``galzoo.json`` may carry a ``posterior`` section written by ``galzoo calibrate
--tune-dropout``: the test-time dropout rate that calibrated best. Sampling uses it unless
told otherwise, so ``galzoo predict`` gives recalibrated posteriors without new options.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras

from galzoo_tf.augment import AugmentConfig
from galzoo_tf.errors import BadInputError
from galzoo_tf.expert import ExpertMapping
from galzoo_tf.fileio import sha256_file, write_json_atomic
from galzoo_tf.heads import BinomialHead
from galzoo_tf.layout import ImageSpec
from galzoo_tf.parameter_posterior import ParameterSampler
from galzoo_tf.parameters import ParameterScaler
from galzoo_tf.posterior import Sampler
from galzoo_tf.training import FINAL, SIDECAR

DEFAULT_IMAGE = {"shape": [256, 256, 3], "dtype": "uint8", "encoding": "raw"}  # models trained before it was kept


@dataclass(frozen=True)
class SavedModel:
    """A loaded model directory: model.keras, what galzoo.json says, and what every task reads of it."""

    path: Path
    model: keras.Model
    sidecar: dict

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


@dataclass(frozen=True)
class VoteModel(SavedModel):
    """A loaded vote model: its heads, N per question, and its MC dropout sampler."""

    @property
    def heads(self) -> list[BinomialHead]:
        return [BinomialHead(h["question"], tuple(h["answers"]), tuple(h["all_answers"]), h["offset"])
                for h in self.sidecar["heads"]]

    def total_votes(self, head: BinomialHead) -> int:
        """N at which predictions are made: the training galaxies' mean N, else the schema's typical N."""
        recorded = next(h for h in self.sidecar["heads"] if h["question"] == head.question)
        return max(1, round(recorded.get("mean_votes") or recorded["expected_votes"]))

    def asked_fraction(self, head: BinomialHead) -> float:
        """Fraction of training galaxies asked the head's question (1 for models trained before it was kept)."""
        recorded = next(h for h in self.sidecar["heads"] if h["question"] == head.question)
        return float(recorded.get("asked_fraction", 1.0))

    @property
    def experts(self) -> list[ExpertMapping]:
        """Expert-label mappings fitted by `galzoo calibrate --expert-labels` (predict adds their columns)."""
        return [ExpertMapping.from_json(raw) for raw in self.sidecar.get("expert", {}).values()]

    def sampler(self, passes: int, tta: bool, seed: int, rate: float | None = None) -> Sampler:
        return Sampler(self.model, self.augmentation, passes, tta, seed, self.dropout_rate if rate is None else rate)


def _load(path: str | Path, task: str | None) -> tuple[Path, dict, keras.Model]:
    """``model.keras`` (safe mode) and ``galzoo.json`` of a model directory, checked to be of ``task``."""
    path = Path(path)
    for name in (FINAL, SIDECAR):
        if not (path / name).is_file():
            raise BadInputError("not a model", f"{path}: no {name}; pass a model directory written by "
                                               "`galzoo train` (it writes both when training ends)")
    sidecar = json.loads((path / SIDECAR).read_text())
    if task is not None and sidecar.get("task") != task:
        raise BadInputError("not a model", f"{path}: a {sidecar.get('task')!r} model, not a {task} model")
    return path, sidecar, keras.saving.load_model(path / FINAL, safe_mode=True)


def load_vote_model(path: str | Path) -> VoteModel:
    """Load ``model.keras`` in safe mode with its ``galzoo.json``; a clear error if either is missing."""
    path, sidecar, model = _load(path, "votes")
    return VoteModel(path, model, sidecar)


def load_parameter_model(path: str | Path) -> ParameterModel:
    """A GaMPEN model directory (``galzoo train --task parameters``)."""
    path, sidecar, model = _load(path, "parameters")
    return ParameterModel(path, model, sidecar)


def load_model(path: str | Path) -> VoteModel | ParameterModel:
    """Whichever task the directory's galzoo.json names: later stages accept both transparently."""
    path, sidecar, model = _load(path, None)
    if sidecar.get("task") == "parameters":
        return ParameterModel(path, model, sidecar)
    if sidecar.get("task") == "votes":
        return VoteModel(path, model, sidecar)
    raise BadInputError("not a model", f"{path}: unknown task {sidecar.get('task')!r} in {SIDECAR}")


@dataclass(frozen=True)
class ParameterModel(SavedModel):
    """A loaded GaMPEN model: its target scaler, training dropout rate and posterior sampler."""

    @property
    def scaler(self) -> ParameterScaler:
        return ParameterScaler.from_json(self.sidecar["targets"])

    @property
    def training_rate(self) -> float:
        return float(self.sidecar["config"]["dropout"])

    def sampler(self, passes: int, seed: int, rate: float | None = None) -> ParameterSampler:
        return ParameterSampler(self.model, self.augmentation, self.scaler, passes, seed,
                                self.dropout_rate if rate is None else rate)


def check_same_heads(models: list[VoteModel]) -> None:
    """Ensembles combine samples answer by answer: every member must predict the same outputs."""
    first = models[0].heads
    for member in models[1:]:
        if member.heads != first:
            raise BadInputError("ensemble mismatch", f"{member.path} predicts "
                                f"{[h.question for h in member.heads]}, {models[0].path} predicts "
                                f"{[h.question for h in first]}: an ensemble needs models of the same question")


def record_posterior(path: Path, settings: dict) -> None:
    """Store calibration's choice in galzoo.json (atomically) for every later prediction."""
    sidecar = json.loads((path / SIDECAR).read_text())
    write_json_atomic(path / SIDECAR, {**sidecar, "posterior": settings})


def record_expert(path: Path, mapping: ExpertMapping) -> None:
    """Store an expert-label mapping in galzoo.json (one per expert column; a refit replaces it)."""
    sidecar = json.loads((path / SIDECAR).read_text())
    experts = {**sidecar.get("expert", {}), mapping.column: mapping.to_json()}
    write_json_atomic(path / SIDECAR, {**sidecar, "expert": experts})
