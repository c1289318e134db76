"""`galzoo calibrate`: coverage error of the vote posteriors, the paper's figures, and recalibration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from galzoo_cli import options as shared
from galzoo_cli.console import counting, friendly_errors, report, table
from galzoo_tf.errors import BadInputError


def parse_rates(text: str | None) -> tuple[float, ...]:
    """'0.05,0.1,0.2' -> (0.05, 0.1, 0.2); a clear error for anything else."""
    if not text:
        return ()
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise BadInputError("bad option", f"--tune-dropout takes comma-separated rates like 0.1,0.3,0.5, "
                                          f"not {text!r}") from None


@friendly_errors
def calibrate(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model directory from `galzoo train`.")],
    data: Annotated[Path, typer.Option(help="Record folder with votes, or with truth parameters for a parameter "
                                           "model (from `galzoo prepare`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder: calibration.json and PNG figures.")],
    split: Annotated[str, typer.Option(help="Split to measure calibration on.")] = "test",
    passes: shared.TaskPasses = None,
    tta: shared.Tta = True,
    batch_size: shared.BatchSize = 32,
    seed: shared.Seed = 0,
    tune_dropout: Annotated[str | None, typer.Option(help="Comma-separated test-time dropout rates to try on "
                                                          "the validation split, e.g. 0.5,0.7,0.9; the best "
                                                          "calibrated is saved in the model's galzoo.json and "
                                                          "used by `galzoo predict`.")] = None,
    tune_split: Annotated[str, typer.Option(help="Split the dropout rate is tuned on.")] = "val",
    ensemble: Annotated[list[Path] | None, typer.Option(help="Another model directory of the same question to "
                                                             "pool samples with (repeat for more).")] = None,
    trained_rate: Annotated[list[Path] | None, typer.Option(
        help="Parameter models: another model of the same network trained at another --dropout (repeatable). Each "
             "is sampled on the tuning split at its training rate beside --model, as GaMPEN chose its rate "
             "(§5, Fig. 8); the report names the best calibrated and plots coverage against the rate.")] = None,
    bias: Annotated[bool, typer.Option("--bias", help="Bias report: which galaxy properties (size, brightness, "
                                                      "axis ratio, S/N, morphology) make the model surprised by "
                                                      "the votes; an additive model, importance and shapes in "
                                                      "bias.png.")] = False,
    expert_labels: Annotated[Path | None, typer.Option(help="CSV of an expert's binary labels ('id' column and "
                                                            "--expert-column) for galaxies of --split: fit vote "
                                                            "fraction -> expert probability, stored with the "
                                                            "model; predict then adds its column.")] = None,
    expert_column: Annotated[str | None, typer.Option(help="The expert's label column in --expert-labels.")]
    = None,
    expert_answer: Annotated[str | None, typer.Option(help="QUESTION/ANSWER whose predicted vote fraction the "
                                                           "expert label is fitted on (default: the model's "
                                                           "first answer, e.g. bar/bar).")] = None,
) -> None:
    """Measure how well the posteriors are calibrated (coverage error, Walmsley et al. 2019 eq. 11-13), draw the paper's figures, and recalibrate.

    Parameter models (GaMPEN): coverage of the 68.27/95.45/99.73 % highest-density intervals per parameter, typical errors, R^2, flag precision and recall, residual figures (GaMPEN Figs. 8, 11-19); --tune-dropout picks the test-time rate whose coverage is closest to the levels, --trained-rate compares networks trained at other rates (the paper's way). Vote models: coverage error = (expected - actual) / actual galaxies whose vote fraction lies within a maximum error of the prediction: positive means overconfident. The paper's models are overconfident; --tune-dropout widens the MC dropout posterior, --ensemble pools several models.
    """  # noqa: E501
    from galzoo_tf.tasks.calibrate import calibrate_model
    from galzoo_tf.tasks.requests import CalibrateRequest

    request = CalibrateRequest(split=split, passes=passes, tta=tta, seed=seed, batch_size=batch_size,
                               tune_dropout=parse_rates(tune_dropout), tune_split=tune_split, bias=bias,
                               expert_labels=expert_labels, expert_column=expert_column, expert_answer=expert_answer,
                               trained_rates=tuple(trained_rate or ()))
    with counting("sampling posteriors") as progress:
        result = calibrate_model(model, data, out, request, ensemble or [], progress)
    for shown in result.tables:
        report.print(table(shown.title, shown.columns, shown.rows))
    report.print(result.footer)
