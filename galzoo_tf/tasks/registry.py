"""The one place that decides which task a training run or a model directory is, and loads model directories."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from galzoo_tf.errors import BadInputError
from galzoo_tf.tasks.base import Task
from galzoo_tf.tasks.parameters.task import ParameterTask
from galzoo_tf.tasks.votes.task import VoteTask
from galzoo_tf.training.model_dir import FINAL, SIDECAR, SavedModel, load_keras, read_sidecar

TASKS: dict[str, Task] = {task.name: task for task in (VoteTask(), ParameterTask())}

__all__ = ["TASKS", "load_model", "load_models", "task_named", "task_of"]


def task_named(name: str) -> Task:
    """The task called ``name`` (a config's ``task``, a galzoo.json's ``task``)."""
    if name not in TASKS:
        raise BadInputError("bad option", f"--task must be {' or '.join(repr(t) for t in TASKS)}, not {name!r}")
    return TASKS[name]


def task_of(models: Sequence[SavedModel]) -> Task:
    """The one task of loaded models; a clear error when they mix tasks."""
    names = {model.task for model in models}
    if len(names) != 1:
        raise BadInputError("bad option", "the --model directories mix vote and parameter models; give one kind")
    return task_named(names.pop())


def load_model(path: str | Path, task: str | None = None) -> SavedModel:
    """A trained model directory, loaded in safe mode as the task its galzoo.json names (``task``, if given).

    >>> model = load_model("data/demo/bar-model")  # doctest: +SKIP
    >>> model.heads[0].question, model.total_votes(model.heads[0])  # doctest: +SKIP
    ('bar', 38)
    """
    path, sidecar = read_sidecar(path)
    name = sidecar.get("task")
    if task is not None and name != task:
        raise BadInputError("not a model", f"{path}: a {name!r} model, not a {task} model")
    if name not in TASKS:
        raise BadInputError("not a model", f"{path}: unknown task {name!r} in {SIDECAR}")
    model = load_keras(path)
    try:
        return TASKS[name].saved_model(path, model, sidecar)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        if isinstance(exc, BadInputError):
            raise
        raise BadInputError("not a model", f"{path}: {SIDECAR} and {FINAL} do not describe one galzoo {name} "
                                           f"model ({type(exc).__name__}: {exc}); the directory was edited or "
                                           "holds a foreign model") from None


def load_models(paths: Sequence[str | Path], task: str | None = None) -> list[SavedModel]:
    """Several model directories of one task (``task``, when given, is required of them)."""
    if not paths:
        raise BadInputError("bad option", "give a model: --model DIR (from `galzoo train`)")
    models = [load_model(path, task) for path in paths]
    task_of(models)
    return models
