"""The Task interface: everything galzoo does differently for vote posteriors and for parameter posteriors.

A task names its defaults (dropout, passes), builds its training run (targets, model,
loss, datasets, what galzoo.json records), reads its model directories, turns a user's
prediction and calibration requests into its own options, and writes its catalogue rows
and reports. ``galzoo_tf.tasks.registry`` is the one place that picks a task; nothing
else looks at a task's type.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import keras
import numpy as np
import tensorflow as tf

from galzoo_tf.catalogues.writer import CatalogueKind
from galzoo_tf.data.augment import AugmentConfig
from galzoo_tf.data.inputs import Batch, FolderSource, RecordSource
from galzoo_tf.errors import BadInputError
from galzoo_tf.tasks.requests import CalibrateRequest, CalibrationReport, PredictRequest
from galzoo_tf.training.config import TrainConfig, check_task_options
from galzoo_tf.training.model_dir import SavedModel

Progress = Callable[[int, int], None] | None
Rows = Callable[[Batch], dict[str, np.ndarray]]


@dataclass(frozen=True)
class TaskDefaults:
    """What a task uses when the user does not say."""

    dropout: float  # training dropout rate
    predict_passes: int  # posterior samples per galaxy in a catalogue
    calibrate_passes: int  # and when measuring calibration


class TrainingRun(Protocol):
    """One training run of a task on one record folder: what the generic loop needs."""

    config: TrainConfig  # as run: the task's defaults and what the records and the source model decide filled in
    train_galaxies: int
    val_galaxies: int
    baseline_val_loss: float
    baseline_label: str  # what the baseline loss is, for people
    title: str  # what was trained, for people
    augmentation: AugmentConfig
    loss: keras.losses.Loss  # per-galaxy likelihood term; regularisation is in ``model.losses``

    def build(self) -> keras.Model: ...

    def dataset(self, split: str, epochs: tuple[int, int] | None = None) -> tf.data.Dataset: ...

    def sidecar(self) -> dict: ...


class Task(ABC):
    """One kind of posterior galzoo learns; see the module docstring."""

    name: str
    defaults: TaskDefaults

    def configure(self, config: TrainConfig) -> TrainConfig:
        """The config with the task's defaults filled in (what the run does, and what galzoo.json records); an
        option of another task is an error."""
        check_task_options(config, self.name)
        return config if config.dropout is not None else replace(config, dropout=self.defaults.dropout)

    def purpose(self, settings: dict) -> str:
        """What a model directory of this task is for (a run may only continue in a directory of its purpose)."""
        return self.name

    @abstractmethod
    def training(self, data: Path, manifest: dict, config: TrainConfig) -> TrainingRun:
        """The run of ``config`` (defaults filled in) on the records in ``data``."""

    @abstractmethod
    def rebuilt(self, trained: keras.Model, config: dict) -> keras.Model:
        """A freshly initialised model of a trained one's architecture (from its input and its training
        ``config``), in the current dtype policy: to ship its weights in float32, or as a random baseline."""

    @abstractmethod
    def saved_model(self, path: Path, model: keras.Model, sidecar: dict) -> SavedModel:
        """A loaded model directory of this task."""

    @abstractmethod
    def predict_options(self, request: PredictRequest, models: Sequence[SavedModel]) -> Any:
        """The task's catalogue options for a request (a clear error for what the task cannot do)."""

    formats: tuple[str, ...] = ("posterior",)  # what `galzoo predict --format` can write of this task's models

    def catalogue_format(self, name: str, models: Sequence[SavedModel], options: Any) -> tuple[Any, CatalogueKind]:
        """The options and catalogue kind of the output format ``name`` ('posterior': the task's own rows); a
        format the task does not write, or these models cannot, is a clear error before any galaxy is sampled."""
        if name != "posterior":
            raise BadInputError("bad option", f"--format {name} is not written for {self.name} models; they write "
                                              f"{', '.join(self.formats)}")
        return options, self

    @abstractmethod
    def catalogue_rows(self, models: Sequence[SavedModel], options: Any, out: Path) -> Rows:
        """The catalogue rows of a batch, from samplers built once for every batch."""

    @abstractmethod
    def catalogue_provenance(self, models: Sequence[SavedModel], source: RecordSource | FolderSource,
                             options: Any) -> Callable[[int], dict]:
        """The catalogue's sidecar for a number of rows: version, seed, models and input checksums, columns."""

    @abstractmethod
    def calibrate(self, model: SavedModel, data: Path, out: Path, request: CalibrateRequest,
                  ensemble: Sequence[SavedModel], progress: Progress) -> CalibrationReport:
        """Measure and report calibration (and recalibrate when asked); writes out/calibration.json."""

