"""Benchmark `prepare synthetic`: simulated galaxies per second with 1 and 2 worker processes.

    python bench/simulate.py --n 600 --survey sdss --workers 1 2

Times drawing the population and votes plus rendering (GalSim) and writing the records,
in this process with its spawned workers; prints one table with the 2-vs-1 ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def time_run(n: int, survey: str, workers: int, out: Path) -> float:
    """Seconds to simulate and write n galaxies with the given worker count."""
    from galzoo_tf.data.prepare import PrepareOptions, write_records
    from galzoo_tf.data.sources.synthetic import load_synthetic

    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    write_records(load_synthetic(n, seed=0, survey=survey), out, PrepareOptions(test_size=0.1), workers=workers)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=600, help="galaxies per run")
    parser.add_argument("--survey", default="sdss", choices=["sdss", "hsc"], help="simulated survey")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for workers in args.workers:
            seconds = time_run(args.n, args.survey, workers, Path(scratch) / "out")
            rows.append((workers, seconds, args.n / seconds))
    print(f"prepare synthetic --survey {args.survey}, {args.n} galaxies; {platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{'workers':>8} {'seconds':>8} {'galaxies/s':>11}")
    for workers, seconds, rate in rows:
        print(f"{workers:>8} {seconds:>8.1f} {rate:>11.1f}")
    if len(rows) > 1:
        print(f"speed-up {rows[-1][0]} vs {rows[0][0]} worker(s): {rows[0][1] / rows[-1][1]:.2f}x")


if __name__ == "__main__":
    main()
