"""Signals: SIGTERM (what Slurm, `timeout` and `kill` send) stops a run as Ctrl-C does, and workers never outlive it.

A run stopped either way unwinds normally: temporaries are removed, locks released, finished
shards, epochs and catalogue parts kept for the next run to resume from. Worker processes
ignore Ctrl-C (the terminal sends it to the whole group; their parent stops them), die on
SIGTERM (as a pool stops its workers once one of them is lost; their temporaries are swept
by the next run) and exit by themselves when the parent dies, even by SIGKILL, so no orphan
keeps its memory. Standard library only:
spawned workers import this module before anything else.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

PARENT_POLL_SECONDS = 0.5


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is, so it unwinds like Ctrl-C."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises ``Terminated`` in the main thread (elsewhere: nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_when_orphaned(parent: int) -> None:
    while True:
        time.sleep(PARENT_POLL_SECONDS)
        if os.getppid() != parent:
            os._exit(1)


def die_with_parent() -> None:
    """Initializer of a worker process: ignore SIGINT (the parent stops its workers), keep SIGTERM's default (a
    broken pool terminates the rest) and exit within half a second of the parent's death, however it died."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = os.getppid()
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True, name="galzoo-orphan-watch").start()
