"""Where shard-parallel work runs: in this process (``local``) or on a Dask cluster (``dask``).

The unit of work is a record shard (or a block of catalogue rows or image files). The local
engine runs the tasks one after the other in this process; the Dask engine submits them to a
``dask.distributed`` cluster (a ``LocalCluster`` of N worker processes with ``local:N``, or a
running scheduler's address, e.g. one started by dask-jobqueue on Slurm or PBS). Tasks carry
paths, not data: workers must see the same file system. A worker keeps what is expensive to
build (a loaded model, a traced sampler) in ``worker_cache`` for the next task.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from galzoo_tf.errors import BadInputError

ENGINES = ("local", "dask")

CACHE_SIZE = 2  # objects kept per process: a worker serving job after job does not grow without bound
_CACHE: dict[tuple, Any] = {}


def worker_cache(key: tuple, build: Callable[[], Any]) -> Any:
    """The object built for ``key`` in this process, built on first use and kept (one model per worker);
    the oldest of ``CACHE_SIZE`` is dropped for a new one."""
    if key not in _CACHE:
        while len(_CACHE) >= CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = build()
    return _CACHE[key]


@dataclass(frozen=True)
class EngineSpec:
    """``--engine`` and ``--scheduler`` as given on the command line, checked."""

    engine: str = "local"
    scheduler: str | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise BadInputError("bad option", f"--engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if self.engine == "local" and self.scheduler:
            raise BadInputError("bad option", "--scheduler needs --engine dask")
        if self.engine == "dask":
            local_workers(self.scheduler or "local:2")

    @property
    def distributed(self) -> bool:
        return self.engine == "dask"

    def start(self) -> Engine:
        """The engine, ready to run tasks (a Dask client is connected or a local cluster started)."""
        return DaskEngine(self.scheduler or "local:2") if self.distributed else LocalEngine()


LOCAL = EngineSpec()  # this process
Starter = Callable[[EngineSpec], AbstractContextManager["Engine | None"]]  # starts (and shows) an engine


def no_status(_: str) -> AbstractContextManager:
    return nullcontext()


@contextmanager
def running(spec: EngineSpec, status: Callable[[str], AbstractContextManager] = no_status) -> Iterator[Engine | None]:
    """None for the local engine (the single-process path), else the started engine, closed on exit;
    ``status`` shows the start (a console spinner in the CLI)."""
    if not spec.distributed:
        yield None
        return
    with status(f"starting Dask ({spec.scheduler or 'local:2'})"):
        started = spec.start()
    with started:
        yield started


def local_workers(scheduler: str) -> int | None:
    """N of ``local:N`` (a LocalCluster of N worker processes), None for a scheduler address."""
    if not scheduler.startswith("local"):
        if "://" not in scheduler and ":" not in scheduler:
            raise BadInputError("bad option", f"--scheduler {scheduler!r}: give local:N or a scheduler address "
                                              "such as tcp://10.0.0.1:8786")
        return None
    count = scheduler.partition(":")[2] or "2"
    if not count.isdigit() or int(count) < 1:
        raise BadInputError("bad option", f"--scheduler {scheduler!r}: local:N needs N >= 1 workers")
    return int(count)


def tensorflow_threads(workers: int) -> dict[str, str]:
    """Environment giving each of ``workers`` local worker processes its share of the cores for TensorFlow's
    thread pools (without it every worker sizes its pools to the whole machine and they fight)."""
    share = str(max(1, (os.cpu_count() or 1) // workers))
    return {"TF_NUM_INTRAOP_THREADS": share, "TF_NUM_INTEROP_THREADS": share, "OMP_NUM_THREADS": share}


class Engine(AbstractContextManager):
    """Runs ``fn(item, shared)`` for every item and yields ``(item, result)`` as tasks finish.

    ``shared`` (the job: model paths, options, ids to exclude) is sent to each worker once, not
    once per task.
    """

    def run(self, fn: Callable, items: Iterable, shared: Any = None) -> Iterator[tuple[Any, Any]]:
        raise NotImplementedError

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the cluster (nothing to do for the local engine)."""


class LocalEngine(Engine):
    """The single-process path: tasks in order, in this process."""

    def run(self, fn: Callable, items: Iterable, shared: Any = None) -> Iterator[tuple[Any, Any]]:
        for item in items:
            yield item, fn(item, shared)


class DaskEngine(Engine):
    """Tasks on a ``dask.distributed`` cluster; results come back in the order tasks finish."""

    def __init__(self, scheduler: str) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as error:
            raise BadInputError("missing extra", 'the Dask engine needs dask.distributed: '
                                                 'pip install "galzoo[dask]"') from error
        workers = local_workers(scheduler)
        self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                    env=tensorflow_threads(workers)) if workers else None
        self.client = Client(self.cluster if self.cluster else scheduler)

    def run(self, fn: Callable, items: Iterable, shared: Any = None) -> Iterator[tuple[Any, Any]]:
        from dask.distributed import as_completed

        items = list(items)
        if not items:
            return
        job = self.client.scatter(shared, broadcast=True, hash=False)
        futures = self.client.map(fn, items, [job] * len(items), pure=False)
        item_of = {future.key: item for future, item in zip(futures, items, strict=True)}
        try:
            for future in as_completed(futures):
                yield item_of[future.key], future.result()
        finally:
            self.client.cancel(futures)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
