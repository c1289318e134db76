"""Keras callbacks that make a run resumable: counters that survive a restart, per-epoch checkpoints."""

from __future__ import annotations

import math
from pathlib import Path

import keras

from galzoo_tf.fileio import replaced_atomically, write_json_atomic
from galzoo_tf.training.model_dir import BEST, CHECKPOINT, STATE


def save_model_atomic(model: keras.Model, path: Path) -> None:
    with replaced_atomically(path, ".keras") as temporary:
        model.save(temporary)


def _number(value) -> float | None:
    return None if value is None else float(value)


class RestoresCounters:
    """Callback mixin: the counters named in ``counters`` survive a restart.

    Keras resets them in ``on_train_begin``; the saved values are put back right after.
    """

    counters: tuple[str, ...] = ()

    def __init__(self, restored: dict | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.restored = restored or {}

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        for key, value in self.restored.items():
            setattr(self, key, value)

    def state(self) -> dict:
        return {key: _number(getattr(self, key)) for key in self.counters}


class ResumableEarlyStopping(RestoresCounters, keras.callbacks.EarlyStopping):
    counters = ("wait", "best", "best_epoch")


class ResumableReduceLR(RestoresCounters, keras.callbacks.ReduceLROnPlateau):
    """Learning-rate reduction on plateau; the rate itself is restored with the optimizer."""

    counters = ("wait", "best", "cooldown_counter")


class EpochCheckpoint(keras.callbacks.Callback):
    """After each good epoch: checkpoint, best model when validation improves, and the run state."""

    def __init__(self, out: Path, chief: bool, stateful: list, history: dict) -> None:
        super().__init__()
        self.out, self.chief, self.stateful, self.history = out, chief, stateful, history
        self.nan_at: tuple[int, int] | None = None
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if logs and not math.isfinite(float(logs.get("loss", 0.0))):
            self.nan_at = (self.epoch, batch)
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.nan_at is not None:
            return
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        if not self.chief:
            return
        best_so_far = min(self.history.get("val_loss", [math.inf]))
        if logs and float(logs.get("val_loss", math.inf)) <= best_so_far:
            save_model_atomic(self.model, self.out / BEST)
        save_model_atomic(self.model, self.out / CHECKPOINT)
        write_json_atomic(self.out / STATE, {"epoch": epoch + 1, "history": self.history,
                                             "callbacks": [c.state() for c in self.stateful]})
