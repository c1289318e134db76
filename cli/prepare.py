"""`galzoo prepare`: turn a source of galaxy images and votes into TFRecord shards + manifest."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from galzoo_cli.console import (
    EngineName,
    Scheduler,
    console,
    counting,
    engine_for,
    friendly_errors,
    report,
    table,
    transferring,
)

app = typer.Typer(
    help="Write sharded TFRecords and a manifest.json from a source of galaxies.\n\n"
         "Every later command (train, calibrate, predict, acquire) reads what prepare writes. "
         "Re-running the same prepare is a no-op; an interrupted one resumes.",
    rich_markup_mode="rich", invoke_without_command=True)

SOURCES = [
    ["synthetic", "simulated GZ2-like galaxies (GalSim) and volunteers, with the truth; no download",
     "galzoo prepare synthetic --n 20000 --out data/synthetic"],
    ["gz2", "the real Galaxy Zoo 2 catalogue and images (or --download them)",
     "galzoo prepare gz2 --catalogue gz2_hart16.csv.gz --images images/ --mapping map.csv"],
    ["folder", "your own project: a folder of images and a CSV of vote counts",
     "galzoo prepare folder --images DIR --labels votes.csv --out data/mine"],
    ["fits", "your own FITS cutouts and a table of L_B/L_T, R_e and flux, for parameter models (GaMPEN)",
     "galzoo prepare fits --images cutouts/ --table parameters.csv --out data/params"],
]


@app.callback()
def sources(context: typer.Context) -> None:
    """With no source: list the sources and how to make the default data set."""
    if context.invoked_subcommand is None:
        report.print(table("sources for galzoo prepare", ["source", "what", "example"], SOURCES))
        report.print("The embedded default needs no download: [bold]galzoo prepare synthetic --n 20000 "
                     "--out data/synthetic[/] (`galzoo prepare SOURCE --help` for options).")

Out = Annotated[Path, typer.Option("--out", "-o", help="Folder for the shards and manifest.json.")]
Seed = Annotated[int, typer.Option(help="Seed of the train/val/test split and of the shard order.")]
Size = Annotated[int, typer.Option(help="Side in pixels of the stored square images (antialiased resize).",
                                   min=8)]
ShardSize = Annotated[int, typer.Option(help="Galaxies per shard file (~200 MB at 1000 x 256x256x3).", min=1)]
Workers = Annotated[int, typer.Option(help="Processes decoding images with the local engine (0: in this "
                                           "process). Default: the number of cores.", min=0)]
TestSize = Annotated[float, typer.Option(help="Test split: a count (e.g. 2500, as Walmsley et al. 2019) "
                                              "or a fraction below 1 (e.g. 0.2).", min=0)]
ValFraction = Annotated[float, typer.Option(help="Fraction of the non-test galaxies kept for validation.",
                                            min=0, max=0.99)]
Encoding = Annotated[str, typer.Option(help="How images are stored in records: 'raw' bytes (fastest to "
                                            "read) or lossless 'png' (smaller). See docs/records.md.")]
SkipBad = Annotated[bool, typer.Option("--skip-bad", help="Skip bad rows and images (counted by reason "
                                                          "in the summary) instead of stopping at the first.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace records in --out that came from "
                                                             "other inputs or options.")]
MinVotes = Annotated[list[str] | None, typer.Option(
    "--min-votes", help="Drop galaxies with fewer votes N for a question: QUESTION=N, repeatable "
                        "(e.g. --min-votes bar=10). 'smooth=0' switches the GZ2 default off.")]


def _write(catalogue, out: Path, *, seed: int, size: int, shard_size: int, workers: int | None,
           test_size: float, val_fraction: float, encoding: str, skip_bad: bool, overwrite: bool,
           engine: str = "local", scheduler: str | None = None):
    """Write records with a progress bar, then print the summary table; returns the summary."""
    from galzoo_tf.prepare import PrepareOptions, write_records

    options = PrepareOptions(size=size, shard_size=shard_size, seed=seed, test_size=test_size,
                             val_fraction=val_fraction, encoding=encoding, skip_bad=skip_bad)
    workers = (os.cpu_count() or 1) if workers is None else workers
    with engine_for(engine, scheduler) as started, counting("writing records") as progress:
        summary = write_records(catalogue, out, options, workers=workers, progress=progress,
                                overwrite=overwrite, engine=started)
    rows = [[label if i == 0 else f"  dropped: {label}", n] for i, (label, n) in enumerate(summary.cuts)]
    rows += [[f"{split}", n] for split, n in summary.splits.items()]
    rows.append(["total written", sum(summary.splits.values())])
    report.print(table(f"galaxies in {out}", ["", "galaxies"], rows))
    if summary.up_to_date:
        report.print("[green]up to date:[/] records already match these inputs and options; nothing written")
    else:
        written = sum(summary.splits.values())
        report.print(f"wrote {summary.shards_written} shard(s), kept {summary.shards_reused} finished ones, "
                     f"in {summary.seconds:.1f} s ({written / max(summary.seconds, 1e-9):,.0f} galaxies/s)")
    return summary


@app.command("gz2")
@friendly_errors
def gz2(
    catalogue: Annotated[Path | None, typer.Option(help="Hart et al. 2016 catalogue (gz2_hart16.csv[.gz] or "
                                                        ".fits[.gz]) or a Willett et al. 2013 table.")] = None,
    images: Annotated[Path | None, typer.Option(help="Folder of GZ2 images: <asset_id>.jpg with --mapping, "
                                                     "else <dr7objid>.jpg/.png.")] = None,
    mapping: Annotated[Path | None, typer.Option(help="Zenodo gz2_filename_mapping.csv (objid, sample, "
                                                      "asset_id).")] = None,
    out: Out = Path("data/gz2/records"),
    download: Annotated[bool, typer.Option("--download", help="Fetch the public catalogue, mapping and "
                                                              "image archive (~3 GB) into --cache first, "
                                                              "with resume and checksums.")] = False,
    cache: Annotated[Path, typer.Option(help="Where --download keeps its files.")] = Path("data/gz2/download"),
    mirror: Annotated[str | None, typer.Option(help="Base URL replacing the public hosts for --download "
                                                    "(an institutional mirror).")] = None,
    keep_stripe82: Annotated[bool, typer.Option("--keep-stripe82", help="Keep the stripe82* samples "
                                                                        "(dropped by default).")] = False,
    min_votes: MinVotes = None,
    test_size: TestSize = 2500,
    val_fraction: ValFraction = 0.1,
    seed: Seed = 0,
    size: Size = 256,
    shard_size: ShardSize = 1000,
    workers: Workers = None,
    engine: EngineName = "local",
    scheduler: Scheduler = None,
    encoding: Encoding = "raw",
    skip_bad: SkipBad = False,
    overwrite: Overwrite = False,
) -> None:
    """Galaxy Zoo 2: the real catalogue and images, with Walmsley et al. (2019) cuts.

    By default drops stripe82 samples and galaxies with fewer than 36 smooth-or-featured votes, resizes the 424x424 images to 256x256 and splits train/val/test with 2500 test galaxies.
    """  # noqa: E501
    from galzoo_tf.labels import parse_min_votes
    from galzoo_tf.schema import load_schema
    from galzoo_tf.sources.gz2 import DEFAULT_MIN_VOTES, load_gz2

    if download:
        from galzoo_tf.sources.download import download_gz2

        with transferring() as progress:
            fetched = download_gz2(cache, mirror=mirror, progress=progress,
                                   warn=lambda m: console.print(f"[yellow]warning:[/] {m}"))
        catalogue = catalogue or fetched["catalogue"]
        mapping = mapping or fetched["mapping"]
        images = images or fetched["images"]
    if catalogue is None or images is None:
        raise typer.BadParameter("give --catalogue and --images, or --download")
    cuts = {**DEFAULT_MIN_VOTES, **parse_min_votes(min_votes or [], load_schema("gz2"))}
    with console.status("reading and checking the catalogue"):
        source = load_gz2(catalogue, images, mapping=mapping, keep_stripe82=keep_stripe82, min_votes=cuts,
                          skip_bad=skip_bad)
    _write(source, out, seed=seed, size=size, shard_size=shard_size, workers=workers, test_size=test_size,
           val_fraction=val_fraction, encoding=encoding, skip_bad=skip_bad, overwrite=overwrite,
           engine=engine, scheduler=scheduler)


@app.command("folder")
@friendly_errors
def folder(
    images: Annotated[Path, typer.Option(help="Folder of JPEG/PNG or FITS images (not mixed).")],
    labels: Annotated[Path, typer.Option(help="CSV with 'id' (or the tree's id column), the tree's count "
                                              "columns (<stem>_count for gz2), and optionally 'file', "
                                              "'split', 'ra', 'dec', 'truth/...'.")],
    out: Out,
    schema: Annotated[str, typer.Option(help="Decision tree: a shipped name (gz2) or a tree .json file.")]
    = "gz2",
    min_votes: MinVotes = None,
    test_size: TestSize = 0.2,
    val_fraction: ValFraction = 0.1,
    seed: Seed = 0,
    size: Size = 256,
    shard_size: ShardSize = 1000,
    workers: Workers = None,
    engine: EngineName = "local",
    scheduler: Scheduler = None,
    encoding: Encoding = "raw",
    skip_bad: SkipBad = False,
    overwrite: Overwrite = False,
) -> None:
    """Your own project: a folder of images and a CSV of vote counts per answer.

    JPEG/PNG become 256x256x3 uint8; FITS become float32 with one channel per plane, NaN pixels filled with the median of the finite ones. A 'split' column, if present, is used as given.
    """  # noqa: E501
    from galzoo_tf.labels import parse_min_votes
    from galzoo_tf.schema import load_schema
    from galzoo_tf.sources.folder import load_folder

    tree = load_schema(schema)
    with console.status("reading and checking the labels"):
        source = load_folder(images, labels, schema=tree, min_votes=parse_min_votes(min_votes or [], tree),
                             skip_bad=skip_bad)
    _write(source, out, seed=seed, size=size, shard_size=shard_size, workers=workers, test_size=test_size,
           val_fraction=val_fraction, encoding=encoding, skip_bad=skip_bad, overwrite=overwrite,
           engine=engine, scheduler=scheduler)


@app.command("fits")
@friendly_errors
def fits(
    images: Annotated[Path, typer.Option(help="Folder of FITS cutouts (.fits, .fit, .fits.gz, ...): one 2-D "
                                              "image or 3-D cube (planes = bands) each.")],
    table: Annotated[Path, typer.Option(help="CSV or FITS table: 'id', 'bulge_to_total', 'r_e_arcsec', 'flux' "
                                             "(or truth/...), and optionally 'file', 'split', 'ra', 'dec'.")],
    out: Out,
    test_size: TestSize = 0.2,
    val_fraction: ValFraction = 0.1,
    seed: Seed = 0,
    size: Annotated[int | None, typer.Option(help="Resample the cutouts to this side in pixels (Lanczos). "
                                                  "Default: keep their own size, which keeps pixel scale "
                                                  "and counts as the table's R_e and flux assume.", min=8)]
    = None,
    shard_size: ShardSize = 1000,
    workers: Workers = None,
    engine: EngineName = "local",
    scheduler: Scheduler = None,
    skip_bad: SkipBad = False,
    overwrite: Overwrite = False,
) -> None:
    """Your own FITS cutouts and a table of morphological parameters, for `galzoo train --task parameters`.

    The table (CSV or FITS) holds one row per galaxy: 'id'; 'bulge_to_total', the bulge-to-total light ratio L_B/L_T from 0 to 1; 'r_e_arcsec', the effective (half-light) radius in arcsec, > 0; 'flux', the total flux in the cutout's own counts (the units of its pixels), > 0. These may also be named truth/bulge_to_total, truth/r_e_arcsec and truth/flux. Optional: 'file', the cutout's path relative to --images (default: the file named after the id, e.g. 1234.fits); 'split' (train/val/test, used as given); 'ra' and 'dec' in degrees.

    Cutouts must be square FITS images, best all of one size (GaMPEN's HSC cutouts are 239x239): by default the first cutout's size is kept and one of another size is resampled to it. They are stored as float32 with one channel per plane, NaN pixels filled with the median of the finite ones. A row with a blank, non-numeric or out-of-range parameter, or a cutout that is missing, not FITS or outside --images, stops the run naming it; --skip-bad skips and counts them instead.

    Example: galzoo prepare fits --images cutouts/ --table parameters.csv --out data/params, then galzoo train --task parameters --data data/params --out models/gampen --image-size 239.
    """  # noqa: E501
    from galzoo_tf.sources.fits_table import load_fits_parameters, native_side

    with console.status("reading and checking the table"):
        source = load_fits_parameters(images, table, skip_bad=skip_bad)
    if size is None:
        size = native_side(source.table["path"])
    _write(source, out, seed=seed, size=size, shard_size=shard_size, workers=workers, test_size=test_size,
           val_fraction=val_fraction, encoding="raw", skip_bad=skip_bad, overwrite=overwrite,
           engine=engine, scheduler=scheduler)
    report.print(f"next: [bold]galzoo train --task parameters --data {out} --out MODEL --image-size {size}[/]",
                 soft_wrap=True)


@app.command("synthetic")
@friendly_errors
def synthetic(
    n: Annotated[int, typer.Option("--n", help="Number of galaxies to simulate.", min=1)] = 20000,
    out: Out = Path("data/synthetic"),
    survey: Annotated[str, typer.Option(help="'sdss': GZ2-like 256x256 gri colour cutouts framed by galaxy "
                                             "size; 'hsc': HSC-like g-band float32 images at 0.168\"/px "
                                             "(GaMPEN's setting); 'hsc-poor': the same with worse seeing "
                                             "and twice the sky noise (a second domain for transfer "
                                             "learning).")] = "sdss",
    overdispersion: Annotated[float, typer.Option(help="How much the volunteers who see the same galaxy err "
                                                       "together: their answer probabilities are drawn from "
                                                       "Dirichlet(rho / X). 0: plain multinomial votes.",
                                                  min=0)] = 0.0,
    test_size: TestSize = 0.125,
    val_fraction: ValFraction = 0.1,
    seed: Seed = 0,
    shard_size: ShardSize = 1000,
    workers: Workers = None,
    engine: EngineName = "local",
    scheduler: Scheduler = None,
    encoding: Encoding = "raw",
    overwrite: Overwrite = False,
) -> None:
    """The embedded default: simulated galaxies (GalSim) and simulated volunteers answering the GZ2 tree.

    Every record carries the truth (L_B/L_T, R_e, flux, bar, arms, inclination, merger/star flags, and rho of every answer). The same seed gives the same records byte for byte whatever --workers. A montage.png of sample galaxies is written beside the records.
    """  # noqa: E501
    from galzoo_tf.plots import record_montage
    from galzoo_tf.sim.population import SURVEYS
    from galzoo_tf.sources.synthetic import load_synthetic

    if survey not in SURVEYS:
        raise typer.BadParameter(f"choose one of {', '.join(SURVEYS)}", param_hint="--survey")
    with console.status("drawing galaxies and volunteers"):
        source = load_synthetic(n, seed=seed, survey=survey, overdispersion=overdispersion)
    size = source.image_spec.shape[0]
    _write(source, out, seed=seed, size=size, shard_size=shard_size, workers=workers, test_size=test_size,
           val_fraction=val_fraction, encoding=encoding, skip_bad=False, overwrite=overwrite,
           engine=engine, scheduler=scheduler)
    picture = record_montage(out, out / "montage.png")
    report.print(f"montage of sample galaxies: {picture}")
