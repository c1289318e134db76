"""A user's own FITS cutouts with a table of morphological parameters, for parameter models (GaMPEN).

The table (CSV or FITS) has an ``id`` column and, per galaxy, ``bulge_to_total`` (L_B/L_T,
0 to 1), ``r_e_arcsec`` (effective radius in arcsec, > 0) and ``flux`` (in the cutout's
counts, > 0); each may also be spelt ``truth/<name>``, as records store them. Optional:
``file`` (cutout path relative to the image folder; default: the file named after the id),
``split`` (train/val/test), ``ra``, ``dec`` and further ``truth/...`` floats. No votes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from galzoo_tf import errors
from galzoo_tf.data import images
from galzoo_tf.data.labels import RowProblems, require_columns, shown_value
from galzoo_tf.data.sources.table import Catalogue, Locator, build_catalogue, checksum, images_under, read_table
from galzoo_tf.errors import BadInputError
from galzoo_tf.schema import load_schema

# Parameter column -> (test of a valid value, what a valid value is). The names are those of
# ``galzoo_tf.tasks.parameters.targets.PARAMETERS`` (not imported: it pulls in TensorFlow).
PARAMETERS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str]] = {
    "bulge_to_total": (lambda v: (v >= 0) & (v <= 1), "a fraction L_B/L_T from 0 to 1"),
    "r_e_arcsec": (lambda v: v > 0, "a positive effective radius in arcsec"),
    "flux": (lambda v: v > 0, "a positive flux in image counts"),
}
NOT_A_NUMBER = "non-numeric parameter"
OUT_OF_RANGE = "parameter out of range"
NOT_FITS = "not a FITS image"


def load_fits_parameters(images: Path, table: Path, *, skip_bad: bool = False) -> Catalogue:
    """Read and check a parameter table and find each galaxy's FITS cutout under ``images``."""
    images, label = Path(images), str(table)
    frame = parameter_columns(read_table(table), label)
    schema = load_schema("gz2")  # names the id column and the manifest's tree; no question is voted on
    return build_catalogue(frame, source="fits", label=label, schema=schema,
                           locate=fits_only(images_under(images, frame, label, schema)), skip_bad=skip_bad,
                           min_votes={}, inputs={"table": checksum(table), "images": {"path": str(images.resolve())}},
                           cuts=[("catalogue rows", len(frame))], votes=False, check=flag_bad_parameters)


def parameter_columns(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """The table with each parameter under its bare name and as its ``truth/...`` record feature.

    Both spellings are accepted; a table giving both is ambiguous and a missing one is named.
    """
    both = [name for name in PARAMETERS if name in frame.columns and f"truth/{name}" in frame.columns]
    if both:
        raise BadInputError("ambiguous column", f"{label}: give {both[0]} or truth/{both[0]}, not both")
    frame = frame.rename(columns={f"truth/{name}": name for name in PARAMETERS})
    require_columns(frame, PARAMETERS, label)
    return frame.assign(**{f"truth/{name}": frame[name] for name in PARAMETERS})


def flag_bad_parameters(frame: pd.DataFrame, problems: RowProblems) -> None:
    """Flag rows whose parameters are blank, not numbers, infinite or outside their physical range."""
    for name, (valid, meaning) in PARAMETERS.items():
        raw = frame[name]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        finite = np.isfinite(values)
        problems.flag(~finite, NOT_A_NUMBER,
                      lambda i, n=name, r=raw: f"{n} is {shown_value(r.iloc[i])}, not a finite number")
        with np.errstate(invalid="ignore"):
            problems.flag(finite & ~valid(values), OUT_OF_RANGE,
                          lambda i, n=name, v=values, m=meaning: f"{n} is {v[i]:g}, not {m}")


def fits_only(locate: Locator) -> Locator:
    """``locate``, also refusing any image that is not a FITS file (parameters are measured on fluxes)."""

    def locate_fits(rows: pd.DataFrame, problems: RowProblems) -> list[str | None]:
        paths = locate(rows, problems)
        other = np.array([path is not None and not images.is_fits(path) for path in paths], dtype=bool)
        problems.flag(other, NOT_FITS, lambda i: f"{Path(paths[i]).name} is not a FITS image (use "
                                                 f"{', '.join(images.FITS_SUFFIXES)})")
        return paths

    return locate_fits


def native_side(paths: Iterable[str]) -> int:
    """Side in pixels of the first cutout whose header can be read: by default cutouts keep their own size.

    Only headers are read. Resampling would change the pixel scale and the counts per pixel,
    so the stored images would no longer match R_e in arcsec and the flux of the table.
    """
    from astropy.io import fits

    for path in paths:
        try:
            with fits.open(path, memmap=False) as hdus:
                shape = next((hdu.shape for hdu in hdus if hdu.is_image and len(hdu.shape) in (2, 3)), None)
        except (OSError, TypeError, ValueError):
            continue  # the writer names the unreadable file, or skips it with --skip-bad
        if shape is not None:
            return int(shape[-1])
    raise BadInputError(errors.UNREADABLE_IMAGE, "no FITS cutout with a 2-D image or 3-D cube could be read "
                                                 "to learn the image size")
