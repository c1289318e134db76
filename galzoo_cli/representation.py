"""`galzoo embed`, `galzoo similar`, `galzoo anomalies`: a vote model's representation, and searches in it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from galzoo_cli import options as shared
from galzoo_cli.console import counting, engine_for, friendly_errors, report, table
from galzoo_tf.engine import EngineSpec

Embeddings = Annotated[Path, typer.Option(help="Embeddings from `galzoo embed` (.parquet file or folder of "
                                               "parts).")]
Montage = Annotated[bool, typer.Option("--montage/--no-montage", help="Draw the galaxies (OUT-montage.png), read "
                                                                      "back from the embeddings' input.")]


@friendly_errors
def embed(
    model: Annotated[Path, typer.Option("--model", "-m", help="A vote model directory from `galzoo train`, or "
                                                              "'base' (the shipped base model).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Embeddings file (.parquet: columns id and embedding), "
                                                          "or a folder (no suffix): one Parquet part per input "
                                                          "shard, any engine.")],
    data: Annotated[Path | None, typer.Option(help="Record folder from `galzoo prepare`.")] = None,
    images: shared.Images = None,
    fits_dir: shared.FitsDir = None,
    split: Annotated[str | None, typer.Option(help="With --data: only this split (train, val, test).")] = None,
    views: Annotated[int, typer.Option(help="Average the features of this many augmented views of each galaxy "
                                            "(rotations, flips, crops); 1: the image as it is.", min=1)] = 1,
    batch_size: shared.BatchSize = 64,
    seed: shared.Seed = 0,
    skip_bad: shared.SkipBad = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from the rows it "
                                                          "wrote.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing embeddings file.")] = False,
    engine: shared.EngineName = "local",
    scheduler: shared.Scheduler = None,
) -> None:
    """Write every galaxy's embedding: the trunk's pooled features before the MC dropout head, the representation to fine-tune on, search by similarity (`galzoo similar`) and mine for the unusual (`galzoo anomalies`).

    Streamed like `galzoo predict`: memory is bounded by the batch, an interrupted run continues with --resume, and with --out DIR each shard is one Parquet part (--engine dask runs them on a cluster). Load it with pandas or pyarrow: one row per galaxy, `embedding` a fixed-length list of float32. docs/representation.md.
    """  # noqa: E501
    from galzoo_tf.data.inputs import ImageInputs
    from galzoo_tf.representation.embed import EmbedOptions, embed_catalogue

    options = EmbedOptions(views=views, seed=seed, batch_size=batch_size)
    with counting("embedding") as progress:
        result = embed_catalogue(model, ImageInputs(data, images, fits_dir, split, skip_bad), out, options,
                                 EngineSpec(engine, scheduler), engine_for, resume, overwrite, progress)
    rows = [["galaxies", f"{result.rows:,}"], ["views per galaxy", str(views)],
            ["speed", f"{result.galaxies_per_second:,.1f} galaxies/s"]]
    rows += [[f"skipped: {reason}", f"{count:,}"] for reason, count in result.skipped.items()]
    report.print(table(f"embeddings {out}", ["", ""], rows))


def _print(result, title: str, value: str) -> None:
    rows = [[str(r["rank"]), r["id"], f"{r[value]:.4f}"] for _, r in result.rows.head(20).iterrows()]
    report.print(table(title, ["rank", "id", value], rows))
    report.print(f"list: {result.path}" + (f"; montage: {result.montage}" if result.montage else ""))


@friendly_errors
def similar(
    embeddings: Embeddings,
    galaxy_id: Annotated[str, typer.Option("--id", help="The galaxy to find look-alikes of (an id of the "
                                                        "embeddings file).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV of rank, id and cosine similarity.")],
    n: Annotated[int, typer.Option("--n", help="Neighbours to list.", min=1)] = 16,
    montage: Montage = True,
) -> None:
    """List the galaxies whose embeddings are closest to one galaxy's (cosine similarity; the galaxy itself is left out), with a montage: query first, then its neighbours."""  # noqa: E501
    from galzoo_tf.representation.search import similar as search

    _print(search(embeddings, galaxy_id, out, n, montage), f"most similar to {galaxy_id}", "similarity")


@friendly_errors
def anomalies(
    embeddings: Embeddings,
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV of rank, id and anomaly score.")],
    n: Annotated[int, typer.Option("--n", help="Galaxies to list.", min=1)] = 100,
    method: Annotated[str, typer.Option(help="'isolation-forest' (scikit-learn, on standardised embeddings) or "
                                             "'knn' (mean cosine distance to the 10 nearest neighbours).")]
    = "isolation-forest",
    seed: Annotated[int, typer.Option(help="Seed of the isolation forest.")] = 0,
    montage: Montage = True,
) -> None:
    """List the most unusual galaxies of an embeddings file, most unusual first, with a montage of the top 24: mergers, artefacts, lenses and the like are what volunteers and experts look at first."""  # noqa: E501
    from galzoo_tf.representation.search import anomalies as search

    _print(search(embeddings, out, n, method, seed, montage), f"most unusual by {method}", "score")
