"""What a training run is asked to do (``TrainConfig``, stored in galzoo.json) and what it ends with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from galzoo_tf.errors import BadInputError


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
    dropout: float | None = None  # None: the task's default (votes 0.5, parameters GaMPEN's 7e-4)
    learning_rate: float = 1e-3
    seed: int = 0
    min_votes: int | None = None  # None: the question's default cut from the schema (bar: 10, as the paper)
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
    l2: float = 1e-4  # parameters: L2 regularisation strength lambda (GaMPEN eq. 8)
    init_from: str | None = None  # start from this model directory's weights (votes: its trunk)
    freeze: tuple[str, ...] = ()  # layer groups kept fixed while fine-tuning (votes: trunk; parameters: FREEZABLE)
    trunk_lr_factor: float | None = None  # votes, full fine-tuning: trunk rate = this x the heads' (default 0.1)
    leave_out: tuple[str, ...] = ()  # votes, question all: questions given no head (a trunk that never learned them)
    dense_activation: str | None = None  # votes, paper trunk: None = linear as the paper, or the source's
    head_link: str = "softmax"  # votes: "softmax" per question (rho sum to 1) or the older "one-vs-rest"


TASK_OPTIONS = {  # options only one task reads: given to the other, they are an error, not silently ignored
    "question": "votes", "min_votes": "votes", "architecture": "votes", "central_crop": "votes",
    "trunk_lr_factor": "votes", "leave_out": "votes", "dense_activation": "votes", "head_link": "votes",
    "width": "parameters", "l2": "parameters",
}


def check_task_options(config: TrainConfig, task: str) -> None:
    """A clear error for any option set away from its default that ``task`` does not read."""
    defaults = TrainConfig()
    for name, owner in TASK_OPTIONS.items():
        if owner != task and getattr(config, name) != getattr(defaults, name):
            raise BadInputError("bad option", f"--{name.replace('_', '-')} applies to --task {owner}, not "
                                              f"--task {task}")


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
    baseline_label: str = "baseline"  # what the baseline loss is, for people
    title: str = "trained model"  # what was trained, for people
