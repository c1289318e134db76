"""Reading survey images from disk into fixed-size arrays (numpy at the edge, before TFRecords).

JPEG/PNG become uint8 RGB; FITS becomes float32 with one channel per plane, non-finite
pixels replaced by the median of the finite ones. Every image is resized with an
antialiasing (Lanczos) filter to a square ``size``. Failures raise ``BadInputError``
naming the file.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from galzoo_tf import errors
from galzoo_tf.errors import BadInputError

RGB_SUFFIXES = (".jpg", ".jpeg", ".png")
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fits.fz")
IMAGE_SUFFIXES = RGB_SUFFIXES + FITS_SUFFIXES
MIN_SIDE = 8
MAX_PIXELS = Image.MAX_IMAGE_PIXELS  # per plane (89 million, Pillow's bomb limit): larger would exhaust memory


def is_fits(path: str | Path) -> bool:
    return str(path).lower().endswith(FITS_SUFFIXES)


def resolve_inside(root: Path, relative: str) -> Path:
    """Join a catalogue path to the image root, refusing any path (or symlink) that leaves it."""
    root_real = Path(os.path.realpath(root))
    candidate = Path(os.path.realpath(root_real / relative))
    if candidate != root_real and root_real not in candidate.parents:
        raise BadInputError(errors.PATH_ESCAPE, f"image path {relative!r} escapes the image root {root}")
    return candidate


def _check_square(path: Path, height: int, width: int) -> None:
    if height != width or height < MIN_SIDE:
        raise BadInputError(errors.BAD_IMAGE_SHAPE,
                            f"{path}: image is {width} x {height} pixels (width x height); galzoo needs "
                            f"square images of at least {MIN_SIDE}x{MIN_SIDE} pixels (crop cutouts first)")


def _too_large(path: Path, pixels: str) -> BadInputError:
    return BadInputError(errors.IMAGE_TOO_LARGE, f"{path}: image has {pixels} pixels, more than the "
                                                 f"{MAX_PIXELS:,} galzoo decodes (it would exhaust memory); "
                                                 "crop cutouts first")


def _open(path: Path) -> Image.Image:
    """The image with only its header read: a decompression bomb is refused here, before any pixel is decoded."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            found = re.search(r"\((\d+) pixels\)", str(exc))
            raise _too_large(path, f"{int(found[1]):,}" if found else "too many") from None


def load_rgb(path: Path, size: int) -> np.ndarray:
    """Decode a JPEG/PNG to a (size, size, 3) uint8 array; greyscale is repeated into 3 channels."""
    try:
        with _open(path) as image:
            _check_square(path, image.height, image.width)
            image.load()  # forces a full decode so truncated files fail here, not later
            rgb = image.convert("RGB")
    except BadInputError:
        raise
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise BadInputError(errors.UNREADABLE_IMAGE, f"{path}: cannot decode image ({exc})") from exc
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(rgb, dtype=np.uint8)


def _fits_planes(path: Path) -> np.ndarray:
    """First HDU holding a 2-D image or a 3-D cube, as float32 (planes, height, width)."""
    from astropy.io import fits  # imported here: workers that read only JPEGs never pay for it

    try:
        with fits.open(path, memmap=False) as hdus:
            for hdu in hdus:
                shape = [hdu.header.get(f"NAXIS{axis}", 0) for axis in range(1, hdu.header.get("NAXIS", 0) + 1)]
                if len(shape) in (2, 3) and shape[0] * shape[1] > MAX_PIXELS:
                    raise _too_large(path, f"{shape[0]:,} x {shape[1]:,}")
                if hdu.data is not None and hdu.data.ndim in (2, 3):
                    data = np.asarray(hdu.data, dtype=np.float32)
                    return data[None] if data.ndim == 2 else data
    except BadInputError:
        raise
    except (OSError, TypeError, ValueError) as exc:
        raise BadInputError(errors.UNREADABLE_IMAGE, f"{path}: cannot read FITS ({exc})") from exc
    raise BadInputError(errors.UNREADABLE_IMAGE, f"{path}: FITS file has no 2-D image or 3-D cube")


def fill_non_finite(planes: np.ndarray, path: Path) -> np.ndarray:
    """Replace NaN/inf pixels by the median of the finite pixels of the same plane."""
    planes = planes.copy()
    for plane in planes:
        bad = ~np.isfinite(plane)
        if bad.all():
            raise BadInputError(errors.UNREADABLE_IMAGE, f"{path}: every pixel is NaN or infinite")
        if bad.any():
            plane[bad] = np.median(plane[~bad])
    return planes


def load_fits(path: Path, size: int) -> np.ndarray:
    """Read a FITS image or cube to a (size, size, planes) float32 array with NaNs filled."""
    planes = _fits_planes(path)
    _check_square(path, planes.shape[1], planes.shape[2])
    planes = fill_non_finite(planes, path)
    if planes.shape[1] != size:
        planes = np.stack([
            np.asarray(Image.fromarray(p).resize((size, size), Image.Resampling.LANCZOS))
            for p in planes
        ])
    return np.ascontiguousarray(np.moveaxis(planes, 0, -1), dtype=np.float32)


def load_image(path: str | Path, size: int) -> np.ndarray:
    """Read any supported image to a fixed-size array (uint8 RGB, or float32 for FITS)."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(errors.MISSING_IMAGE, f"{path}: image file not found")
    return load_fits(path, size) if is_fits(path) else load_rgb(path, size)


def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG bytes of a uint8 image (the alternative record encoding)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def load_chunk(items: list[dict], shape: tuple[int, ...], encoding: str) -> list[bytes | BadInputError]:
    """Worker task: decode, resize and encode the images at ``item["path"]``; a bad one comes back as its error.

    Lives here, not in ``prepare``, so spawned workers import PIL and numpy but never TensorFlow.
    """
    out: list[bytes | BadInputError] = []
    for item in items:
        path = item["path"]
        try:
            image = load_image(path, shape[0])
            if image.shape != tuple(shape):
                raise BadInputError(errors.BAD_IMAGE_SHAPE,
                                    f"{path}: image has shape {image.shape}, the others {tuple(shape)}")
            out.append(encode_png(image) if encoding == "png" else image.tobytes())
        except BadInputError as error:
            out.append(error)
    return out
