"""The Dask engine: prepare, predict and acquire on a LocalCluster of 2 workers give the local engine's results."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from galzoo_tf.engine import EngineSpec, LocalEngine, local_workers
from galzoo_tf.errors import BadInputError

pytest.importorskip("dask.distributed")
pytestmark = pytest.mark.xdist_group("dask")  # one cluster per xdist worker (make test runs --dist loadgroup)

PREDICT = dict(passes=6, tta=True, seed=3, batch_size=4)


@pytest.fixture(scope="module")
def dask_engine():
    with EngineSpec("dask", "local:2").start() as engine:
        yield engine


@pytest.fixture(scope="module")
def sharded_pool(tmp_path_factory) -> Path:
    """48 simulated galaxies in 12 shards of 4: more partitions than workers."""
    from galzoo_tf.data.prepare import PrepareOptions, write_records
    from galzoo_tf.data.sources.synthetic import load_synthetic

    out = tmp_path_factory.mktemp("sharded") / "records"
    write_records(load_synthetic(48, seed=5), out, PrepareOptions(test_size=0, val_fraction=0, seed=5, shard_size=4,
                                                                  size=64), workers=0)
    return out


def _tables_equal(a: Table, b: Table) -> None:
    assert a.colnames == b.colnames
    for name in a.colnames:
        assert np.array_equal(np.asarray(a[name]), np.asarray(b[name])), name


@contextmanager
def builds_per_worker(engine, kind: str) -> Iterator[list[int]]:
    """Count, on every worker of a Dask engine, how many times the partitioned writer builds a ``kind`` of
    cached object (e.g. loads a model); the list is filled on exit, one count per worker."""

    def install() -> None:  # on each worker: wrap the writer's cache so every build is noted
        from galzoo_tf import engine as cache
        from galzoo_tf.catalogues import partitioned

        built: list[str] = []

        def counted(key, build):
            return cache.worker_cache(key, lambda: built.append(key[0]) or build())

        counted.built = built
        partitioned.worker_cache = counted

    def collect() -> int:  # on each worker: its count, and the writer's own cache back
        from galzoo_tf import engine as cache
        from galzoo_tf.catalogues import partitioned

        count = partitioned.worker_cache.built.count(kind)
        partitioned.worker_cache = cache.worker_cache
        return count

    counts: list[int] = []
    engine.client.run(install)
    try:
        yield counts
    finally:
        counts.extend(engine.client.run(collect).values())


def test_scheduler_option_is_checked():
    assert local_workers("local:3") == 3 and local_workers("tcp://10.0.0.1:8786") is None
    for bad in ("local:0", "local:x", "cluster"):
        with pytest.raises(BadInputError, match="--scheduler"):
            EngineSpec("dask", bad)
    with pytest.raises(BadInputError, match="--engine"):
        EngineSpec("spark")
    with pytest.raises(BadInputError, match="needs --engine dask"):
        EngineSpec("local", "local:2")


def test_prepare_on_dask_writes_the_same_records(dask_engine, tmp_path):
    from galzoo_tf.data.prepare import PrepareOptions, write_records
    from galzoo_tf.data.sources.synthetic import load_synthetic

    options = PrepareOptions(test_size=6, val_fraction=0.2, seed=1, shard_size=5, size=48)
    local = write_records(load_synthetic(30, seed=4), tmp_path / "local", options, workers=0)
    dask = write_records(load_synthetic(30, seed=4), tmp_path / "dask", options, engine=dask_engine)
    assert dask.shards_written == local.shards_written > 2
    manifests = [(tmp_path / name / "manifest.json").read_text() for name in ("local", "dask")]
    assert manifests[0] == manifests[1]  # every shard's sha256 is in it
    assert sorted(p.name for p in (tmp_path / "dask").glob("*.tfrecord")) == \
        sorted(p.name for p in (tmp_path / "local").glob("*.tfrecord"))


def test_predict_on_dask_equals_the_local_engine_and_loads_the_model_once_per_worker(dask_engine, tiny_bar,
                                                                                      sharded_pool, tmp_path):
    from galzoo_tf.catalogues.partitioned import predict_partitioned
    from galzoo_tf.catalogues.predict import predict
    from galzoo_tf.data.inputs import RecordSource
    from galzoo_tf.tasks.registry import load_model
    from galzoo_tf.tasks.votes.catalogue import PredictOptions

    model, options = load_model(tiny_bar[1], "votes"), PredictOptions(**PREDICT)
    local = predict_partitioned([model], RecordSource(sharded_pool), tmp_path / "local", options, LocalEngine())
    with builds_per_worker(dask_engine, "catalogue sampler") as loads:
        dask = predict_partitioned([model], RecordSource(sharded_pool), tmp_path / "dask", options, dask_engine,
                                   merge=tmp_path / "merged.fits")
    assert local.rows == dask.rows == 48
    parts = sorted(p.name for p in (tmp_path / "dask").glob("*.parquet"))
    assert parts == [f"train-{i:05d}-of-00012.parquet" for i in range(12)]
    for name in parts:
        _tables_equal(Table.read(tmp_path / "local" / name), Table.read(tmp_path / "dask" / name))
    # one catalogue file, streamed in one process with the same batches, holds the same numbers
    predict([model], RecordSource(sharded_pool), tmp_path / "one.fits", options)
    _tables_equal(Table.read(tmp_path / "one.fits"), Table.read(tmp_path / "merged.fits"))
    assert sum(loads) <= 2 and max(loads) == 1, loads  # 12 tasks, at most one model load per worker


def test_a_rerun_skips_written_parts_and_other_options_are_refused(tiny_bar, sharded_pool, tmp_path):
    from galzoo_tf.catalogues.partitioned import predict_partitioned
    from galzoo_tf.data.inputs import RecordSource
    from galzoo_tf.tasks.registry import load_model
    from galzoo_tf.tasks.votes.catalogue import PredictOptions

    model, options = load_model(tiny_bar[1], "votes"), PredictOptions(**{**PREDICT, "tta": False})
    predict_partitioned([model], RecordSource(sharded_pool), tmp_path / "cat", options, LocalEngine())
    first = tmp_path / "cat" / "train-00000-of-00012.parquet"
    written = first.stat().st_mtime_ns
    again = predict_partitioned([model], RecordSource(sharded_pool), tmp_path / "cat", options, LocalEngine())
    assert again.rows == 48 and first.stat().st_mtime_ns == written
    with pytest.raises(BadInputError, match="other passes"):
        predict_partitioned([model], RecordSource(sharded_pool), tmp_path / "cat",
                            PredictOptions(**{**PREDICT, "tta": False, "passes": 7}), LocalEngine())


def test_acquire_on_dask_equals_the_single_process_result(dask_engine, tiny_bar, sharded_pool, tmp_path):
    from galzoo_tf.active.acquire import AcquireOptions, acquire
    from galzoo_tf.data.inputs import RecordSource
    from galzoo_tf.tasks.registry import load_model

    model = load_model(tiny_bar[1], "votes")
    options = AcquireOptions(n=10, passes=8, tta=True, seed=2, batch_size=4, montage=3)
    excluded = {"synthetic-5-0000003", "synthetic-5-0000030"}
    acquire(model, RecordSource(sharded_pool), tmp_path / "local.csv", options, excluded)
    result = acquire(model, RecordSource(sharded_pool), tmp_path / "dask.csv", options, excluded, engine=dask_engine)
    local, dask = pd.read_csv(tmp_path / "local.csv"), pd.read_csv(tmp_path / "dask.csv")
    pd.testing.assert_frame_equal(local, dask)
    assert not set(dask["id"]) & excluded and result.scored == 46
    assert result.montage.is_file()


def _galzoo(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "galzoo"), *args]


def _finished_parts(out: Path) -> dict[str, int]:
    """The catalogue parts written whole (a hidden temporary file is a part being written), by mtime."""
    return {p.name: p.stat().st_mtime_ns for p in out.glob("*.parquet") if not p.name.startswith(".")}


def test_a_killed_dask_predict_resumes_to_the_same_output(tiny_bar, sharded_pool, tmp_path):
    """Kill the CLI (and its cluster) once some parts are written; the re-run completes the same catalogue."""
    out = tmp_path / "cat"
    args = _galzoo("predict", "--model", str(tiny_bar[1]), "--data", str(sharded_pool), "--out", str(out),
                   "--passes", "40", "--batch-size", "2", "--seed", "3", "--engine", "dask", "--scheduler", "local:2")
    process = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not _finished_parts(out) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    kept = _finished_parts(out)
    assert 0 < len(kept) < 12, f"{len(kept)} parts when killed: not halfway"
    assert not (out / "_catalogue.json").exists()
    finished = subprocess.run([*args, "--merge", str(tmp_path / "resumed.parquet")], capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert {name: mtime for name, mtime in _finished_parts(out).items() if name in kept} == kept
    assert not list(out.glob(".*tmp*")), "a part interrupted mid-write was left behind"
    reference = tmp_path / "reference.parquet"
    done = subprocess.run(_galzoo("predict", "--model", str(tiny_bar[1]), "--data", str(sharded_pool),
                                  "--out", str(tmp_path / "ref"), "--merge", str(reference), "--passes", "40",
                                  "--batch-size", "2", "--seed", "3"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    _tables_equal(Table.read(reference), Table.read(tmp_path / "resumed.parquet"))


def test_dask_predict_into_one_file_is_a_clear_error(tiny_bar, sharded_pool, tmp_path):
    done = subprocess.run(_galzoo("predict", "--model", str(tiny_bar[1]), "--data", str(sharded_pool), "--out",
                                  str(tmp_path / "cat.fits"), "--engine", "dask"), capture_output=True, text=True)
    assert done.returncode == 2 and "give --out DIR" in done.stderr


def test_image_folder_partitions_keep_each_galaxys_random_keys(tiny_bar, gz2, monkeypatch, tmp_path):
    """Blocks of files as partitions: the merged catalogue equals one streamed pass over the folder."""
    from galzoo_tf.catalogues.partitioned import predict_partitioned
    from galzoo_tf.catalogues.predict import predict
    from galzoo_tf.data import inputs
    from galzoo_tf.tasks.registry import load_model
    from galzoo_tf.tasks.votes.catalogue import PredictOptions

    monkeypatch.setattr(inputs, "FOLDER_PART_FILES", 8)
    model, options = load_model(tiny_bar[1], "votes"), PredictOptions(**PREDICT)
    folder = inputs.FolderSource(gz2.images, model.image)
    assert folder.partitions() == [f"part-{i:05d}" for i in range(5)]  # 40 images in blocks of 8
    predict_partitioned([model], folder, tmp_path / "parts", options, LocalEngine(), merge=tmp_path / "merged.csv")
    predict([model], inputs.FolderSource(gz2.images, model.image), tmp_path / "one.csv", options)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "merged.csv"))


def test_the_worker_cache_builds_once_per_key_and_stays_bounded():
    from galzoo_tf import engine

    built = []
    for key in ("a", "a", "b", "a", "c", "a"):
        engine.worker_cache(("cache test", key), lambda key=key: built.append(key) or key)
    assert built == ["a", "b", "c", "a"]  # "a" was dropped for "c" (two kept), then built again
    assert sum(k[0] == "cache test" for k in engine._CACHE) <= engine.CACHE_SIZE
