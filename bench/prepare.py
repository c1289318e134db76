"""Benchmark `prepare folder`: galaxies/s writing records from 424x424 JPEGs with 1 and 2 worker processes.

    python bench/prepare.py --n 2000 --workers 0 1 2

Builds (once, cached in --workdir) a folder of GZ2-sized JPEGs with a labels CSV, then
times catalogue checks + image decode/resize + record writing for each worker count
in this one process, and one end-to-end `galzoo prepare folder` command (including
Python and TensorFlow start-up). Prints one table; --json writes the numbers too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

# galzoo is imported inside the functions: worker processes are spawned, and a spawned worker
# re-imports this script; importing TensorFlow there would cost each worker seconds of start-up.


def time_workers(images: Path, labels: Path, out: Path, workers: int, n: int) -> float:
    """Seconds for checks + decode + write of the whole folder, in this process with its workers."""
    from galzoo_tf.data.prepare import PrepareOptions, write_records
    from galzoo_tf.data.sources.folder import load_folder

    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    summary = write_records(load_folder(images, labels), out, PrepareOptions(test_size=0.1), workers=workers)
    seconds = time.perf_counter() - start
    assert sum(summary.splits.values()) == n
    return seconds


def time_cli(images: Path, labels: Path, out: Path, workers: int) -> float:
    """Seconds of the whole `galzoo prepare folder` command, start-up included."""
    shutil.rmtree(out, ignore_errors=True)
    galzoo = Path(sys.executable).with_name("galzoo")
    start = time.perf_counter()
    subprocess.run([str(galzoo), "prepare", "folder", "--images", str(images), "--labels", str(labels),
                    "--out", str(out), "--workers", str(workers), "--test-size", "0.1"], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="number of 424x424 JPEGs")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time")
    parser.add_argument("--workdir", type=Path, default=Path("data/bench/prepare"), help="cache of inputs")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    from bench_inputs import build_folder

    images, labels = build_folder(args.workdir, args.n)
    rows = []
    for workers in args.workers:
        seconds = time_workers(images, labels, args.workdir / "out", workers, args.n)
        rows.append({"what": f"write_records, {workers} worker(s)", "workers": workers, "seconds": seconds,
                     "galaxies_per_s": args.n / seconds})
    workers = max(args.workers)
    seconds = time_cli(images, labels, args.workdir / "out", workers)
    rows.append({"what": f"galzoo prepare folder (whole command), {workers} worker(s)", "workers": workers,
                 "seconds": seconds, "galaxies_per_s": args.n / seconds})
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"prepare folder: {args.n} JPEGs 424x424 -> 256x256x3 raw records; {machine}")
    print(f"{'what':<58} {'seconds':>8} {'galaxies/s':>11}")
    for row in rows:
        print(f"{row['what']:<58} {row['seconds']:>8.1f} {row['galaxies_per_s']:>11.0f}")
    base = next((r for r in rows if r["workers"] == 1), rows[0])
    best = rows[-2]
    print(f"speed-up {best['workers']} vs {base['workers']} worker(s): {base['seconds'] / best['seconds']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"n": args.n, "machine": machine, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
