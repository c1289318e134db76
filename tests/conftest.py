"""Shared fixtures: small GZ2-format catalogues with images, written the way the real files are."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from galzoo_tf.schema import Schema, load_schema
from galzoo_tf.sim.volunteers import simulate_votes

SHARED = Path(os.environ.get("GALZOO_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SUFFIXES = ("count", "weight", "fraction", "weighted_fraction", "debiased", "flag")


def needs_shared(*parts: str) -> Path:
    """Path inside ../shared, skipping the test cleanly where a clone has no ../shared."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available at {path}")
    return path


@dataclass
class GZ2Fixture:
    """A small GZ2 project on disk: catalogue in the Hart et al. 2016 layout, mapping, images."""

    catalogue: Path
    mapping: Path
    images: Path
    frame: pd.DataFrame
    schema: Schema


def hart16_frame(n: int, rng: np.random.Generator, schema: Schema, first_id: int = 587722981742084144,
                 stripe82: int = 0) -> pd.DataFrame:
    """Catalogue rows with the real 231-column layout; votes from volunteers walking the tree."""
    rho = {q.name: rng.dirichlet(np.ones(len(q.answers)) * 0.7, size=n) for q in schema.questions}
    volunteers = rng.integers(30, 50, size=n)
    counts = simulate_votes(schema, rho, volunteers, rng)
    ra, dec = rng.uniform(0, 360, n), rng.uniform(-10, 60, n)
    frame = pd.DataFrame({
        "dr7objid": [str(first_id + 3 * i) for i in range(n)], "ra": ra, "dec": dec,
        "rastring": [f"{x / 15:.4f}" for x in ra], "decstring": [f"{x:+.4f}" for x in dec],
        "sample": ["stripe82" if i < stripe82 else "original" for i in range(n)],
        "gz2_class": "Sc", "total_classifications": volunteers,
        "total_votes": sum(counts.values()),
    })
    columns = {}
    for question in schema.questions:
        total = sum(counts[schema.count_key(a)] for a in question.answers)
        for answer in question.answers:
            k = counts[schema.count_key(answer)]
            fraction = np.round(np.divide(k, total, out=np.zeros(n), where=total > 0), 3)
            values = (k, k.astype(float), fraction, fraction, fraction, np.zeros(n, int))
            columns.update({f"{answer.stem}_{s}": v for s, v in zip(SUFFIXES, values, strict=True)})
    return pd.concat([frame, pd.DataFrame(columns)], axis=1)


def write_jpeg(path: Path, rng: np.random.Generator, size: int = 424) -> None:
    """A galaxy-ish test image: a smooth blob plus noise, so JPEG sizes are realistic."""
    y, x = np.mgrid[:size, :size] / size - 0.5
    blob = 200 * np.exp(-(x**2 + y**2) / (2 * 0.08**2))
    pixels = np.clip(blob[..., None] * rng.uniform(0.6, 1.0, 3) + rng.normal(20, 8, (size, size, 3)), 0, 255)
    Image.fromarray(pixels.astype(np.uint8)).save(path, quality=90)


def make_gz2(root: Path, n: int = 40, seed: int = 0, stripe82: int = 0, image_size: int = 424) -> GZ2Fixture:
    """Write catalogue CSV, Zenodo-style mapping (objid, sample, asset_id) and <asset_id>.jpg images."""
    rng = np.random.default_rng(seed)
    schema = load_schema("gz2")
    frame = hart16_frame(n, rng, schema, stripe82=stripe82)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    assets = np.arange(100, 100 + n)
    for asset in assets:
        write_jpeg(images / f"{asset}.jpg", rng, image_size)
    mapping = pd.DataFrame({"objid": frame["dr7objid"], "sample": frame["sample"], "asset_id": assets})
    catalogue, mapping_path = root / "gz2_hart16.csv", root / "gz2_filename_mapping.csv"
    frame.to_csv(catalogue, index=False)
    mapping.to_csv(mapping_path, index=False)
    return GZ2Fixture(catalogue, mapping_path, images, frame, schema)


@pytest.fixture
def gz2(tmp_path: Path) -> GZ2Fixture:
    return make_gz2(tmp_path / "gz2")
