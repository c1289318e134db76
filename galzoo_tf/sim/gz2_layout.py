"""A small project in the real GZ2 file layout: Hart et al. 2016 catalogue, Zenodo mapping, JPEG images.

Votes come from simulated volunteers walking the tree (``sim.volunteers``); images are
simple elliptical light profiles with sky noise. It exercises ``prepare gz2`` exactly as
the real files would (the demo, benchmarks and tests use it) without any download.

Run ``python -m galzoo_tf.sim.gz2_layout OUT --n 300`` to write one.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from galzoo_tf.schema import Schema, load_schema
from galzoo_tf.sim.volunteers import simulate_votes

HART16_SUFFIXES = ("count", "weight", "fraction", "weighted_fraction", "debiased", "flag")
CATALOGUE_FILE = "gz2_hart16.csv"
MAPPING_FILE = "gz2_filename_mapping.csv"
FIRST_ASSET = 100


@dataclass
class GZ2Project:
    """Paths of a written project and its catalogue as a DataFrame."""

    catalogue: Path
    mapping: Path
    images: Path
    frame: pd.DataFrame
    schema: Schema


def hart16_frame(n: int, rng: np.random.Generator, schema: Schema, first_id: int = 587722981742084144,
                 stripe82: int = 0) -> pd.DataFrame:
    """Catalogue rows in the real 231-column layout; the first ``stripe82`` rows are Stripe 82."""
    rho = {q.name: rng.dirichlet(np.ones(len(q.answers)) * 0.7, size=n) for q in schema.questions}
    volunteers = rng.integers(30, 50, size=n)
    counts = simulate_votes(schema, rho, volunteers, rng)
    ra, dec = rng.uniform(0, 360, n), rng.uniform(-10, 60, n)
    frame = pd.DataFrame({
        "dr7objid": [str(first_id + 3 * i) for i in range(n)], "ra": ra, "dec": dec,
        "rastring": [f"{x / 15:.4f}" for x in ra], "decstring": [f"{x:+.4f}" for x in dec],
        "sample": ["stripe82" if i < stripe82 else "original" for i in range(n)],
        "gz2_class": "Sc", "total_classifications": volunteers, "total_votes": sum(counts.values()),
    })
    columns = {}
    for question in schema.questions:
        total = sum(counts[schema.count_key(a)] for a in question.answers)
        for answer in question.answers:
            k = counts[schema.count_key(answer)]
            fraction = np.round(np.divide(k, total, out=np.zeros(n), where=total > 0), 3)
            values = (k, k.astype(float), fraction, fraction, fraction, np.zeros(n, int))
            columns.update({f"{answer.stem}_{s}": v for s, v in zip(HART16_SUFFIXES, values, strict=True)})
    return pd.concat([frame, pd.DataFrame(columns)], axis=1)


def galaxy_image(rng: np.random.Generator, size: int = 424) -> np.ndarray:
    """An elliptical exponential-profile galaxy in colour with sky noise, as uint8 RGB."""
    y, x = (np.mgrid[:size, :size] - size / 2) / size
    angle, axis_ratio, radius = rng.uniform(0, np.pi), rng.uniform(0.3, 1), rng.uniform(0.03, 0.12)
    u, v = x * np.cos(angle) + y * np.sin(angle), (y * np.cos(angle) - x * np.sin(angle)) / axis_ratio
    light = np.exp(-np.hypot(u, v) / radius * 1.68)
    colour = rng.uniform(0.6, 1.0, 3)
    pixels = 230 * light[..., None] * colour + rng.normal(12, 6, (size, size, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def write_gz2_project(root: Path, n: int = 40, seed: int = 0, stripe82: int = 0,
                      image_size: int = 424) -> GZ2Project:
    """Write catalogue CSV, mapping (objid, sample, asset_id) and ``<asset_id>.jpg`` images under root."""
    rng = np.random.default_rng(seed)
    schema = load_schema("gz2")
    frame = hart16_frame(n, rng, schema, stripe82=stripe82)
    images = Path(root) / "images"
    images.mkdir(parents=True, exist_ok=True)
    assets = np.arange(FIRST_ASSET, FIRST_ASSET + n)
    for asset in assets:
        Image.fromarray(galaxy_image(rng, image_size)).save(images / f"{asset}.jpg", quality=90)
    mapping = pd.DataFrame({"objid": frame["dr7objid"], "sample": frame["sample"], "asset_id": assets})
    catalogue, mapping_path = Path(root) / CATALOGUE_FILE, Path(root) / MAPPING_FILE
    frame.to_csv(catalogue, index=False)
    mapping.to_csv(mapping_path, index=False)
    return GZ2Project(catalogue, mapping_path, images, frame, schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the project into")
    parser.add_argument("--n", type=int, default=300, help="number of galaxies")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--stripe82", type=int, default=0, help="how many rows to mark as Stripe 82")
    args = parser.parse_args()
    project = write_gz2_project(args.out, args.n, args.seed, args.stripe82)
    print(f"wrote {args.n} galaxies: {project.catalogue}, {project.mapping}, {project.images}/")


if __name__ == "__main__":
    main()
