"""Morphological parameters (GaMPEN, Ghosh et al. 2022, §5): L_B/L_T, R_e and flux, and their targets.

The network works in a space where the three are unbounded and alike in scale:
logit(L_B/L_T), ln R_e and ln F (eq. 15), then a standard scaler fitted on the training
split (eq. 16). The inverse maps any network output back into the physical range
(0 < L_B/L_T < 1, R_e > 0, F > 0). L_B/L_T is clipped to [EPSILON, 1 - EPSILON] before the
logit: pure disks (0) and pure spheroids (1) are common in simulations, and logit(0) is
-inf. With EPSILON = 1e-3 they sit at logit = -/+6.9, a few standard deviations from the
uniform 0-1 disks' bulk, so they neither dominate the scaler nor the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from galzoo_tf.data.augment import AugmentConfig
from galzoo_tf.data.inputs import RecordSource
from galzoo_tf.data.pipeline import record_dataset
from galzoo_tf.data.records import read_manifest
from galzoo_tf.errors import BadInputError

PARAMETERS = ("bulge_to_total", "r_e_arcsec", "flux")
TRUTH_KEYS = tuple(f"truth/{name}" for name in PARAMETERS)
LABELS = {"bulge_to_total": "L_B/L_T", "r_e_arcsec": "R_e [arcsec]", "flux": "F [nJy for HSC]"}
EPSILON = 1e-3  # L_B/L_T is clipped to [EPSILON, 1 - EPSILON] before the logit


@dataclass(frozen=True)
class ParameterScaler:
    """logit / ln / ln, then (y - mean) / std per parameter: physical values <-> network targets."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    epsilon: float = EPSILON

    @staticmethod
    def unbounded(physical: tf.Tensor, epsilon: float = EPSILON) -> tf.Tensor:
        """(..., 3) physical values -> logit(L_B/L_T), ln R_e, ln F (eq. 15)."""
        physical = tf.convert_to_tensor(physical, tf.float32)
        bulge = tf.clip_by_value(physical[..., 0], epsilon, 1 - epsilon)
        return tf.stack([tf.math.log(bulge / (1 - bulge)), tf.math.log(physical[..., 1]),
                         tf.math.log(physical[..., 2])], axis=-1)

    @classmethod
    def fit(cls, physical: np.ndarray, epsilon: float = EPSILON) -> ParameterScaler:
        """The scaler of a training set's physical values (galaxies, 3)."""
        if len(physical) < 2:
            raise BadInputError("no galaxies", "fitting the target scaler needs at least 2 training galaxies")
        unbounded = cls.unbounded(physical, epsilon).numpy().astype(np.float64)
        return cls(tuple(unbounded.mean(axis=0).tolist()), tuple(unbounded.std(axis=0).tolist()), epsilon)

    def forward(self, physical: tf.Tensor) -> tf.Tensor:
        """Physical values -> scaled targets the network learns (float32)."""
        return (self.unbounded(physical, self.epsilon) - tf.constant(self.mean, tf.float32)) / \
            tf.constant(self.std, tf.float32)

    def inverse(self, scaled: tf.Tensor | np.ndarray) -> np.ndarray:
        """Scaled network outputs or samples (..., 3) -> physical values, always in the physical range."""
        unbounded = np.asarray(scaled, np.float64) * np.asarray(self.std) + np.asarray(self.mean)
        return np.stack([1 / (1 + np.exp(-unbounded[..., 0])), np.exp(unbounded[..., 1]),
                         np.exp(unbounded[..., 2])], axis=-1)

    def to_json(self) -> dict:
        return {"parameters": list(PARAMETERS), "transforms": ["logit", "ln", "ln"], "mean": list(self.mean),
                "std": list(self.std), "epsilon": self.epsilon}

    @classmethod
    def from_json(cls, raw: dict) -> ParameterScaler:
        return cls(tuple(raw["mean"]), tuple(raw["std"]), raw["epsilon"])


def check_parameters(folder: Path) -> dict:
    """The manifest, if its records carry the three truth parameters; else a clear error."""
    manifest = read_manifest(folder)
    missing = [key for key in TRUTH_KEYS if key not in manifest.get("float_features", [])]
    if missing:
        raise BadInputError("no parameters", f"{folder}: the records have no {', '.join(missing)}; prepare "
                                             "`galzoo prepare synthetic --survey hsc` or `galzoo prepare fits "
                                             "--table` with bulge_to_total, r_e_arcsec and flux columns")
    return manifest


def is_galaxy(features: dict[str, tf.Tensor]) -> tf.Tensor:
    """Records with a measurable galaxy (R_e > 0 and F > 0): stars and artifacts have no parameters."""
    return tf.logical_and(features[TRUTH_KEYS[1]] > 0, features[TRUTH_KEYS[2]] > 0)


def physical_values(features: dict[str, tf.Tensor]) -> tf.Tensor:
    return tf.stack([features[key] for key in TRUTH_KEYS], axis=-1)


def split_truth(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(record positions, physical values (galaxies, 3)) of a split's galaxies, read without images."""
    check_parameters(folder)
    columns = RecordSource(folder, split, TRUTH_KEYS).columns()
    values = np.stack([columns[key] for key in TRUTH_KEYS], axis=1).astype(np.float64)
    usable = (values[:, 1] > 0) & (values[:, 2] > 0)
    return np.flatnonzero(usable), values[usable]


def parameter_dataset(folder: Path, split: str, scaler: ParameterScaler, config: AugmentConfig, batch_size: int,
                      seed: int, epochs: tuple[int, int] | None = None) -> tf.data.Dataset:
    """Batches of (stretched image, scaled targets (3,)) of a split's galaxies; as ``record_dataset``."""
    check_parameters(Path(folder))
    return record_dataset(folder, split, config, batch_size, seed, is_galaxy,
                          lambda f: scaler.forward(physical_values(f)), epochs)

