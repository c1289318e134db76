"""Inputs shared by the benchmarks: a cached folder of GZ2-sized JPEGs with a labels CSV."""

from __future__ import annotations

from pathlib import Path


def build_folder(workdir: Path, n: int) -> tuple[Path, Path]:
    """A folder of n 424x424 JPEGs and labels.csv in the schema's column names (cached)."""
    from galzoo_tf.sim.gz2_layout import write_gz2_project

    labels = workdir / f"labels-{n}.csv"
    images = workdir / "gz2" / "images"
    if not labels.exists():
        project = write_gz2_project(workdir / "gz2", n=n, seed=0)
        frame = project.frame.rename(columns={"dr7objid": "id"})
        frame["file"] = [f"{asset}.jpg" for asset in range(100, 100 + n)]
        frame.to_csv(labels, index=False)
    return images, labels
