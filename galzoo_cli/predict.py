"""`galzoo predict`: a posterior catalogue (FITS, CSV or Parquet) from trained vote or parameter models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from galzoo_cli import options as shared
from galzoo_cli.console import counting, engine_for, friendly_errors, report, table
from galzoo_tf.engine import EngineSpec

Models = Annotated[list[Path], typer.Option("--model", "-m", help="Model directory from `galzoo train`; repeat "
                                                                   "for an ensemble (samples are pooled).")]


@friendly_errors
def predict(
    model: Models,
    out: Annotated[Path, typer.Option("--out", "-o", help="Catalogue file: .fits (astropy table), .csv or "
                                                          ".parquet, with a provenance .json beside it; or a "
                                                          "folder (no suffix): one Parquet part per input "
                                                          "shard, any engine, a re-run skips written parts.")],
    data: Annotated[Path | None, typer.Option(help="Record folder from `galzoo prepare`.")] = None,
    images: shared.Images = None,
    fits_dir: shared.FitsDir = None,
    split: Annotated[str | None, typer.Option(help="With --data: only this split (train, val, test).")] = None,
    passes: shared.TaskPasses = None,
    tta: shared.Tta = True,
    batch_size: shared.BatchSize = 32,
    seed: shared.Seed = 0,
    save_samples: Annotated[bool, typer.Option("--save-samples", help="Also store every rho sample (an array "
                                                                      "column per answer).")] = False,
    interval: Annotated[float, typer.Option(help="Central interval of the predicted vote fraction.",
                                            min=0.01, max=0.999)] = 0.9,
    dropout_rate: Annotated[float | None, typer.Option(help="Test-time dropout rate (default: the one "
                                                            "`galzoo calibrate --tune-dropout` chose, else "
                                                            "the training rate).", min=0, max=0.99)] = None,
    skip_bad: shared.SkipBad = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from the rows it "
                                                          "wrote.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing catalogue.")] = False,
    corner: Annotated[list[str] | None, typer.Option(help="Parameter models: draw the joint posterior of this "
                                                          "galaxy id as a corner plot (OUT-corner-ID.png); "
                                                          "repeatable.")] = None,
    engine: shared.EngineName = "local",
    scheduler: shared.Scheduler = None,
    merge: Annotated[Path | None, typer.Option(help="With --out DIR: also join the parts into this one "
                                                    "catalogue (.fits, .csv or .parquet).")] = None,
    output_format: Annotated[str, typer.Option("--format", help="'posterior': every answer's rho summaries and vote "
                                                         "fraction (docs/posteriors.md); 'kaggle': the Kaggle "
                                                         "challenge's CSV, GalaxyID and the 37 tree-weighted "
                                                         "probabilities Class1.1 ... Class11.6, from a vote model "
                                                         "of every question (docs/kaggle.md).")] = "posterior",
) -> None:
    """Write a posterior catalogue: for every galaxy and answer, rho's mean, spread and percentiles, and the predicted vote fraction with its interval at the question's typical N; for a parameter model (GaMPEN), the mode, median and 68/95/99.7 % highest-density intervals of L_B/L_T, R_e and flux, with qualitative flags.

    Memory is bounded by the batch, never by the catalogue: rows are flushed to disk as they come, so an interrupted run continues with --resume. With --out DIR the catalogue is one Parquet part per input shard, written by this process or by a Dask cluster (--engine dask --scheduler local:N or ADDRESS), and a re-run skips the parts already written; --merge FILE joins them. Columns: docs/posteriors.md and docs/parameters.md.
    """  # noqa: E501
    from galzoo_tf.catalogues.predict import predict_catalogue
    from galzoo_tf.data.inputs import ImageInputs
    from galzoo_tf.tasks.requests import PredictRequest

    request = PredictRequest(passes=passes, tta=tta, seed=seed, save_samples=save_samples, interval=interval,
                             dropout_rate=dropout_rate, batch_size=batch_size, corner_ids=tuple(corner or ()),
                             format=output_format)
    inputs = ImageInputs(data, images, fits_dir, split, skip_bad)
    with counting("predicting") as progress:
        result = predict_catalogue(model, inputs, out, request, EngineSpec(engine, scheduler), engine_for, resume,
                                   overwrite, merge, progress)
    rows = [["galaxies", f"{result.rows:,}"], ["samples per galaxy", f"{result.samples_per_galaxy}"],
            ["speed", f"{result.galaxies_per_second:,.1f} galaxies/s"]]
    rows += [[f"skipped: {reason}", f"{count:,}"] for reason, count in result.skipped.items()]
    title = "Kaggle-format predictions" if output_format == "kaggle" else "posterior catalogue"
    report.print(table(f"{title} {out}", ["", ""], rows))
    if merge is not None:
        report.print(f"merged catalogue: {merge}")
