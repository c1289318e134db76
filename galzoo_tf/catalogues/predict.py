"""`galzoo predict`: one posterior catalogue for any task, as one file or as a partitioned folder.

The task of the models (``galzoo_tf.tasks.registry.task_of``) gives the rows and the provenance; the
shared writer streams them to a FITS, CSV or Parquet file (resumable), or the partitioned
writer to one Parquet part per input shard on any engine (``--out DIR``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from galzoo_tf.catalogues.formats import PROVENANCE, SETTINGS, provenance_path
from galzoo_tf.catalogues.partitioned import predict_partitioned
from galzoo_tf.catalogues.writer import CatalogueKind, PredictResult, catalogue_settings, stream_catalogue
from galzoo_tf.data.inputs import FolderSource, ImageInputs, RecordSource
from galzoo_tf.engine import LOCAL, EngineSpec, LocalEngine, Starter, running
from galzoo_tf.errors import BadInputError
from galzoo_tf.outputs import Output, writing
from galzoo_tf.tasks.registry import load_models, task_of
from galzoo_tf.tasks.requests import PredictRequest
from galzoo_tf.training.model_dir import SavedModel


def predict(models: Sequence[SavedModel], source: RecordSource | FolderSource, out: Path, options: Any,
            resume: bool = False, overwrite: bool = False,
            progress: Callable[[int, int], None] | None = None, kind: CatalogueKind | None = None) -> PredictResult:
    """Sample every galaxy of ``source`` with the models' task (or ``kind``) and write the catalogue ``out``
    (format from its extension), streamed and resumable.

    >>> from galzoo_tf import PredictRequest, RecordSource, load_model, task_of
    >>> model = load_model("data/demo/bar-model")  # doctest: +SKIP
    >>> options = task_of([model]).predict_options(PredictRequest(passes=30), [model])  # doctest: +SKIP
    >>> predict([model], RecordSource("data/demo/synthetic", "test"), "bar.fits", options)  # doctest: +SKIP
    """
    kind, models, out = kind or task_of(models), list(models), Path(out)
    settings = catalogue_settings([m.checksum() for m in models], source, options)
    return stream_catalogue(source, out, settings, options, kind.catalogue_rows(models, options, out),
                            kind.catalogue_provenance(models, source, options), resume, overwrite, progress)


def check_kaggle_output(out: Path, merge: Path | None) -> None:
    """The challenge's layout is a CSV: one file, or a folder of parts merged into one."""
    final = merge if merge is not None else out
    if final.suffix.lower() != ".csv":
        raise BadInputError("bad option", f"--format kaggle writes the challenge's CSV layout: give --out FILE.csv "
                                          f"(or --out DIR --merge FILE.csv), not {final}")


def predict_catalogue(model_dirs: Sequence[Path], inputs: ImageInputs, out: Path, request: PredictRequest,
                      engine: EngineSpec = LOCAL, start: Starter = running, resume: bool = False,
                      overwrite: bool = False, merge: Path | None = None,
                      progress: Callable[[int, int], None] | None = None) -> PredictResult:
    """`galzoo predict` whole: check the options, load the models, open the input, make the task's options,
    start the engine (``start``: how it is started and shown) and write the catalogue.

    ``out`` without a suffix is a partitioned folder (any engine, ``merge`` joins its parts);
    with one it is a single file written in this process (``resume`` continues it).

    >>> predict_catalogue([Path("data/demo/bar-model")], ImageInputs(records=Path("data/demo/synthetic"),
    ...                   split="test"), Path("bar-test.fits"), PredictRequest(passes=30))  # doctest: +SKIP
    """
    out = Path(out)
    partitioned = out.suffix == ""
    if engine.distributed and not partitioned:
        raise BadInputError("bad option", f"--out {out}: the Dask engine writes one Parquet part per shard; "
                                          "give --out DIR (a folder) and --merge FILE for one catalogue")
    if merge is not None and not partitioned:
        raise BadInputError("bad option", "--merge joins the parts of a partitioned catalogue: give --out DIR")
    outputs = [Output.directory(out, markers=(SETTINGS, PROVENANCE)) if partitioned else
               Output.file(out, also=[provenance_path(out)])]
    if merge is not None:
        outputs.append(Output.file(merge, "--merge", also=[provenance_path(merge)]))
    if request.format == "kaggle":
        check_kaggle_output(out, merge)
    with writing(outputs, [*inputs.paths(), *[("model directory", path) for path in model_dirs]]):
        models = load_models(model_dirs)
        source = inputs.open(models[0].image)
        task = task_of(models)
        options, kind = task.catalogue_format(request.format, models, task.predict_options(request, models))
        if not partitioned:
            result = predict(models, source, out, options, resume=resume, overwrite=overwrite, progress=progress,
                             kind=kind)
        else:
            with start(engine) as started:
                result = predict_partitioned(models, source, out, options, started or LocalEngine(), overwrite,
                                             merge, progress, kind)
    return replace(result, samples_per_galaxy=options.passes * len(models))
