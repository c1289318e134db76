"""`galzoo predict`: a posterior catalogue (FITS, CSV or Parquet) from a trained vote model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from galzoo_cli.console import EngineName, Scheduler, counting, engine_for, friendly_errors, report, table
from galzoo_tf.errors import BadInputError

Models = Annotated[list[Path], typer.Option("--model", "-m", help="Model directory from `galzoo train`; repeat "
                                                                   "for an ensemble (samples are pooled).")]
Passes = Annotated[int, typer.Option(help="Posterior samples T per galaxy and model (MC dropout x test-time "
                                          "augmentation).", min=1)]
TaskPasses = Annotated[int | None, typer.Option(help="Posterior samples T per galaxy and model: MC dropout x "
                                                     "test-time augmentation for vote models (default 30); "
                                                     "dropout passes with one MVN draw each for parameter "
                                                     "models (default 1000 for predict, 100 for calibrate).",
                                                min=1)]
Tta = Annotated[bool, typer.Option("--tta/--no-tta", help="Augment each pass (default), or run the "
                                                          "convolutional trunk once and sample only dropout "
                                                          "(about T times faster).")]
BatchSize = Annotated[int, typer.Option(help="Galaxies per batch (each is run T times at once).", min=1)]
Seed = Annotated[int, typer.Option(help="Seed of every augmentation and dropout mask (keyed per galaxy).")]


def image_source(data: Path | None, images: Path | None, fits_dir: Path | None, split: str | None, skip_bad: bool,
            image_spec):
    from galzoo_tf.inputs import FolderSource, RecordSource

    given = [p for p in (data, images, fits_dir) if p is not None]
    if len(given) != 1:
        raise BadInputError("bad option", "give exactly one input: --data RECORDS, --images DIR or --fits DIR")
    if data is not None:
        return RecordSource(data, split)
    return FolderSource(images or fits_dir, image_spec, fits_only=fits_dir is not None, skip_bad=skip_bad)


@friendly_errors
def predict(
    model: Models,
    out: Annotated[Path, typer.Option("--out", "-o", help="Catalogue file: .fits (astropy table), .csv or "
                                                          ".parquet, with a provenance .json beside it; or a "
                                                          "folder (no suffix): one Parquet part per input "
                                                          "shard, any engine, a re-run skips written parts.")],
    data: Annotated[Path | None, typer.Option(help="Record folder from `galzoo prepare`.")] = None,
    images: Annotated[Path | None, typer.Option(help="Folder of JPEG/PNG/FITS images (searched recursively); "
                                                     "the id is the path without suffix.")] = None,
    fits_dir: Annotated[Path | None, typer.Option("--fits", help="Folder of FITS images or cubes (NaN pixels "
                                                                  "are filled with the median).")] = None,
    split: Annotated[str | None, typer.Option(help="With --data: only this split (train, val, test).")] = None,
    passes: TaskPasses = None,
    tta: Tta = True,
    batch_size: BatchSize = 32,
    seed: Seed = 0,
    save_samples: Annotated[bool, typer.Option("--save-samples", help="Also store every rho sample (an array "
                                                                      "column per answer).")] = False,
    interval: Annotated[float, typer.Option(help="Central interval of the predicted vote fraction.",
                                            min=0.01, max=0.999)] = 0.9,
    dropout_rate: Annotated[float | None, typer.Option(help="Test-time dropout rate (default: the one "
                                                            "`galzoo calibrate --tune-dropout` chose, else "
                                                            "the training rate).", min=0, max=0.99)] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable or wrong-size images (counted) "
                                                              "instead of stopping.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from the rows it "
                                                          "wrote.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing catalogue.")] = False,
    corner: Annotated[list[str] | None, typer.Option(help="Parameter models: draw the joint posterior of this "
                                                          "galaxy id as a corner plot (OUT-corner-ID.png); "
                                                          "repeatable.")] = None,
    engine: EngineName = "local",
    scheduler: Scheduler = None,
    merge: Annotated[Path | None, typer.Option(help="With --out DIR: also join the parts into this one "
                                                    "catalogue (.fits, .csv or .parquet).")] = None,
) -> None:
    """Write a posterior catalogue: for every galaxy and answer, rho's mean, spread and percentiles, and the predicted vote fraction with its interval at the question's typical N; for a parameter model (GaMPEN), the mode, median and 68/95/99.7 % highest-density intervals of L_B/L_T, R_e and flux, with qualitative flags.

    Memory is bounded by the batch, never by the catalogue: rows are flushed to disk as they come, so an interrupted run continues with --resume. With --out DIR the catalogue is one Parquet part per input shard, written by this process or by a Dask cluster (--engine dask --scheduler local:N or ADDRESS), and a re-run skips the parts already written; --merge FILE joins them. Columns: docs/posteriors.md and docs/parameters.md.
    """  # noqa: E501
    from galzoo_tf.engine import EngineSpec
    from galzoo_tf.model_dir import ParameterModel, load_model

    if not model:
        raise BadInputError("bad option", "give a model: --model DIR (from `galzoo train`)")
    models = [load_model(path) for path in model]
    if any(type(m) is not type(models[0]) for m in models):
        raise BadInputError("bad option", "the --model directories mix vote and parameter models; give one kind")
    partitioned = out.suffix == ""
    if EngineSpec(engine, scheduler).distributed and not partitioned:
        raise BadInputError("bad option", f"--out {out}: the Dask engine writes one Parquet part per shard; "
                                          "give --out DIR (a folder) and --merge FILE for one catalogue")
    if merge is not None and not partitioned:
        raise BadInputError("bad option", "--merge joins the parts of a partitioned catalogue: give --out DIR")
    source = image_source(data, images, fits_dir, split, skip_bad, models[0].image)
    if isinstance(models[0], ParameterModel):
        from galzoo_tf.parameter_predict import ParameterPredictOptions

        if len(models) > 1:
            raise BadInputError("bad option", "parameter models predict one at a time: give one --model")
        options = ParameterPredictOptions(passes=passes or 1000, seed=seed, save_samples=save_samples,
                                          dropout_rate=dropout_rate, batch_size=batch_size,
                                          corner_ids=tuple(corner or ()))
    else:
        from galzoo_tf.predict import PredictOptions

        options = PredictOptions(passes=passes or 30, tta=tta, seed=seed, save_samples=save_samples,
                                 interval=interval, dropout_rate=dropout_rate, batch_size=batch_size)
    with engine_for(engine, scheduler) as started, counting("predicting") as progress:
        if partitioned:
            from galzoo_tf.engine import LocalEngine
            from galzoo_tf.partitioned import predict_partitioned

            result = predict_partitioned(models, source, out, options, started or LocalEngine(), overwrite, merge,
                                         progress)
        else:
            result = _predict_file(models, source, out, options, resume, overwrite, progress)
    rows = [["galaxies", f"{result.rows:,}"], ["samples per galaxy", f"{options.passes * len(models)}"],
            ["speed", f"{result.galaxies_per_second:,.1f} galaxies/s"]]
    rows += [[f"skipped: {reason}", f"{count:,}"] for reason, count in result.skipped.items()]
    report.print(table(f"posterior catalogue {out}", ["", ""], rows))
    if merge is not None:
        report.print(f"merged catalogue: {merge}")


def _predict_file(models, source, out: Path, options, resume: bool, overwrite: bool, progress):
    """One catalogue file, streamed in this process (resumable with --resume)."""
    from galzoo_tf.parameter_predict import ParameterPredictOptions, predict_parameters
    from galzoo_tf.predict import predict as run

    if isinstance(options, ParameterPredictOptions):
        return predict_parameters(models[0], source, out, options, resume=resume, overwrite=overwrite,
                                  progress=progress)
    return run(models, source, out, options, resume=resume, overwrite=overwrite, progress=progress)
