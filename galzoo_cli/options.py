"""Options several commands share, defined once: posterior sampling, inputs, engines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EngineName = Annotated[str, typer.Option("--engine", help="local: this process (default); dask: one task per "
                                                         "record shard on a Dask cluster (pip install "
                                                         "'galzoo[dask]'; workers need the same files).")]
Scheduler = Annotated[str | None, typer.Option(help="With --engine dask: local:N (a cluster of N worker "
                                                    "processes on this machine; default local:2) or a "
                                                    "running scheduler's address (tcp://host:8786, e.g. from "
                                                    "dask-jobqueue on Slurm/PBS).")]
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
Images = Annotated[Path | None, typer.Option(help="Folder of JPEG/PNG/FITS images (searched recursively); the id is "
                                                  "the path without suffix.")]
FitsDir = Annotated[Path | None, typer.Option("--fits", help="Folder of FITS images or cubes (NaN pixels are filled "
                                                             "with the median).")]
SkipBad = Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable or wrong-size images (counted) instead "
                                                          "of stopping.")]
