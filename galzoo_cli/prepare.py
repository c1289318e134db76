"""`galzoo prepare`: turn a source of galaxy images and votes into TFRecord shards + manifest."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from galzoo_cli import options as shared
from galzoo_cli.console import console, counting, engine_for, friendly_errors, report, table, transferring, warn
from galzoo_tf.engine import EngineSpec
from galzoo_tf.kaggle import TOLERANCE as KAGGLE_TOLERANCE

if TYPE_CHECKING:
    from galzoo_tf.data.prepare import PrepareOptions, PrepareRun, PrepareSummary

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
    ["kaggle", "the Kaggle Galaxy Zoo challenge's training_solutions_rev1.csv and GalaxyID.jpg images",
     "galzoo prepare kaggle --solutions training_solutions_rev1.csv --images images_training_rev1/"],
    ["folder", "your own project: a folder of images and a CSV of votes (counts, or Galaxy Zoo's published "
               "fractions for gz2, decals, euclid or your tree), or of one 0/1 label",
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
NativeSize = Annotated[int | None, typer.Option(help="Resample the cutouts to this side in pixels (Lanczos). "
                                                     "Default: keep their own size, which keeps pixel scale "
                                                     "and counts as the table's R_e and flux assume.", min=8)]


@dataclass(frozen=True)
class Records:
    """The options every prepare command shares, as given: what the records are (``options``) and how they are
    written and shown (``run``)."""

    given: dict[str, Any]

    def options(self) -> PrepareOptions:
        """The ``PrepareOptions`` of the options given (the library's defaults for the others)."""
        from galzoo_tf.data.prepare import PrepareOptions

        return PrepareOptions(**{f.name: self.given[f.name] for f in fields(PrepareOptions) if f.name in self.given})

    def run(self) -> PrepareRun:
        """A ``PrepareRun`` with this console's spinner and progress bars."""
        from galzoo_tf.data.prepare import PrepareRun

        return PrepareRun(workers=self.given["workers"], overwrite=self.given["overwrite"],
                          engine=lambda: engine_for(EngineSpec(self.given["engine"], self.given["scheduler"])),
                          status=console.status, counting=counting, transferring=transferring,
                          warn=warn)


def records_command(name: str, *, test_size: float, size: tuple[Any, int | None] | None = (Size, 256),
                    encoding: bool = True, skip_bad: bool = True) -> Callable:
    """Register a prepare command with the options every source shares after its own, in one order and with
    one help everywhere; the command gets them as ``records``. ``size`` is the --size option (alias, default),
    None for none; ``encoding`` and ``skip_bad`` say whether the source has those options."""
    common = [("test_size", TestSize, test_size), ("val_fraction", ValFraction, 0.1), ("seed", Seed, 0),
              *([("size", *size)] if size else []), ("shard_size", ShardSize, 1000), ("workers", Workers, None),
              ("engine", shared.EngineName, "local"), ("scheduler", shared.Scheduler, None),
              *([("encoding", Encoding, "raw")] if encoding else []),
              *([("skip_bad", SkipBad, False)] if skip_bad else []), ("overwrite", Overwrite, False)]
    options = [inspect.Parameter(option, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
               for option, annotation, default in common]

    def register(command: Callable) -> Callable:
        own = inspect.signature(command, eval_str=True)

        @functools.wraps(command)
        def with_records(**given):
            records = Records({option: given.pop(option) for option, *_ in common})
            return command(**given, records=records)

        with_records.__signature__ = own.replace(
            parameters=[*(p for p in own.parameters.values() if p.name != "records"), *options])
        return app.command(name)(friendly_errors(with_records))

    return register


def _summarise(out: Path, summary: PrepareSummary) -> None:
    """The summary table of a prepare and what it did."""
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


@records_command("gz2", test_size=2500)
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
    *,
    records: Records,
) -> None:
    """Galaxy Zoo 2: the real catalogue and images, with Walmsley et al. (2019) cuts.

    By default drops stripe82 samples and galaxies with fewer than 36 smooth-or-featured votes, resizes the 424x424 images to 256x256 and splits train/val/test with 2500 test galaxies.
    """  # noqa: E501
    from galzoo_tf.data.prepare import prepare_gz2

    summary = prepare_gz2(out, records.options(), records.run(), catalogue=catalogue, images=images, mapping=mapping,
                          download=cache if download else None, mirror=mirror, keep_stripe82=keep_stripe82,
                          min_votes=min_votes or ())
    _summarise(out, summary)


@records_command("kaggle", test_size=0.2)
def kaggle(
    solutions: Annotated[Path, typer.Option(help="The challenge's training_solutions_rev1.csv: GalaxyID and the 37 "
                                                 "weighted vote fractions Class1.1 ... Class11.6.")],
    images: Annotated[Path, typer.Option(help="Folder of the challenge's images, named <GalaxyID>.jpg "
                                              "(images_training_rev1/).")],
    out: Out = Path("data/kaggle/records"),
    votes: Annotated[int | None, typer.Option(help="Pseudo-votes per galaxy: each question gets this N times "
                                                   "its weight in the release (the fraction of volunteers "
                                                   "reaching it), shared among its answers. Default: 40, GZ2's "
                                                   "typical N for its first question.", min=1)] = None,
    tolerance: Annotated[float, typer.Option(help="How far a question's answers may sum from their parent's "
                                                  "fraction before the row is refused.", min=0)] = KAGGLE_TOLERANCE,
    min_votes: MinVotes = None,
    *,
    records: Records,
) -> None:
    """The Kaggle Galaxy Zoo challenge (61,578 GZ2 galaxies): weighted vote fractions, turned into pseudo-counts.

    Each row's 37 fractions are checked against the GZ2 tree (a question's answers sum to the fraction of the answer leading to it; question 6 to 1, as the release made it) and a row that does not fit stops the run naming it (--skip-bad skips and counts such rows). The fractions become each question's conditional fractions and pseudo-counts at --votes per galaxy, so vote models train on them, and stay in the records for the challenge's 37-answer RMSE (`galzoo calibrate`). Images are resized to --size. See docs/kaggle.md.
    """  # noqa: E501
    from galzoo_tf.data.prepare import prepare_kaggle

    summary = prepare_kaggle(solutions, images, out, records.options(), records.run(), volunteers=votes,
                             tolerance=tolerance, min_votes=min_votes or ())
    _summarise(out, summary)
    report.print(f"next: [bold]galzoo train --data {out} --question all --out MODEL[/], then [bold]galzoo predict "
                 "--model MODEL --data ... --format kaggle --out predictions.csv[/]", soft_wrap=True)


@records_command("folder", test_size=0.2)
def folder(
    images: Annotated[Path, typer.Option(help="Folder of JPEG/PNG or FITS images (not mixed).")],
    labels: Annotated[Path, typer.Option(help="CSV with 'id' (or the tree's id column), each question's count "
                                              "columns (<stem>_count for gz2) or published fractions "
                                              "({question}_{answer}_fraction, with or without "
                                              "{question}_total-votes, for decals and euclid), and optionally "
                                              "'file', 'split', 'ra', 'dec', 'truth/...'.")],
    out: Out,
    schema: Annotated[str | None, typer.Option(help="Decision tree: a shipped name (gz2, decals, euclid; "
                                                    "`galzoo schema NAME` shows one) or a tree .json file. "
                                                    "Default: gz2.")] = None,
    min_votes: MinVotes = None,
    label_column: Annotated[str | None, typer.Option(help="Instead of a tree: this 0/1 column of the CSV (e.g. an "
                                                          "expert's 'ring') becomes a one-question yes/no tree, one "
                                                          "vote per galaxy.")] = None,
    votes: Annotated[int | None, typer.Option(help="Pseudo-votes per galaxy for questions the CSV gives as "
                                                   "fractions without totals (default: the tree's typical N of "
                                                   "its first question, 40 for the shipped trees).", min=1)] = None,
    *,
    records: Records,
) -> None:
    """Your own project: a folder of images and a CSV of votes per answer, as counts or as published fractions.

    Each question of the tree is read from what the CSV gives: count columns (<stem>_count for gz2); fraction columns with the question's total ({question}_{answer}_fraction and {question}_total-votes for decals and euclid, as Galaxy Zoo publishes them), turned into counts and refused where they are not whole votes; or fractions alone, turned into pseudo-counts of --votes volunteers walking the tree. Questions the CSV lacks get no votes (a warning names them). --label-column COL makes a 0/1 column a one-question yes/no tree instead. JPEG/PNG become 256x256x3 uint8; FITS become float32 with one channel per plane, NaN pixels filled with the median of the finite ones. A 'split' column, if present, is used as given.
    """  # noqa: E501
    from galzoo_tf.data.prepare import prepare_folder

    summary = prepare_folder(images, labels, out, records.options(), records.run(), schema=schema,
                             min_votes=min_votes or (), label_column=label_column, volunteers=votes)
    _summarise(out, summary)


@records_command("fits", test_size=0.2, size=(NativeSize, None), encoding=False)
def fits(
    images: Annotated[Path, typer.Option(help="Folder of FITS cutouts (.fits, .fit, .fits.gz, ...): one 2-D "
                                              "image or 3-D cube (planes = bands) each.")],
    table: Annotated[Path, typer.Option(help="CSV or FITS table: 'id', 'bulge_to_total', 'r_e_arcsec', 'flux' "
                                             "(or truth/...), and optionally 'file', 'split', 'ra', 'dec'.")],
    out: Out,
    *,
    records: Records,
) -> None:
    """Your own FITS cutouts and a table of morphological parameters, for `galzoo train --task parameters`.

    The table (CSV or FITS) holds one row per galaxy: 'id'; 'bulge_to_total', the bulge-to-total light ratio L_B/L_T from 0 to 1; 'r_e_arcsec', the effective (half-light) radius in arcsec, > 0; 'flux', the total flux in the cutout's own counts (the units of its pixels), > 0. These may also be named truth/bulge_to_total, truth/r_e_arcsec and truth/flux. Optional: 'file', the cutout's path relative to --images (default: the file named after the id, e.g. 1234.fits); 'split' (train/val/test, used as given); 'ra' and 'dec' in degrees.

    Cutouts must be square FITS images, best all of one size (GaMPEN's HSC cutouts are 239x239): by default the first cutout's size is kept and one of another size is resampled to it. They are stored as float32 with one channel per plane, NaN pixels filled with the median of the finite ones. A row with a blank, non-numeric or out-of-range parameter, or a cutout that is missing, not FITS or outside --images, stops the run naming it; --skip-bad skips and counts them instead.

    Example: galzoo prepare fits --images cutouts/ --table parameters.csv --out data/params, then galzoo train --task parameters --data data/params --out models/gampen --image-size 239.
    """  # noqa: E501
    from galzoo_tf.data.prepare import prepare_fits

    summary = prepare_fits(images, table, out, records.options(), records.run())
    _summarise(out, summary)
    report.print(f"next: [bold]galzoo train --task parameters --data {out} --out MODEL --image-size "
                 f"{summary.size}[/]", soft_wrap=True)


@records_command("synthetic", test_size=0.125, size=None, skip_bad=False)
def synthetic(
    n: Annotated[int, typer.Option("--n", help="Number of galaxies to simulate.", min=1)] = 20000,
    out: Out = Path("data/synthetic"),
    survey: Annotated[str, typer.Option(help="'sdss': GZ2-like 256x256 gri colour cutouts framed by galaxy "
                                             "size, Lupton asinh colours; 'decals': DECaLS-like grz at "
                                             "0.262\"/px with the GZ DECaLS colour mapping; 'hsc': HSC-like "
                                             "g-band float32 images at 0.168\"/px (GaMPEN's setting); "
                                             "'hsc-poor': the same with worse seeing and twice the sky noise "
                                             "(a second domain for transfer learning). Join surveys with '+' "
                                             "('sdss+decals') to give each galaxy one of them at random.")] = "sdss",
    overdispersion: Annotated[float, typer.Option(help="How much the volunteers who see the same galaxy err "
                                                       "together: their answer probabilities are drawn from "
                                                       "Dirichlet(rho / X). 0: plain multinomial votes.",
                                                  min=0)] = 0.0,
    population: Annotated[str | None, typer.Option(
        help="'gampen': Ghosh et al. (2022) Table 1, isolated Sérsic bulges and disks spanning L_B/L_T, R_e "
             "0.1-5\" and flux 1e3-5e6 nJy uniformly (the hsc default); 'magnitude-limited': the GZ2-like sky "
             "with bars, arms, rings, mergers and stars, sizes tied to magnitude (the sdss and decals "
             "default).")] = None,
    schema: Annotated[str, typer.Option(help="The decision tree the simulated volunteers answer: gz2, decals (GZ "
                                             "DECaLS), euclid (GZ Euclid), or a tree .json whose questions name "
                                             "simulated perceptions (docs/schema.md).")] = "gz2",
    *,
    records: Records,
) -> None:
    """The embedded default: simulated galaxies (GalSim) and simulated volunteers answering the GZ2 tree (or --schema).

    Every record carries the truth (L_B/L_T, R_e, flux, bar, arms, inclination, merger/star flags, and rho of every answer). The same seed gives the same records byte for byte whatever --workers. A montage.png of sample galaxies is written beside the records.
    """  # noqa: E501
    from galzoo_tf.data.prepare import prepare_synthetic
    summary = prepare_synthetic(n, out, records.options(), records.run(), survey=survey,
                                overdispersion=overdispersion, population=population, schema=schema)
    _summarise(out, summary)
    report.print(f"montage of sample galaxies: {summary.montage}")
