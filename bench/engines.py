"""Benchmark the engines: partitioned predict on the local engine vs a Dask LocalCluster, and acquire.

    python bench/engines.py --model data/bench/suite/bar-model --pool data/bench/suite/pool --workers 2

One run times `predict --out DIR` (one Parquet part per shard, T passes with test-time
augmentation) twice on the local engine and twice on a Dask cluster of N local worker
processes (cluster start-up timed apart): the first run includes each process's TensorFlow
import, model load and sampler tracing, the second only the work. It checks that both
engines wrote the same catalogue, and times `acquire` (BALD, T passes with TTA, top 128) on
the local engine. Galaxy-passes/s = galaxies x T per second.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path


def measure(model_dir: Path, pool: Path, workers: int = 2, passes: int = 10, batch_size: int = 32) -> dict:
    """Seconds and galaxies/s of predict on each engine, and of acquire on the local engine."""
    import pandas as pd

    from galzoo_tf.active.acquire import AcquireOptions, acquire
    from galzoo_tf.catalogues.partitioned import predict_partitioned
    from galzoo_tf.data.inputs import RecordSource
    from galzoo_tf.engine import EngineSpec, LocalEngine
    from galzoo_tf.tasks.registry import load_model
    from galzoo_tf.tasks.votes.catalogue import PredictOptions

    model = load_model(model_dir, "votes")
    options = PredictOptions(passes=passes, batch_size=batch_size)
    galaxies = RecordSource(pool).total
    with tempfile.TemporaryDirectory() as folder:
        def timed(engine, name: str) -> float:
            start = time.perf_counter()
            predict_partitioned([model], RecordSource(pool), Path(folder) / name, options, engine)
            return time.perf_counter() - start

        local, local_warm = timed(LocalEngine(), "local"), timed(LocalEngine(), "local-again")
        start = time.perf_counter()
        with EngineSpec("dask", f"local:{workers}").start() as engine:
            startup = time.perf_counter() - start
            dask, dask_warm = timed(engine, "dask"), timed(engine, "dask-again")
        same = all(pd.read_parquet(part).equals(pd.read_parquet(Path(folder) / "dask" / part.name))
                   for part in sorted((Path(folder) / "local").glob("*.parquet")))
        start = time.perf_counter()
        acquire(model, RecordSource(pool), Path(folder) / "acquired.csv",
                AcquireOptions(n=128, passes=passes, batch_size=batch_size), set())
        acquired = time.perf_counter() - start
    return {"galaxies": galaxies, "passes": passes, "workers": workers, "local_s": local, "dask_s": dask,
            "local_warm_s": local_warm, "dask_warm_s": dask_warm, "dask_startup_s": startup,
            "same_catalogue": same, "acquire_s": acquired, "local_passes_per_s": galaxies * passes / local,
            "dask_passes_per_s": galaxies * passes / dask, "local_warm_passes_per_s": galaxies * passes / local_warm,
            "dask_warm_passes_per_s": galaxies * passes / dask_warm, "acquire_galaxies_per_s": galaxies / acquired}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--pool", type=Path, required=True, help="records with several shards")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--passes", type=int, default=10)
    args = parser.parse_args()
    r = measure(args.model, args.pool, args.workers, args.passes)
    print(f"{r['galaxies']} galaxies, T = {r['passes']} with TTA; {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    for kind, label in (("", "first run"), ("_warm", "second run, models already loaded")):
        print(f"predict, local engine, {label}: {r['local' + kind + '_s']:7.1f} s  "
              f"{r['local' + kind + '_passes_per_s']:8.0f} galaxy-passes/s")
        print(f"predict, Dask {r['workers']} workers, {label}: {r['dask' + kind + '_s']:7.1f} s  "
              f"{r['dask' + kind + '_passes_per_s']:8.0f} galaxy-passes/s")
        print(f"Dask / local, {label}: {r['local' + kind + '_s'] / r['dask' + kind + '_s']:7.2f}x")
    print(f"cluster start-up {r['dask_startup_s']:.1f} s (apart); same catalogue: {r['same_catalogue']}")
    print(f"acquire (BALD), local engine:  {r['acquire_s']:7.1f} s  {r['acquire_galaxies_per_s']:8.1f} galaxies/s")


if __name__ == "__main__":
    main()
