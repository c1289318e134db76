"""Training the vote model: strategy, mixed precision, callbacks, checkpoints, resume, model directory.

A model directory holds ``checkpoint.keras`` (model and optimizer after the last finished
epoch), ``best.keras`` (lowest validation loss so far), ``train-state.json`` (epoch, the
callbacks' counters, history), TensorBoard logs, and at the end ``model.keras`` (the best
model) with ``galzoo.json`` describing it. Every write is atomic, and the data pipeline is
a pure function of (seed, epoch), so a run resumed with ``resume=True`` after being killed
ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from galzoo_tf import __version__, records
from galzoo_tf.augment import AugmentConfig
from galzoo_tf.dataset import vote_dataset, vote_targets
from galzoo_tf.distributed import fit_distributed
from galzoo_tf.errors import BadInputError
from galzoo_tf.fileio import replaced_atomically, write_json_atomic
from galzoo_tf.heads import BinomialHead, BinomialVoteLoss, heads_for, negative_log_likelihood, output_size
from galzoo_tf.models import build_vote_model
from galzoo_tf.schema import Schema, load_schema

CHECKPOINT, BEST, STATE = "checkpoint.keras", "best.keras", "train-state.json"
FINAL, SIDECAR = "model.keras", "galzoo.json"
STRATEGIES = ("auto", "default", "mirrored", "multiworker")


class TrainingError(BadInputError):
    """Training stopped for a reason the user must act on (NaN loss, a foreign model directory)."""


@dataclass(frozen=True)
class TrainConfig:
    """Every choice that shapes a training run; stored in galzoo.json."""

    question: str = "bar"  # a question of the tree, or "all" for one head per question
    task: str = "votes"  # or "parameters": GaMPEN's L_B/L_T, R_e and flux
    epochs: int = 20
    batch_size: int = 64
    image_size: int = 128
    dropout: float = 0.5
    learning_rate: float = 1e-3
    seed: int = 0
    min_votes: int = 1
    architecture: str = "paper"
    greyscale: bool = True
    zoom: tuple[float, float] | None = None  # None: the schema's default for the question
    central_crop: bool | None = None
    mixed_precision: bool = False
    strategy: str = "auto"
    jit: bool = False
    patience: int = 5  # early stopping on validation loss
    plateau_patience: int = 2  # learning-rate reduction (x0.3) on plateau
    width: float = 1.0  # parameters: GaMPEN's filters and units x width (slim networks for CPUs)
    l2: float = 0.0  # parameters: L2 regularisation strength lambda (GaMPEN eq. 8 uses 1e-4)
    init_from: str | None = None  # parameters: start from this model directory's weights (transfer learning)
    freeze: tuple[str, ...] = ()  # parameters: layer groups kept fixed while fine-tuning (see FREEZABLE)


@dataclass
class TrainResult:
    """What a run ended with, for the CLI summary."""

    model_dir: Path
    epochs_run: int
    best_val_loss: float
    baseline_val_loss: float
    train_galaxies: int
    val_galaxies: int
    history: dict = field(default_factory=dict)


def questions_of(config: TrainConfig, schema: Schema) -> list[str]:
    """The questions a run trains heads for; an unknown name is a clear error listing the tree's."""
    if config.question == "all":
        return list(schema.question_names)
    try:
        return [schema.question(config.question).name]
    except KeyError as error:
        raise BadInputError("unknown question", error.args[0]) from None


def augment_config(config: TrainConfig, schema: Schema) -> AugmentConfig:
    """The augmentations: the question's zoom and crop from the schema unless overridden (root for 'all')."""
    question = schema.question(schema.root if config.question == "all" else config.question)
    zoom = config.zoom or question.zoom
    central = question.central_crop if config.central_crop is None else config.central_crop
    return AugmentConfig(config.image_size, config.greyscale, tuple(zoom), central)


def make_strategy(name: str) -> tf.distribute.Strategy:
    """auto: several GPUs -> mirrored; a multi-worker TF_CONFIG -> multiworker; else the default strategy."""
    if name not in STRATEGIES:
        raise BadInputError("bad option", f"--strategy must be one of {', '.join(STRATEGIES)}")
    if name == "auto":
        workers = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {}).get("worker", [])
        name = "multiworker" if len(workers) > 1 else "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 \
            else "default"
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Only the chief (worker 0) writes the model directory."""
    resolver = getattr(strategy, "cluster_resolver", None)
    return resolver is None or resolver.task_type in (None, "chief") or \
        (resolver.task_type == "worker" and resolver.task_id == 0)


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


@dataclass(frozen=True)
class LabelStatistics:
    """What the labels alone say: galaxies per split, the training-set mean rho and its validation loss."""

    train_galaxies: int
    val_galaxies: int
    mean_rho: np.ndarray
    baseline_val_loss: float  # the loss of predicting the mean rho for every galaxy: the bar a model must beat
    mean_votes: np.ndarray  # mean N per output over training galaxies asked the question: the N predictions use
    asked_fraction: np.ndarray  # per output: fraction of training galaxies asked the question (acquisition weight)


def label_statistics(data: Path, heads: list[BinomialHead], filter_head: BinomialHead,
                     min_votes: int) -> LabelStatistics:
    """One pass over the votes of each split (no images); a split with no usable galaxy is an error."""
    size = output_size(heads)
    sums, asked, n_train = np.zeros(2 * size), np.zeros(size), 0
    for y in vote_targets(data, "train", heads, min_votes, filter_head):
        sums, n_train = sums + y.numpy().sum(axis=0), n_train + int(y.shape[0])
        asked += (y.numpy()[:, size:] > 0).sum(axis=0)
    rho = np.clip(sums[:size] / np.maximum(sums[size:], 1), 1e-4, 1 - 1e-4)
    logits = np.log(rho / (1 - rho)).astype(np.float32)
    loss, n_val = 0.0, 0
    for y in vote_targets(data, "val", heads, min_votes, filter_head):
        loss += float(tf.reduce_sum(negative_log_likelihood(y, tf.broadcast_to(logits, (y.shape[0], size)))))
        n_val += int(y.shape[0])
    for split, n in (("train", n_train), ("val", n_val)):
        if n == 0:
            raise BadInputError("no galaxies", f"{data}: no {split} galaxy has at least {min_votes} votes "
                                               f"for {filter_head.question!r}; lower --min-votes")
    return LabelStatistics(n_train, n_val, rho, loss / n_val, sums[size:] / np.maximum(asked, 1), asked / n_train)


class VoteTask:
    """Vote posteriors (Walmsley et al. 2019): Binomial heads on the vote CNN; what ``train`` needs of a task."""

    name = "votes"

    def __init__(self, data: Path, manifest: dict, config: TrainConfig) -> None:
        self.data, self.manifest, self.config = data, manifest, config
        self.schema = load_schema(manifest["schema"])
        self.heads = heads_for(self.schema, questions_of(config, self.schema))
        self.filter_head = self.heads[0] if config.question != "all" else \
            next(h for h in self.heads if h.question == self.schema.root)
        self.labels = label_statistics(data, self.heads, self.filter_head, config.min_votes)
        self.train_galaxies, self.val_galaxies = self.labels.train_galaxies, self.labels.val_galaxies
        self.baseline_val_loss = self.labels.baseline_val_loss
        self.augmentation = augment_config(config, self.schema)

    def build(self) -> keras.Model:
        config = self.config
        channels = 1 if config.greyscale else self.manifest["image"]["shape"][-1]
        model = build_vote_model((config.image_size, config.image_size, channels), output_size(self.heads),
                                 config.dropout, config.architecture)
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=BinomialVoteLoss(),
                      jit_compile=config.jit)
        return model

    def dataset(self, split: str, epochs: tuple[int, int] | None = None) -> tf.data.Dataset:
        config = self.config
        return vote_dataset(self.data, split, self.heads, self.augmentation, config.batch_size, config.seed,
                            config.min_votes, epochs=epochs, filter_head=self.filter_head)

    def sidecar(self) -> dict:
        labels = self.labels
        return {
            "question": self.config.question,
            "schema": self.schema.name,
            "heads": [{"question": h.question, "answers": list(h.answers), "all_answers": list(h.all_answers),
                       "offset": h.offset, "expected_votes": self.schema.question(h.question).expected_votes,
                       "mean_votes": round(float(labels.mean_votes[h.offset]), 3),
                       "asked_fraction": round(float(labels.asked_fraction[h.offset]), 4)} for h in self.heads],
            "baseline": {"what": "training-set mean rho for every galaxy", "rho": labels.mean_rho.tolist(),
                         "val_loss": labels.baseline_val_loss},
        }


def make_task(data: Path, manifest: dict, config: TrainConfig):
    """The task object of a run: VoteTask or parameters.ParameterTask."""
    if config.task == "votes":
        return VoteTask(data, manifest, config)
    if config.task == "parameters":
        from galzoo_tf.parameter_training import ParameterTask

        return ParameterTask(data, manifest, config)
    raise BadInputError("bad option", f"--task must be 'votes' or 'parameters', not {config.task!r}")


def _purpose(settings: dict) -> str:
    """What a model directory is for: a vote question, or parameters."""
    task = settings.get("task", "votes")
    return f"question {settings.get('question')!r}" if task == "votes" else task


def _prepare_dir(out: Path, config: TrainConfig, resume: bool) -> dict | None:
    """The saved run state when resuming; refuses a directory holding another question or a finished run."""
    sidecar, state = out / SIDECAR, out / STATE
    for path in (sidecar, out / "train-config.json"):
        if path.is_file():
            held = _purpose(json.loads(path.read_text()))
            if held != _purpose(asdict(config)):
                raise TrainingError("foreign model dir", f"{out} holds a model for {held}, not "
                                                         f"{_purpose(asdict(config))}; choose another --out")
    if sidecar.is_file() and not resume:
        raise TrainingError("model exists", f"{out} already holds a trained model; choose another --out")
    if state.is_file() and not resume:
        raise TrainingError("run exists", f"{out} holds an unfinished run; pass --resume to continue it")
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "train-config.json", asdict(config))
    return json.loads(state.read_text()) if resume and state.is_file() else None


def _set_precision(mixed: bool) -> None:
    """float16 on GPUs, bfloat16 on CPU, or float32; the output layer stays float32 either way."""
    gpu = bool(tf.config.list_logical_devices("GPU"))
    keras.mixed_precision.set_global_policy(("mixed_float16" if gpu else "mixed_bfloat16") if mixed else "float32")


def _model(out: Path, saved: dict | None, strategy: tf.distribute.Strategy, task) -> keras.Model:
    """The checkpointed model when resuming, else the task's new compiled one, inside the strategy's scope."""
    with strategy.scope():
        if saved:
            return keras.saving.load_model(out / CHECKPOINT, safe_mode=True)
        return task.build()


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
    """Train (or resume) a vote or parameter model on prepared records and write the model directory."""
    strategy = make_strategy(config.strategy)  # first: multi-worker strategies must precede other TF work
    data, out = Path(data), Path(out)
    manifest = records.read_manifest(data)
    task = make_task(data, manifest, config)
    saved = _prepare_dir(out, config, resume)
    keras.utils.set_random_seed(config.seed)
    if not config.jit:  # Keras refuses XLA under op determinism: --jit runs trade bit-exact resume for speed
        tf.config.experimental.enable_op_determinism()
    _set_precision(config.mixed_precision)
    first_epoch = saved["epoch"] if saved else 0
    steps = math.ceil(task.train_galaxies / config.batch_size)
    model = _model(out, saved, strategy, task)
    chief = is_chief(strategy)
    callbacks, checkpoint = _callbacks(out, saved, config, chief)
    if first_epoch < config.epochs:  # a run killed after its last epoch resumes straight to _finish
        # known lengths: Keras then neither probes for the end of the data nor warns about it
        train_data = task.dataset("train", (first_epoch, config.epochs)).apply(
            tf.data.experimental.assert_cardinality(steps * (config.epochs - first_epoch)))
        val_data = task.dataset("val").apply(
            tf.data.experimental.assert_cardinality(math.ceil(task.val_galaxies / config.batch_size)))
    if first_epoch < config.epochs and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        fit_distributed(model, strategy, train_data, val_data, first_epoch, config.epochs, steps, callbacks)
    elif first_epoch < config.epochs:
        model.fit(train_data, epochs=config.epochs, initial_epoch=first_epoch, validation_data=val_data,
                  steps_per_epoch=steps, callbacks=callbacks, verbose=verbose,
                  shuffle=False)  # the dataset shuffles itself, reproducibly
    if checkpoint.nan_at is not None:
        raise _nan_error(checkpoint, out)
    history = checkpoint.history
    if chief:
        _finish(out, data, manifest, config, task, history)
    val_losses = history.get("val_loss", [math.nan])
    return TrainResult(out, len(val_losses), float(min(val_losses)), task.baseline_val_loss, task.train_galaxies,
                       task.val_galaxies, history)


def _finish(out: Path, data: Path, manifest: dict, config: TrainConfig, task, history: dict) -> None:
    """model.keras (the best epoch) and galzoo.json beside it."""
    with replaced_atomically(out / FINAL) as temporary:
        shutil.copyfile(out / BEST, temporary)
    sidecar = {
        "galzoo_version": __version__,
        "task": task.name,
        **task.sidecar(),
        "image": manifest["image"],
        "augmentation": task.augmentation.to_json(),
        "config": asdict(config),
        "data": {"path": str(data.resolve()), "source": manifest["source"], "fingerprint": manifest["fingerprint"],
                 "shards": {s["file"]: s["sha256"] for s in manifest["shards"]},
                 "train_galaxies": task.train_galaxies, "val_galaxies": task.val_galaxies},
        "history": history,
        "best_val_loss": float(min(history["val_loss"])),
    }
    write_json_atomic(out / SIDECAR, sidecar)
