"""The parameter task (GaMPEN, Ghosh et al. 2022): posteriors of L_B/L_T, R_e and flux.

``ParameterTraining`` is one training run; ``ParameterTask`` is the task's entry in the registry.

The target scaler is fitted on the training split's truth and stored in galzoo.json. With
``init_from`` (transfer learning, Ghosh et al. 2021) the new model starts from another
parameter model's weights and keeps that model's scaler, so fine-tuning continues in the
same target space; ``freeze`` keeps chosen layer groups fixed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from galzoo_tf.data.augment import AugmentConfig
from galzoo_tf.errors import BadInputError
from galzoo_tf.models.gampen import STN_LAYER, build_gampen_model, freeze, mc_dropout_layers
from galzoo_tf.tasks.base import Progress, Rows, Task, TaskDefaults
from galzoo_tf.tasks.parameters.calibrate import calibration_report
from galzoo_tf.tasks.parameters.catalogue import ParameterPredictOptions, parameter_provenance, parameter_rows
from galzoo_tf.tasks.parameters.loss import ParameterLoss
from galzoo_tf.tasks.parameters.model import ParameterModel
from galzoo_tf.tasks.parameters.targets import PARAMETERS, ParameterScaler, parameter_dataset, split_truth
from galzoo_tf.tasks.requests import CalibrateRequest, CalibrationReport, PredictRequest
from galzoo_tf.training.config import TrainConfig
from galzoo_tf.training.model_dir import fine_tuning_source


def standard_normal_loss(targets: np.ndarray) -> float:
    """Mean -log N(z | 0, I) of scaled targets: the loss of always predicting the training mean with unit spread."""
    return float(np.mean(0.5 * (targets**2).sum(axis=1)) + 1.5 * math.log(2 * math.pi))


class ParameterTraining:
    """GaMPEN on records carrying truth/bulge_to_total, truth/r_e_arcsec and truth/flux."""

    baseline_label = "baseline: N(train mean, train spread)"
    title = "trained parameter model"

    def __init__(self, data: Path, manifest: dict, config: TrainConfig) -> None:
        if config.zoom and config.zoom[0] != config.zoom[1]:  # options first, before reading any record
            raise BadInputError("bad option", "--zoom for parameters is one fixed central crop (e.g. --zoom 2 2): "
                                              "a random zoom would change the apparent R_e")
        self.data, self.manifest, self.config = data, manifest, config
        self.source = self._source_model(config.init_from)
        _, train_values = split_truth(data, "train")
        _, val_values = split_truth(data, "val")
        if len(val_values) == 0:
            raise BadInputError("no galaxies", f"{data}: the val split has no galaxy with parameters")
        self.scaler = self.source.scaler if self.source else ParameterScaler.fit(train_values)
        self.train_galaxies, self.val_galaxies = len(train_values), len(val_values)
        self.baseline_val_loss = standard_normal_loss(self.scaler.forward(val_values).numpy())
        self.augmentation = AugmentConfig.for_parameters(config.image_size, config.zoom[0] if config.zoom else 1.0,
                                                         config.greyscale)
        self.loss = ParameterLoss()

    @staticmethod
    def _source_model(init_from: str | None) -> ParameterModel | None:
        """The model to fine-tune (loaded in safe mode), checked to be a parameter model."""
        if not init_from:
            return None
        return ParameterModel(*fine_tuning_source(init_from, "parameters"))

    def build(self) -> keras.Model:
        config = self.config
        channels = 1 if config.greyscale else self.manifest["image"]["shape"][-1]
        model = build_gampen_model((config.image_size, config.image_size, channels), config.dropout, config.width,
                                   config.l2)
        if self.source:
            source = self.source.model
            if source.input_shape[1:] != model.input_shape[1:] or source.count_params() != model.count_params():
                raise BadInputError("model mismatch", f"--init-from {self.source.path}: input "
                                                      f"{source.input_shape[1:]} and {source.count_params():,} "
                                                      f"weights; use its --image-size and --width")
            model.set_weights(source.get_weights())
        freeze(model, config.freeze)
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=self.loss, jit_compile=config.jit)
        return model

    def dataset(self, split: str, epochs: tuple[int, int] | None = None) -> tf.data.Dataset:
        config = self.config
        return parameter_dataset(self.data, split, self.scaler, self.augmentation, config.batch_size, config.seed,
                                 epochs)

    def sidecar(self) -> dict:
        return {
            "question": "parameters",
            "parameters": list(PARAMETERS),
            "targets": self.scaler.to_json(),
            "baseline": {"what": "N(training mean, training spread) of the scaled targets for every galaxy",
                         "val_loss": self.baseline_val_loss},
            **({"init_from": {**self.source.describe(), "freeze": list(self.config.freeze)}} if self.source else {}),
        }


class ParameterTask(Task):
    """Parameter posteriors: GaMPEN's multivariate normal of (logit L_B/L_T, ln R_e, ln F)."""

    name = "parameters"
    defaults = TaskDefaults(dropout=7e-4, predict_passes=1000, calibrate_passes=1000)  # GaMPEN: 1000 passes

    def training(self, data: Path, manifest: dict, config: TrainConfig) -> ParameterTraining:
        return ParameterTraining(data, manifest, config)

    def rebuilt(self, trained: keras.Model, config: dict) -> keras.Model:
        return build_gampen_model(tuple(trained.input_shape[1:]), config["dropout"], config["width"], config["l2"])

    def saved_model(self, path: Path, model: keras.Model, sidecar: dict) -> ParameterModel:
        model.get_layer(STN_LAYER)  # another architecture fails here, not mid-catalogue
        if not mc_dropout_layers(model):
            raise ValueError("the model has no MC dropout layer")
        return ParameterModel(path, model, sidecar)

    def predict_options(self, request: PredictRequest, models: Sequence[ParameterModel]) -> ParameterPredictOptions:
        if len(models) > 1:
            raise BadInputError("bad option", "parameter models predict one at a time: give one --model")
        return ParameterPredictOptions(passes=request.passes or self.defaults.predict_passes, seed=request.seed,
                                       save_samples=request.save_samples, dropout_rate=request.dropout_rate,
                                       batch_size=request.batch_size, corner_ids=request.corner_ids)

    def catalogue_rows(self, models: Sequence[ParameterModel], options: ParameterPredictOptions, out: Path) -> Rows:
        return parameter_rows(models[0], options, out)

    def catalogue_provenance(self, models, source, options):
        return parameter_provenance(models[0], source, options)

    def calibrate(self, model: ParameterModel, data: Path, out: Path, request: CalibrateRequest,
                  ensemble: Sequence[ParameterModel], progress: Progress) -> CalibrationReport:
        if ensemble:
            raise BadInputError("bad option", "--ensemble pools vote models; parameter models calibrate alone")
        return calibration_report(model, data, out, request, self.defaults.calibrate_passes, progress)
