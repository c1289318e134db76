"""Peak resident memory of `galzoo predict` and `galzoo acquire` against the size of the pool: it must be flat.

    python bench/memory.py --sizes 100000 1000000

Builds (cached in --workdir) a tiny bar model (32 px input, one epoch) and pools of N records
that repeat 400 simulated galaxies, binned to 32x32 pixels, under new ids, then runs each command in a fresh process
and reads its peak RSS from the kernel (``wait4``'s ru_maxrss). Predict writes a partitioned
catalogue (one Parquet part per 1000-record shard); acquire keeps the top 128 by BALD.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

BASE_GALAXIES = 400
SHARD = 1000
POOL_SIDE = 32


def galzoo(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("galzoo")), *args]


def build_model(workdir: Path) -> tuple[Path, Path]:
    """(base records, model directory), made once."""
    records, model = workdir / "base", workdir / "model"
    if not (model / "galzoo.json").is_file():
        subprocess.run(galzoo("prepare", "synthetic", "--n", str(BASE_GALAXIES), "--out", str(records),
                              "--test-size", "40", "--seed", "0"), check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(galzoo("train", "--data", str(records), "--question", "bar", "--epochs", "1",
                              "--image-size", "32", "--batch-size", "64", "--out", str(model), "--seed", "0"),
                       check=True, stdout=subprocess.DEVNULL)
    return records, model


def build_pool(base: Path, out: Path, size: int) -> Path:
    """``size`` records repeating the base images under new ids (``pool-0000000``...), in shards of 1000."""
    from galzoo_tf.data import records
    from galzoo_tf.data.inputs import RecordSource
    from galzoo_tf.data.layout import FORMAT, MANIFEST

    if (out / MANIFEST).is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    source = RecordSource(base)
    side = source.manifest["image"]["shape"][0]  # 256: binned 8 x 8 to 32 x 32 (the model's input size)
    images = [image.reshape(POOL_SIDE, side // POOL_SIDE, POOL_SIDE, side // POOL_SIDE, -1).mean(axis=(1, 3))
              .astype(image.dtype).tobytes() for batch in source.batches(256) for image in batch.images]
    count = -(-size // SHARD)
    shards = []
    for number in range(count):
        start, stop = number * SHARD, min(size, (number + 1) * SHARD)
        examples = (records.encode_example(f"pool-{i:07d}", images[i % len(images)], {}, {}, "train")
                    for i in range(start, stop))
        info = records.write_shard(out / f"train-{number:05d}-of-{count:05d}.tfrecord", examples)
        shards.append({**info, "split": "train"})
    manifest = {"format": FORMAT, "source": "bench: repeated synthetic galaxies", "schema": "gz2", "questions": {},
                "image": {**source.manifest["image"], "shape": [POOL_SIDE, POOL_SIDE, 3]}, "int_features": [],
                "float_features": [], "seed": 0,
                "splits": {"train": size, "val": 0, "test": 0}, "total": size, "shards": shards,
                "fingerprint": hashlib.sha256(f"{size}:{source.manifest['fingerprint']}".encode()).hexdigest()}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return out


# The command runs under a small wrapper that reports its child's peak RSS: measured from a large
# parent (bench/suite.py holds GiBs of TensorFlow state), a child's ru_maxrss would count the
# parent's pages it was forked with.
WRAPPER = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")


def peak_rss(command: list[str]) -> tuple[float, float]:
    """(peak resident memory in GiB, seconds) of one command run in a fresh process."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-S", "-c", WRAPPER, *command], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-2000:]}")
    return int(done.stdout.split()[-1]) / 2**20, seconds  # ru_maxrss is in KiB on Linux


def measure(workdir: Path, sizes: list[int], passes: int = 5) -> list[dict]:
    """Peak RSS and galaxies/s of predict (partitioned) and acquire for each pool size."""
    base, model = build_model(workdir)
    rows = []
    for size in sizes:
        pool = build_pool(base, workdir / f"pool-{size}", size)
        common = ["--model", str(model), "--passes", str(passes), "--no-tta", "--batch-size", "256"]
        shutil.rmtree(workdir / "catalogue", ignore_errors=True)
        commands = {"predict": galzoo("predict", *common, "--data", str(pool), "--out", str(workdir / "catalogue")),
                    "acquire": galzoo("acquire", *common, "--pool", str(pool), "--n", "128",
                                      "--out", str(workdir / "acquired.csv"))}
        for name, command in commands.items():
            gib, seconds = peak_rss(command)
            rows.append({"command": name, "pool": size, "peak_rss_gib": gib, "seconds": seconds,
                         "galaxies_per_s": size / seconds})
        shutil.rmtree(workdir / "catalogue", ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path("data/bench/memory"))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    rows = measure(args.workdir, args.sizes, args.passes)
    print(f"peak RSS, tiny 32 px bar model, T = {args.passes}, no TTA, batch 256; {platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{'command':<8} {'pool':>10} {'peak RSS GiB':>13} {'seconds':>8} {'galaxies/s':>11}")
    for row in rows:
        print(f"{row['command']:<8} {row['pool']:>10,} {row['peak_rss_gib']:>13.2f} {row['seconds']:>8.0f} "
              f"{row['galaxies_per_s']:>11.0f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
