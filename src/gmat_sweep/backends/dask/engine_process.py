"""The single-threaded process in which a Dask worker runs GMAT.

A Dask worker process is multi-threaded by nature (its event loop, heartbeats, the task thread), and a GMAT run is
~30-50 % slower in a multi-threaded process (docs/architecture.md, "Workers run single-threaded"). So each Dask
worker hands its runs to a child process of its own: LocalPool's worker process (``backends/local/process.py``,
spawned with ``spawn.SINGLE_THREADED``), started on the first run and kept for the worker's life. While a mission
runs, the Dask worker's thread waits on the child's pipe without holding the GIL, so the worker keeps answering its
scheduler; a run that overruns its time limit, or crashes GMAT, costs only the child, which is started again for
the next run.

``GMAT_SWEEP_ENGINE_PROCESS=0`` in a worker's environment runs missions in the worker process itself (the way to
compare the two, and a way out on a host that forbids a worker to start processes).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

from ...records import RunOutcome, RunSpec
from ...worker import run_one
from ..base import RunTimedOut, WorkerLost
from ..local.process import READY, WorkerProcess

#: Set to 0 to run missions inside the Dask worker process instead.
SWITCH = "GMAT_SWEEP_ENGINE_PROCESS"
#: How long a new engine process may take to start (a Python interpreter and gmat-sweep's imports).
START_SECONDS = 120.0

_lock = threading.Lock()
_idle: list[EngineProcess] = []  # started engine processes no run is using (one per worker thread at most)
_live: list[EngineProcess] = []  # every engine process started here that was not closed
_owner = os.getpid()  # the process _idle belongs to (a forked copy of this module must not use its parent's)
# Children are started from this one long-lived thread: a child asks the kernel to kill it when the *thread* that
# started it ends (PR_SET_PDEATHSIG), and Dask may retire its task threads.
_starter = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gmat-sweep-engine-starter")


def enabled() -> bool:
    """Whether runs go to an engine process (the default) or run in this process."""
    return os.environ.get(SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


class EngineProcess:
    """One single-threaded child process that runs missions for this Dask worker, one at a time.

    >>> child = EngineProcess(tempfile.gettempdir())  # doctest: +SKIP
    >>> outcome = child.run(spec, limit=60.0, where="tcp://10.0.0.5:40123")  # RunOutcome, or the WorkerLost
    """

    def __init__(self, tmp: str) -> None:
        with _may_have_children():
            self.handle = WorkerProcess(multiprocessing.get_context("spawn"), tmp)
        if not self.handle.conn.poll(START_SECONDS):
            self.close()
            raise WorkerLost(f"GMAT's engine process did not start within {START_SECONDS:g} s")
        try:
            ready = self.handle.conn.recv_bytes()
        except (EOFError, OSError):
            raise WorkerLost(f"GMAT's engine process could not start: {self.handle.death()}") from None
        if ready != READY:
            self.close()
            raise WorkerLost(f"GMAT's engine process sent {ready[:40]!r} instead of its ready line")
        with _lock:
            _live.append(self)

    @property
    def pid(self) -> int:
        return self.handle.process.pid

    def alive(self) -> bool:
        return self.handle.process.is_alive()

    def run(self, spec: RunSpec, limit: float | None, where: str) -> RunOutcome | WorkerLost:
        """``run_one(spec)`` in this process, or the :class:`WorkerLost` (:class:`RunTimedOut`) that ended it, in
        which case this process is gone."""
        start = time.monotonic()
        try:
            self.handle.conn.send((run_one, (spec,)))
        except OSError:
            return self._lost(where, start)
        # Waiting on the pipe releases the GIL: the Dask worker keeps its heartbeat while the mission runs.
        if not self.handle.conn.poll(limit):
            elapsed = time.monotonic() - start
            self.close(kill=True)
            return RunTimedOut(f"timed out after {limit:g} s; its engine process {self.pid} on Dask worker {where} "
                               "was killed (the worker goes on)", elapsed, limit)
        try:
            ok, value = self.handle.conn.recv()
        except (EOFError, OSError):
            return self._lost(where, start)
        if not ok:  # run_one never raises; this is a failure of the task itself (unpicklable result...)
            return WorkerLost(f"the engine process on Dask worker {where} failed: {value}",
                              time.monotonic() - start)
        return value

    def _lost(self, where: str, start: float) -> WorkerLost:
        elapsed = time.monotonic() - start
        death = self.handle.death()
        self.close(kill=True)
        return WorkerLost(f"GMAT's {death.replace('worker process', 'engine process', 1)} on Dask worker {where} "
                          "(the worker goes on)", elapsed)

    def close(self, kill: bool = False) -> None:
        with _lock:
            if self in _live:
                _live.remove(self)
        with contextlib.suppress(Exception):
            self.handle.stop(kill=kill)


@contextlib.contextmanager
def _may_have_children() -> Iterator[None]:
    """Let this process start a child although it is a daemonic multiprocessing process (Dask's nanny starts its
    workers so). multiprocessing forbids it so that a daemon's children are not orphaned; an engine process asks
    the kernel to kill it when its parent ends, so none is."""
    config: dict[str, Any] = multiprocessing.current_process()._config  # type: ignore[attr-defined]
    daemon = config.pop("daemon", None)
    try:
        yield
    finally:
        if daemon is not None:
            config["daemon"] = daemon


def take(tmp: str) -> EngineProcess:
    """An engine process for one batch of runs: an idle one of this worker's, or a new one started in ``tmp``."""
    global _owner
    with _lock:
        if _owner != os.getpid():
            _idle.clear()
            _live.clear()
            _owner = os.getpid()
        while _idle:
            child = _idle.pop()
            if child.alive():
                return child
            child.close()
    return _starter.submit(EngineProcess, tmp).result()


def give_back(child: EngineProcess) -> None:
    """``child`` can take the next batch (a child that died is dropped)."""
    if child.alive():
        with _lock:
            _idle.append(child)


def pids() -> list[int]:
    """The process ids of this worker's engine processes, busy or idle (``client.run(pids)`` lists them all)."""
    with _lock:
        return [child.pid for child in _live]


def default_tmp(local_directory: str | None) -> str:
    """Where an engine process keeps its temporary folder: the Dask worker's own local directory."""
    return local_directory if local_directory and os.path.isdir(local_directory) else tempfile.gettempdir()
