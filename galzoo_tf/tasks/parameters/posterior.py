"""Posteriors of parameter models (GaMPEN §4.4): T passes with dropout on, one MVN draw per pass.

Each pass runs the whole network with MC dropout at every dropout layer (GaMPEN has no
batch normalisation, so ``training=True`` changes nothing else; checked), takes the pass's
N(mu_t, Sigma_t) in the scaled target space, draws one sample from it, and maps it back to
physical values. The T samples carry both the epistemic (dropout) and the aleatoric
(Sigma) uncertainty. Randomness is keyed by (seed, galaxy index): the dropout layers' seed
state and the MVN draw are set from the key before each galaxy's passes, so a galaxy gets
the same samples in any batch, and a resumed run equals an uninterrupted one.

Summaries per parameter: median, mode (maximum of a Gaussian KDE, as the paper), and the
highest-density intervals (shortest intervals holding 68.27/95.45/99.73 % of the samples).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from galzoo_tf.data.augment import AugmentConfig, augment
from galzoo_tf.models.gampen import STN_LAYER, mc_dropout_layers
from galzoo_tf.tasks.parameters.loss import parameter_distribution
from galzoo_tf.tasks.parameters.targets import ParameterScaler

LEVELS = (0.6827, 0.9545, 0.9973)
MAX_IMAGES_PER_CALL = 1024  # passes of one galaxy run in chunks of at most this many images


def level_name(level: float) -> str:
    """0.6827 -> '68' (column and key names)."""
    return f"{int(level * 100)}"


@dataclass
class ParameterSampler:
    """Samples (galaxies, passes, 3) of physical parameters for a batch of raw images."""

    model: keras.Model
    augmentation: AugmentConfig
    scaler: ParameterScaler
    passes: int = 1000
    seed: int = 0
    rate: float | None = None  # test-time dropout rate of every dropout layer (default: the training rate)

    def __post_init__(self) -> None:
        if self.passes < 1:
            raise ValueError(f"passes must be at least 1, not {self.passes}")
        normalising = [layer.name for layer in self.model.layers if "normalization" in type(layer).__name__.lower()]
        if normalising:
            raise ValueError(f"{self.model.name}: normalisation layers {normalising} would change in training "
                             "mode; parameter sampling needs a network without them")
        self.dropout = mc_dropout_layers(self.model)
        training_rate = self.dropout[0].rate if self.dropout else 0.0
        self.rate = float(training_rate if self.rate is None else self.rate)
        if not 0 <= self.rate < 1:
            raise ValueError(f"the dropout rate must be in [0, 1), not {self.rate}")
        self.chunk = max(1, min(self.passes, MAX_IMAGES_PER_CALL))
        self._compiled = tf.function(self._outputs, reduce_retracing=True)
        self._view = tf.function(self._views, reduce_retracing=True)

    def _views(self, images: tf.Tensor) -> tf.Tensor:
        """What the network sees of each raw image: the deterministic view (stretch, resize)."""
        config = self.augmentation.deterministic()
        return tf.map_fn(lambda image: augment(image, tf.zeros([2], tf.int64), config), images,
                         fn_output_signature=tf.float32)

    def _outputs(self, images: tf.Tensor) -> tf.Tensor:
        return self.model(images, training=True)

    def _reseed(self, key: Sequence[int]) -> None:
        """Every dropout layer's seed state from (seed, galaxy index, chunk, layer): batch-independent masks."""
        for number, layer in enumerate(self.dropout):
            state = np.random.SeedSequence([*key, number]).generate_state(2, np.uint32).astype(np.int64)
            layer.seed_generator.state.assign(state)

    def _galaxy(self, view: tf.Tensor, index: int) -> np.ndarray:
        """(passes, 3) scaled samples of one galaxy: dropout passes in chunks, one MVN draw per pass."""
        samples = []
        for start in range(0, self.passes, self.chunk):
            count = min(self.chunk, self.passes - start)
            self._reseed([self.seed, index, start])
            outputs = self._compiled(tf.repeat(view[None], count, axis=0))
            draw_seed = tf.constant(np.random.SeedSequence([self.seed, index, start, len(self.dropout)])
                                    .generate_state(2, np.uint32).astype(np.int32))
            samples.append(parameter_distribution(outputs).sample(seed=draw_seed).numpy())
        return np.concatenate(samples)

    def views(self, images: np.ndarray) -> tf.Tensor:
        """What the network sees of a batch of raw images."""
        return self._view(tf.convert_to_tensor(images))

    def crops(self, views: tf.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(the spatial transformer's crops of network input views, s): what the CNN sees, for plots."""
        crops, scales = self.model.get_layer(STN_LAYER).crop(views)
        return crops.numpy(), scales.numpy()

    def samples(self, images: np.ndarray, indices: np.ndarray, views: tf.Tensor | None = None) -> np.ndarray:
        """Physical samples (galaxies, passes, 3) of L_B/L_T, R_e and F (``views``: already computed)."""
        views = self.views(images) if views is None else views
        previous = [layer.rate for layer in self.dropout]
        for layer in self.dropout:
            layer.rate = self.rate
        try:
            scaled = np.stack([self._galaxy(views[i], int(index)) for i, index in enumerate(indices)])
        finally:
            for layer, rate in zip(self.dropout, previous, strict=True):
                layer.rate = rate
        return self.scaler.inverse(scaled)


def highest_density_intervals(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Shortest interval holding ``level`` of each row's samples (galaxies, T) -> (low, high)."""
    ordered = np.sort(samples, axis=-1)
    total = ordered.shape[-1]
    inside = min(total, max(1, int(np.ceil(level * total))))
    widths = ordered[..., inside - 1:] - ordered[..., :total - inside + 1]
    start = np.argmin(widths, axis=-1)
    rows = np.arange(len(ordered))
    return ordered[rows, start], ordered[rows, start + inside - 1]


def kde_modes(samples: np.ndarray, grid_points: int = 256, chunk: int = 256) -> np.ndarray:
    """Mode of each row's Gaussian KDE (Scott's bandwidth, as scipy.stats.gaussian_kde), on a grid over its range."""
    samples = np.asarray(samples, np.float64)
    total = samples.shape[1]
    modes = np.empty(len(samples))
    for start in range(0, len(samples), chunk):
        rows = samples[start:start + chunk]
        low, high = rows.min(axis=1, keepdims=True), rows.max(axis=1, keepdims=True)
        grid = low + (high - low) * np.linspace(0, 1, grid_points)[None]
        bandwidth = np.maximum(rows.std(axis=1, ddof=1, keepdims=True) * total ** (-1 / 5), 1e-12)
        density = np.exp(-0.5 * ((grid[:, :, None] - rows[:, None, :]) / bandwidth[:, :, None]) ** 2).sum(axis=2)
        modes[start:start + chunk] = grid[np.arange(len(rows)), density.argmax(axis=1)]
    return modes


@dataclass(frozen=True)
class ParameterSummary:
    """Per galaxy and parameter: mode, median and the HDI of every level."""

    mode: np.ndarray  # (galaxies, 3)
    median: np.ndarray
    intervals: dict[float, tuple[np.ndarray, np.ndarray]]  # level -> (low, high), each (galaxies, 3)


def summarise_parameters(samples: np.ndarray, levels: Sequence[float] = LEVELS) -> ParameterSummary:
    """Summaries of physical samples (galaxies, T, 3)."""
    parameters = range(samples.shape[-1])
    intervals = {}
    for level in levels:
        pairs = [highest_density_intervals(samples[..., p], level) for p in parameters]
        intervals[level] = (np.stack([low for low, _ in pairs], -1), np.stack([high for _, high in pairs], -1))
    modes = np.stack([kde_modes(samples[..., p]) for p in parameters], -1)
    return ParameterSummary(modes, np.median(samples, axis=1), intervals)


def interval_coverage(summary: ParameterSummary, truth: np.ndarray) -> dict[float, np.ndarray]:
    """Per level, the fraction of galaxies whose true value lies in the HDI, per parameter (3,)."""
    return {level: ((truth >= low) & (truth <= high)).mean(axis=0) for level, (low, high) in summary.intervals.items()}
