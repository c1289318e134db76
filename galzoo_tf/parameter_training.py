"""Training GaMPEN (`galzoo train --task parameters`): what ``training.train`` needs of the parameter task.

The target scaler is fitted on the training split's truth and stored in galzoo.json. With
``init_from`` (transfer learning, Ghosh et al. 2021) the new model starts from another
parameter model's weights and keeps that model's scaler, so fine-tuning continues in the
same target space; ``freeze`` keeps chosen layer groups fixed.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from galzoo_tf.augment import AugmentConfig
from galzoo_tf.errors import BadInputError
from galzoo_tf.heads import ParameterLoss
from galzoo_tf.model_dir import ParameterModel, load_model
from galzoo_tf.models.gampen import build_gampen_model, freeze
from galzoo_tf.parameters import PARAMETERS, ParameterScaler, parameter_dataset, split_truth


def standard_normal_loss(targets: np.ndarray) -> float:
    """Mean -log N(z | 0, I) of scaled targets: the loss of always predicting the training mean with unit spread."""
    return float(np.mean(0.5 * (targets**2).sum(axis=1)) + 1.5 * math.log(2 * math.pi))


class ParameterTask:
    """GaMPEN on records carrying truth/bulge_to_total, truth/r_e_arcsec and truth/flux."""

    name = "parameters"

    def __init__(self, data: Path, manifest: dict, config) -> None:
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
        self.augmentation = AugmentConfig.for_parameters(config.image_size, config.zoom[0] if config.zoom else 1.0)

    @staticmethod
    def _source_model(init_from: str | None) -> ParameterModel | None:
        """The model to fine-tune (loaded in safe mode), checked to be a parameter model."""
        if not init_from:
            return None
        source = load_model(init_from)
        if not isinstance(source, ParameterModel):
            raise BadInputError("not a model", f"--init-from {init_from}: a {source.sidecar.get('task')!r} model; "
                                               "fine-tuning needs a parameter model")
        return source

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
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=ParameterLoss(),
                      jit_compile=config.jit)
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
            **({"init_from": {"path": str(self.source.path.resolve()), "sha256": self.source.checksum(),
                              "freeze": list(self.config.freeze)}} if self.source else {}),
        }
