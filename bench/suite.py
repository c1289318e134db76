"""The benchmark suite behind `make bench`: every stage at a size that runs in minutes, one table.

    python bench/suite.py [--workdir data/bench/suite] [--json data/bench/suite.json]

Builds its inputs once (cached in --workdir: a folder of GZ2-sized JPEGs, simulated records, a
bar model trained for one epoch, a sharded pool) and measures: prepare galaxies/s (folder of
JPEGs, 1 and 2 worker processes), simulation galaxies/s (1 and 2 workers), training images/s
from records vs in-memory tensors, predict galaxy-passes/s with and without test-time
augmentation, partitioned predict on a Dask LocalCluster of 2 workers vs the local engine,
acquire galaxies/s, and peak resident memory of predict and acquire at two pool sizes.
Each bench/*.py script also runs alone with larger sizes (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import engines  # noqa: E402
import memory  # noqa: E402
import predict  # noqa: E402
import prepare  # noqa: E402
import simulate  # noqa: E402
import train  # noqa: E402
from bench_inputs import build_folder  # noqa: E402


def inputs(workdir: Path) -> tuple[Path, Path, Path]:
    """(records, bar model, sharded pool), made once."""
    records, model, pool = workdir / "records", workdir / "bar-model", workdir / "pool"
    commands = [
        (records, ["prepare", "synthetic", "--n", "1500", "--test-size", "256", "--out", str(records)]),
        (model, ["train", "--data", str(records), "--question", "bar", "--epochs", "1", "--out", str(model)]),
        (pool, ["prepare", "synthetic", "--n", "1024", "--seed", "1", "--test-size", "0", "--val-fraction", "0",
                "--shard-size", "128", "--out", str(pool)]),
    ]
    for done, args in commands:
        if not (done / "manifest.json").is_file() and not (done / "galzoo.json").is_file():
            subprocess.run(memory.galzoo(*args), check=True, stdout=subprocess.DEVNULL)
    return records, model, pool


def run(workdir: Path) -> list[tuple[str, str, float, str]]:
    """Every measurement as (stage, what, value, unit)."""
    rows = []
    images, labels = build_folder(workdir / "prepare", 1000)
    folder = {w: 1000 / prepare.time_workers(images, labels, workdir / "prepare" / "out", w, 1000) for w in (1, 2)}
    rows += [("prepare folder", "JPEG 424 px -> records, 2 workers", folder[2], "galaxies/s"),
             ("prepare folder", "2 workers / 1 worker", folder[2] / folder[1], "ratio")]
    with tempfile.TemporaryDirectory() as scratch:
        simulated = {w: 300 / simulate.time_run(300, "sdss", w, Path(scratch) / "sim") for w in (1, 2)}
    rows += [("prepare synthetic", "GalSim galaxies + volunteers -> records, 2 workers", simulated[2], "galaxies/s"),
             ("prepare synthetic", "2 workers / 1 worker", simulated[2] / simulated[1], "ratio")]
    records, model, pool = inputs(workdir)
    trained = train.measure(records, steps=20)
    rows += [("train", "paper CNN 128 px from records + augmentation", trained["records"], "images/s"),
             ("train", "same, one batch held in memory", trained["in_memory"], "images/s"),
             ("train", "records / in-memory", trained["records"] / trained["in_memory"], "ratio")]
    sampled = predict.measure(model, records, galaxies=128, passes=30)
    rows += [("predict", "sampler T = 30 with TTA", 30 * sampled["tta"], "galaxy-passes/s"),
             ("predict", "sampler T = 30 without TTA (--no-tta)", 30 * sampled["no_tta"], "galaxy-passes/s"),
             ("predict", "no TTA / TTA", sampled["no_tta"] / sampled["tta"], "ratio")]
    engine = engines.measure(model, pool, workers=2, passes=10)
    rows += [("predict --out DIR", "local engine, 1024 galaxies in 8 shards, T = 10 with TTA",
              engine["local_passes_per_s"], "galaxy-passes/s"),
             ("predict --out DIR", "Dask LocalCluster, 2 workers", engine["dask_passes_per_s"], "galaxy-passes/s"),
             ("predict --out DIR", "Dask 2 workers / local, first run (same catalogue: "
                                   f"{engine['same_catalogue']})", engine["local_s"] / engine["dask_s"], "ratio"),
             ("predict --out DIR", "Dask 2 workers / local, second run (models loaded)",
              engine["local_warm_s"] / engine["dask_warm_s"], "ratio"),
             ("acquire", "BALD, T = 10 with TTA, top 128, local engine", engine["acquire_galaxies_per_s"],
              "galaxies/s")]
    for row in memory.measure(workdir / "memory", [20_000, 100_000]):
        rows.append((f"{row['command']} (memory)", f"pool of {row['pool']:,}, 32 px, T = 5, no TTA",
                     row["peak_rss_gib"], "GiB peak RSS"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("data/bench/suite"))
    parser.add_argument("--json", type=Path, default=Path("data/bench/suite.json"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = run(args.workdir)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\ngalzoo benchmark suite, {date.today()}, {machine}, {time.perf_counter() - start:.0f} s")
    print(f"| {'stage':<20} | {'what':<62} | {'value':>9} | {'unit':<16} |")
    print(f"| {'-' * 20} | {'-' * 62} | {'-' * 9} | {'-' * 16} |")
    for stage, what, value, unit in rows:
        print(f"| {stage:<20} | {what:<62} | {value:>9.{2 if unit in ('ratio', 'GiB peak RSS') else 0}f} | "
              f"{unit:<16} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"date": str(date.today()), "machine": machine, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
