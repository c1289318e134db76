"""A trained GaMPEN model as later stages read it: its target scaler, training dropout rate and sampler."""

from __future__ import annotations

from dataclasses import dataclass

from galzoo_tf.tasks.parameters.posterior import ParameterSampler
from galzoo_tf.tasks.parameters.targets import ParameterScaler
from galzoo_tf.training.model_dir import SavedModel


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
