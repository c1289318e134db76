"""Figures people would rather look at than read: montages of galaxies with their labels."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from galzoo_tf.fileio import replaced_atomically
from galzoo_tf.schema import Schema, schema_of


def save_figure(figure, path: Path, dpi: int = 80) -> Path:
    """Save a matplotlib figure as PNG atomically and close it (closed even if saving fails)."""
    import matplotlib.pyplot as plt

    try:
        with replaced_atomically(path, ".png") as temporary:
            figure.savefig(temporary, dpi=dpi)
    finally:
        plt.close(figure)
    return path


@contextmanager
def figure_grid(path: Path, title: str, rows: int = 1, columns: int = 1, size: tuple[float, float] = (6, 4.5)
            ) -> Iterator[np.ndarray]:
    """Yield a grid of axes, then save it as PNG via a temporary file beside ``path`` so readers never see half."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(rows, columns, figsize=(size[0] * columns, size[1] * rows), squeeze=False)
    try:
        yield axes
    except BaseException:
        plt.close(figure)
        raise
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    save_figure(figure, path)


def display_image(image: np.ndarray) -> np.ndarray:
    """uint8 RGB as is; float flux images (H, W, 1) with an arcsinh stretch scaled to their noise."""
    if image.dtype == np.uint8:
        return image
    flux = image[..., 0].astype(np.float64)
    noise = 1.4826 * np.median(np.abs(flux - np.median(flux))) + 1e-12
    stretched = np.arcsinh(flux / (3 * noise))
    low, high = np.percentile(stretched, [1, 99.8])
    return np.clip((stretched - low) / max(high - low, 1e-12), 0, 1)


def montage(images: Sequence[np.ndarray], titles: Sequence[str], path: Path, columns: int = 6,
            title: str | None = None) -> Path:
    """Save a grid of images with a caption under each, written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(1, -(-len(images) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.75 * rows), squeeze=False,
                                layout="constrained")  # leaves room for multi-line captions
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, caption in zip(axes.flat, images, titles, strict=False):
        axis.imshow(display_image(image), cmap="gray", interpolation="nearest")
        axis.set_title(caption, fontsize=7)
    if title:
        figure.suptitle(title, fontsize=10)
    return save_figure(figure, path)


def record_caption(record: dict, schema: Schema) -> str:
    """Short label of a record: its truth when simulated, and its votes for one answer of the tree's first question
    (the featured answer, second of three in GZ2, GZ DECaLS and Euclid; else the first, a yes/no tree's yes)."""
    def value(key: str) -> float:
        return float(record[key])

    root = schema.question(schema.root)
    shown = root.answers[1 if len(root.answers) > 2 else 0]
    smooth = f"{shown.name} {int(value(schema.count_key(shown)))}/{int(value(schema.total_key(root)))}"
    if "truth/bulge_to_total" not in record:
        return f"{record['id'].decode()[:18]}\n{smooth}"
    kind = "star" if value("truth/star") else "artifact" if value("truth/artifact") else \
        "merger" if value("truth/merger") else \
        "elliptical" if value("truth/bulge_to_total") == 1 else "disk"
    features = [f"B/T {value('truth/bulge_to_total'):.2f}", f"Re {value('truth/r_e_arcsec'):.1f}\""]
    if value("truth/bar_strength"):
        features.append(f"bar {value('truth/bar_strength'):.1f}")
    if value("truth/arms"):
        features.append(f"{int(value('truth/arms'))} arms")
    return (f"{kind} m={value('truth/magnitude'):.1f} {' '.join(features)}\n"
            f"{smooth} (rho {value(f'truth/rho/{shown.key}'):.2f})")


def record_montage(folder: Path, path: Path, count: int = 24, split: str = "train", columns: int = 6) -> Path:
    """Montage of the first ``count`` records of a split, captioned with their labels."""
    from galzoo_tf.data import records

    chosen = [{k: v.numpy() for k, v in r.items()} for r in records.read_records(folder, split).take(count)]
    manifest = records.read_manifest(folder)
    schema = schema_of(manifest)
    return montage([r["image"] for r in chosen], [record_caption(r, schema) for r in chosen], path, columns,
                   title=f"{manifest['source']} records in {Path(folder).name} ({split})")
