"""`galzoo calibrate` for any task: load the model (and ensemble), let its task measure and report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from galzoo_tf.outputs import Output, writing
from galzoo_tf.tasks.registry import load_model, load_models, task_of
from galzoo_tf.tasks.requests import REPORT, CalibrateRequest, CalibrationReport
from galzoo_tf.training.model_dir import check_changeable


def calibrate_model(model_dir: Path, data: Path, out: Path, request: CalibrateRequest,
                    ensemble: Sequence[Path] = (), progress: Callable[[int, int], None] | None = None,
                    ) -> CalibrationReport:
    """Calibration report of a trained model on a split of ``data``, written to ``out`` (calibration.json, figures).

    >>> report = calibrate_model(Path("data/demo/bar-model"), Path("data/demo/synthetic"),
    ...                          Path("data/demo/calibration"), CalibrateRequest(tune_dropout=(0.5, 0.7)))
    ...                          # doctest: +SKIP
    >>> report.result["recalibrated"]["dropout_rate"]  # doctest: +SKIP
    0.7
    """
    data, out = Path(data), Path(out)
    inputs = [("model directory", model_dir), ("records", data), ("expert labels", request.expert_labels),
              *[("ensemble model", member) for member in ensemble],
              *[("model trained at another dropout rate", other) for other in request.trained_rates]]
    with writing([Output.directory(out, markers=(REPORT,))], inputs):
        model = load_model(model_dir)
        if request.tune_dropout or request.expert_labels:  # fail before the sampling, not when storing
            check_changeable(model.path, " by --tune-dropout or --expert-labels")
        members = load_models(ensemble, model.task) if ensemble else []
        return task_of([model]).calibrate(model, data, out, request, members, progress)
