"""Shared fixtures: small projects in the real GZ2 file layout, and access to ../shared real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from galzoo_tf.sim.gz2_layout import GZ2Project, write_gz2_project

SHARED = Path(os.environ.get("GALZOO_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def needs_shared(*parts: str) -> Path:
    """Path inside ../shared, skipping the test cleanly where a clone has no ../shared."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available at {path}")
    return path


def make_gz2(root: Path, n: int = 40, seed: int = 0, stripe82: int = 0) -> GZ2Project:
    """A small project in the real GZ2 layout (catalogue, mapping, <asset_id>.jpg)."""
    return write_gz2_project(root, n=n, seed=seed, stripe82=stripe82)


@pytest.fixture
def gz2(tmp_path: Path) -> GZ2Project:
    return make_gz2(tmp_path / "gz2")
