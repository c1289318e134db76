"""Shared fixtures: small projects in the real GZ2 file layout, and access to ../shared real data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from galzoo_tf.data.sources.gz2 import load_gz2
from galzoo_tf.data.sources.table import Catalogue
from galzoo_tf.sim.gz2_layout import GZ2Project, write_gz2_project

SHARED = Path(os.environ.get("GALZOO_SHARED", Path(__file__).resolve().parents[2] / "shared"))


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """galzoo's cache (verified shard checksums) in the test session's own folder, never the user's."""
    os.environ["GALZOO_CACHE"] = str(tmp_path_factory.mktemp("galzoo-cache"))


def needs_shared(*parts: str) -> Path:
    """Path inside ../shared, skipping the test cleanly where a clone has no ../shared."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available at {path}")
    return path


def make_gz2(root: Path, n: int = 40, seed: int = 0, stripe82: int = 0) -> GZ2Project:
    """A small project in the real GZ2 layout (catalogue, mapping, <asset_id>.jpg)."""
    return write_gz2_project(root, n=n, seed=seed, stripe82=stripe82)


def gz2_catalogue(project: GZ2Project, **options) -> Catalogue:
    """The project read by the gz2 source with its mapping and no vote cut (unless given)."""
    return load_gz2(project.catalogue, project.images, mapping=project.mapping, **{"min_votes": {}, **options})


@pytest.fixture
def gz2(tmp_path: Path) -> GZ2Project:
    return make_gz2(tmp_path / "gz2")


@pytest.fixture(scope="session")
def tiny_bar(tmp_path_factory) -> tuple[Path, Path]:
    """(records, model directory): 160 simulated galaxies and a bar model trained for one epoch at 32 px."""
    from galzoo_tf.data.prepare import PrepareOptions, write_records
    from galzoo_tf.data.sources.synthetic import load_synthetic
    from galzoo_tf.training.loop import TrainConfig, train

    root = tmp_path_factory.mktemp("tiny")
    write_records(load_synthetic(160, seed=2), root / "records", PrepareOptions(test_size=40, val_fraction=0.25,
                                                                               seed=2), workers=0)
    train(root / "records", root / "bar", TrainConfig(question="bar", epochs=1, image_size=32, batch_size=32,
                                                      min_votes=1), verbose=0)  # 160 galaxies: not the paper's cut
    return root / "records", root / "bar"


@pytest.fixture(scope="session")
def tiny_trunk(tiny_bar, tmp_path_factory) -> Path:
    """A model of every question but bar, one epoch at 32 px on tiny_bar's records: a representation for
    head-only bar campaigns."""
    from galzoo_tf.training.loop import TrainConfig, train

    out = tmp_path_factory.mktemp("trunk") / "without-bar"
    train(tiny_bar[0], out, TrainConfig(question="all", leave_out=("bar",), epochs=1, image_size=32,
                                        batch_size=32), verbose=0)
    return out


@pytest.fixture(scope="session")
def tiny_pool(tmp_path_factory) -> Path:
    """Records of 48 other simulated galaxies (ids unlike tiny_bar's): an unlabelled pool."""
    from galzoo_tf.data.prepare import PrepareOptions, write_records
    from galzoo_tf.data.sources.synthetic import load_synthetic

    out = tmp_path_factory.mktemp("pool") / "records"
    write_records(load_synthetic(48, seed=3), out, PrepareOptions(test_size=0, val_fraction=0, seed=3), workers=0)
    return out


class RandomImages:
    """A pool of random galaxies made on the fly: nothing about it grows with its size."""

    def __init__(self, total: int) -> None:
        self.total, self.skipped = total, {}

    def identity(self) -> dict:
        return {"random": self.total}

    def describe(self) -> dict:
        return {**self.identity(), "sha256": "-"}

    def batches(self, batch_size: int, skip: int = 0):
        from galzoo_tf.data.inputs import Batch

        for start in range(skip, self.total, batch_size):
            count = min(batch_size, self.total - start)
            images = np.random.default_rng(start).integers(0, 255, (count, 64, 64, 3), dtype=np.uint8)
            yield Batch(count, [f"galaxy-{i:07d}" for i in range(start, start + count)], images,
                        np.arange(start, start + count))


@pytest.fixture
def random_images() -> type[RandomImages]:
    """A factory of endless-looking pools: RandomImages(total)."""
    return RandomImages
