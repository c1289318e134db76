"""The training loop every task shares: strategy, precision, callbacks, checkpoints, resume, model directory.

A model directory holds ``checkpoint.keras`` (model and optimizer after the last finished
epoch), ``best.keras`` (lowest validation loss so far), ``train-state.json`` (epoch, the
callbacks' counters, history), TensorBoard logs, and at the end ``model.keras`` (the best
model) with ``galzoo.json`` describing it. Every write is atomic, and the data pipeline is
a pure function of (seed, epoch), so a run resumed with ``resume=True`` after being killed
ends with the same weights as an uninterrupted run. The task (``config.task``) supplies the
model, its loss and its datasets.
"""

from __future__ import annotations

import math
import shutil
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

import keras
import tensorflow as tf

from galzoo_tf import __version__
from galzoo_tf.data import records
from galzoo_tf.fileio import read_json, replaced_atomically, write_json_atomic
from galzoo_tf.outputs import Output, writing
from galzoo_tf.tasks.base import TrainingRun
from galzoo_tf.tasks.registry import task_named
from galzoo_tf.training.callbacks import EpochCheckpoint, ResumableEarlyStopping, ResumableReduceLR
from galzoo_tf.training.config import TrainConfig, TrainingError, TrainResult
from galzoo_tf.training.distributed import fit_distributed
from galzoo_tf.training.model_dir import BEST, CHECKPOINT, FINAL, LEGACY_TASK, RUN_CONFIG, SIDECAR, STATE, load_keras
from galzoo_tf.training.strategy import is_chief, make_strategy, set_precision

__all__ = ["TrainConfig", "TrainResult", "TrainingError", "train"]


def _purpose(settings: dict) -> str:
    """What a model directory (its galzoo.json or run config) is for, in the words of its task."""
    return task_named(settings.get("task", LEGACY_TASK)).purpose(settings)


def _prepare_dir(out: Path, config: TrainConfig, resume: bool) -> dict | None:
    """The saved run state when resuming; refuses a directory holding another question or a finished run."""
    sidecar, state = out / SIDECAR, out / STATE
    for path in (sidecar, out / RUN_CONFIG):
        if path.is_file():
            held = _purpose(read_json(path))
            if held != _purpose(asdict(config)):
                raise TrainingError("foreign model dir", f"{out} holds a model for {held}, not "
                                                         f"{_purpose(asdict(config))}; choose another --out")
    if sidecar.is_file() and not resume:
        raise TrainingError("model exists", f"{out} already holds a trained model; choose another --out")
    if state.is_file() and not resume:
        raise TrainingError("run exists", f"{out} holds an unfinished run; pass --resume to continue it")
    return read_json(state) if resume and state.is_file() else None


def model_output(out: Path) -> Output:
    """A model directory as an output: galzoo's own when it holds a run's config, state, checkpoint or model."""
    return Output.directory(out, markers=(SIDECAR, RUN_CONFIG, STATE, CHECKPOINT))


def _model(out: Path, saved: dict | None, strategy: tf.distribute.Strategy, run: TrainingRun) -> keras.Model:
    """The checkpointed model when resuming, else the task's new compiled one, inside the strategy's scope."""
    with strategy.scope():
        if saved:
            return load_keras(out, CHECKPOINT)
        return run.build()


def _callbacks(out: Path, saved: dict | None, config: TrainConfig, chief: bool) -> tuple[list, EpochCheckpoint]:
    """Early stopping, plateau, checkpoint (last: it saves the counters the others just updated), TensorBoard."""
    restored = saved["callbacks"] if saved else [{}, {}]
    stopping = ResumableEarlyStopping(restored[0], monitor="val_loss", patience=config.patience)
    plateau = ResumableReduceLR(restored[1], monitor="val_loss", factor=0.3, patience=config.plateau_patience)
    checkpoint = EpochCheckpoint(out, chief, [stopping, plateau], saved["history"] if saved else {})
    callbacks = [stopping, plateau, checkpoint]
    if chief:
        callbacks.append(keras.callbacks.TensorBoard(out / "logs", update_freq="epoch", profile_batch=0))
    return callbacks, checkpoint


def _nan_error(checkpoint: EpochCheckpoint, out: Path) -> TrainingError:
    epoch, batch = checkpoint.nan_at
    kept = f"the checkpoint of epoch {epoch} is kept in {out}" if (out / CHECKPOINT).is_file() else \
        "no epoch had finished, so no checkpoint exists"
    return TrainingError("nan loss", f"training loss became NaN in epoch {epoch + 1}, batch {batch + 1}; "
                                     f"{kept}; lower --learning-rate and --resume")


def train(data: Path, out: Path, config: TrainConfig, resume: bool = False, verbose: int | str = "auto") -> TrainResult:
    """Train (or resume) a model of ``config.task`` on prepared records and write the model directory ``out``.

    >>> result = train(Path("data/synthetic"), Path("data/bar-model"),
    ...                TrainConfig(question="bar", epochs=12, seed=0))  # doctest: +SKIP
    >>> result.best_val_loss < result.baseline_val_loss  # doctest: +SKIP
    True
    """
    strategy = make_strategy(config.strategy)  # first: multi-worker strategies must precede other TF work
    data, out = Path(data), Path(out)
    chief = is_chief(strategy)
    inputs = [("records", data), ("model to fine-tune", config.init_from)]
    with writing([model_output(out)], inputs) if chief else nullcontext():  # workers write no model directory
        return _train(data, out, config, resume, verbose, strategy, chief)


def _train(data: Path, out: Path, config: TrainConfig, resume: bool, verbose: int | str,
           strategy: tf.distribute.Strategy, chief: bool) -> TrainResult:
    """``train`` once its output is checked and locked: build or restore, fit, and write the model directory."""
    task = task_named(config.task)
    config = task.configure(config)
    manifest = records.read_manifest(data)
    run = task.training(data, manifest, config)
    config = run.config  # what the records and a source model decide, filled in
    saved = _prepare_dir(out, config, resume)
    keras.utils.set_random_seed(config.seed)
    if not config.jit:  # Keras refuses XLA under op determinism: --jit runs trade bit-exact resume for speed
        tf.config.experimental.enable_op_determinism()
    set_precision(config.mixed_precision)
    first_epoch = saved["epoch"] if saved else 0
    steps = math.ceil(run.train_galaxies / config.batch_size)
    model = _model(out, saved, strategy, run)  # before anything is written: a damaged checkpoint changes nothing
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / RUN_CONFIG, asdict(config))
    callbacks, checkpoint = _callbacks(out, saved, config, chief)
    if first_epoch < config.epochs:  # a run killed after its last epoch resumes straight to _finish
        # known lengths: Keras then neither probes for the end of the data nor warns about it
        train_data = run.dataset("train", (first_epoch, config.epochs)).apply(
            tf.data.experimental.assert_cardinality(steps * (config.epochs - first_epoch)))
        val_data = run.dataset("val").apply(
            tf.data.experimental.assert_cardinality(math.ceil(run.val_galaxies / config.batch_size)))
    if first_epoch < config.epochs and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        fit_distributed(model, run.loss, strategy, train_data, val_data, first_epoch, config.epochs, steps, callbacks)
    elif first_epoch < config.epochs:
        model.fit(train_data, epochs=config.epochs, initial_epoch=first_epoch, validation_data=val_data,
                  steps_per_epoch=steps, callbacks=callbacks, verbose=verbose,
                  shuffle=False)  # the dataset shuffles itself, reproducibly
    if checkpoint.nan_at is not None:
        raise _nan_error(checkpoint, out)
    history = checkpoint.history
    if chief:
        _finish(out, data, manifest, config, task.name, run, history)
    val_losses = history.get("val_loss", [math.nan])
    return TrainResult(out, len(val_losses), float(min(val_losses)), run.baseline_val_loss, run.train_galaxies,
                       run.val_galaxies, history, run.baseline_label, run.title)


def _finish(out: Path, data: Path, manifest: dict, config: TrainConfig, task: str, run: TrainingRun,
            history: dict) -> None:
    """model.keras (the best epoch) and galzoo.json beside it."""
    with replaced_atomically(out / FINAL) as temporary:
        shutil.copyfile(out / BEST, temporary)
    sidecar = {
        "galzoo_version": __version__,
        "task": task,
        **run.sidecar(),
        "image": manifest["image"],
        "augmentation": run.augmentation.to_json(),
        "config": asdict(config),
        "data": {"path": str(data.resolve()), "source": manifest["source"], "fingerprint": manifest["fingerprint"],
                 "shards": {s["file"]: s["sha256"] for s in manifest["shards"]},
                 "train_galaxies": run.train_galaxies, "val_galaxies": run.val_galaxies},
        "history": history,
        "best_val_loss": float(min(history["val_loss"])),
    }
    write_json_atomic(out / SIDECAR, sidecar)
