"""Benchmark the image encoding of records: raw uint8 bytes vs lossless PNG.

    python bench/record_encoding.py --n 2000

Measures, on the same folder of 424x424 JPEGs (shared with bench/prepare.py): bytes per
galaxy on disk, prepare galaxies/s (2 workers), and tf.data read+parse+decode images/s
(batches of 64, all cores). The decision and the numbers are in docs/records.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from pathlib import Path


def read_rate(out: Path, repeats: int = 3) -> float:
    """Images/s decoded by the record pipeline, best of ``repeats`` passes (after one warm-up)."""
    import tensorflow as tf

    from galzoo_tf.data import records

    dataset = records.read_records(out).batch(64).prefetch(tf.data.AUTOTUNE)
    best = 0.0
    for _ in range(repeats + 1):
        start, count = time.perf_counter(), 0
        for batch in dataset:
            count += int(batch["image"].shape[0])
        best = max(best, count / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="number of 424x424 JPEGs")
    parser.add_argument("--workdir", type=Path, default=Path("data/bench/prepare"), help="cache of inputs")
    args = parser.parse_args()
    from bench_inputs import build_folder

    from galzoo_tf.data.prepare import PrepareOptions, write_records
    from galzoo_tf.data.sources.folder import load_folder

    images, labels = build_folder(args.workdir, args.n)
    print(f"record encoding, {args.n} galaxies 256x256x3; {platform.machine()}, {os.cpu_count()} cores")
    print(f"{'encoding':<10} {'KiB/galaxy':>11} {'prepare gal/s':>14} {'read+decode img/s':>18}")
    for encoding in ("raw", "png"):
        out = args.workdir / f"out-{encoding}"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        write_records(load_folder(images, labels), out, PrepareOptions(test_size=0, encoding=encoding), workers=2)
        prepare_rate = args.n / (time.perf_counter() - start)
        size = sum(p.stat().st_size for p in out.glob("*.tfrecord")) / args.n / 1024
        print(f"{encoding:<10} {size:>11.1f} {prepare_rate:>14.0f} {read_rate(out):>18.0f}")


if __name__ == "__main__":
    main()
