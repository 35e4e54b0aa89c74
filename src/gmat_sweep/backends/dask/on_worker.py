"""What runs inside a Dask worker: a batch of runs (their files returned or written in place), each in the worker's
single-threaded engine process (``engine_process.py``), which also enforces the run's time limit; and the nanny's
watchdog, which does it for a worker that runs missions in its own process (``GMAT_SWEEP_ENGINE_PROCESS=0``)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import pickle
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

from ...distribution import install_hint

try:
    import distributed
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(f"DaskPool needs Dask's distributed package: {install_hint('dask')}") from exc

from ...atomic import write_bytes
from ...records import RunOutcome, RunSpec
from ...worker import run_one
from ...worker_process import SYSTEM_TMPDIR
from ..base import WorkerLost, task_limit
from . import engine_process
from .admission import installed_versions

WATCHDOG_PLUGIN = "gmat-sweep-watchdog"
TIMEOUT_TOPIC = "gmat-sweep-timeout"
#: Where a worker leaves its run's deadline for its nanny, when the two do not share a TMPDIR.
WATCH_DIR = "GMAT_SWEEP_WATCH_DIR"


def run_batch(specs: list[RunSpec], return_files: bool, timeout: float | None) -> list[RunOutcome | WorkerLost]:
    """Run ``specs`` one after the other on this worker. In return mode each run writes into a private folder
    whose files travel back in ``outcome.payload``. A run that timed out or crashed its engine process has the
    :class:`WorkerLost` that says so in its place."""
    worker = distributed.get_worker()
    key = str(worker.get_current_task())
    versions = installed_versions()
    child = None
    outcomes: list[RunOutcome | WorkerLost] = []
    try:
        for spec in specs:
            scratch = None
            if return_files:
                scratch = _private_folder(worker.local_directory)
                spec = dataclasses.replace(spec, out_dir=scratch)
            elif os.path.isdir(spec.out_dir):
                shutil.rmtree(spec.out_dir, ignore_errors=True)  # what an attempt on a worker that died left behind
            limit = task_limit(timeout, (spec,))
            if not engine_process.enabled():
                with _watchdog(limit, key, spec.run_id):
                    outcome: RunOutcome | WorkerLost = run_one(spec)
            else:
                if child is None or not child.alive():
                    child = None
                    try:
                        child = engine_process.take(engine_process.default_tmp(worker.local_directory))
                    except WorkerLost as exc:
                        outcomes.append(exc)
                        continue
                outcome = child.run(spec, limit, worker.address)
            if scratch is not None:
                files = _take_files(scratch)  # emptied whatever became of the run
                if isinstance(outcome, RunOutcome):
                    outcome.payload = files
            if isinstance(outcome, RunOutcome):
                outcome.worker = worker.address
                outcome.fingerprint = {**(outcome.fingerprint or {}), "versions": versions}
            outcomes.append(outcome)
    finally:
        if child is not None:
            engine_process.give_back(child)
    return outcomes


def run_batch_packed(specs: list[RunSpec], return_files: bool, timeout: float | None) -> bytes:
    """:func:`run_batch`, its list of outcomes pickled into one buffer.

    Dask serializes a task's list result element by element, and the driver's event loop unpacks each; one buffer
    is one frame on the wire and one ``pickle.loads`` on the driver, and what the outcomes share (the versions
    dict in every fingerprint) is pickled once. The driver checked the workers' gmat-sweep version first
    (``admission.py``), so both sides read the same classes."""
    return pickle.dumps(run_batch(specs, return_files, timeout), protocol=pickle.HIGHEST_PROTOCOL)


_private = threading.local()  # each worker thread's folder for return-mode runs


def _private_folder(local_directory: str) -> str:
    """An empty folder, private to this worker thread, for one return-mode run.

    One folder serves every run of the thread and is emptied as its files are taken: creating and removing a
    folder for each run costs more than the run's own files on some filesystems. (A worker with several threads
    runs missions in turn, but each thread prepares and collects its own.)"""
    folder = getattr(_private, "folder", None)
    if folder is None or not os.path.isdir(folder) or os.listdir(folder):
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)  # a run that stopped before its files were taken
        folder = _private.folder = tempfile.mkdtemp(prefix=f"gmat-sweep-runs-{os.getpid()}-", dir=local_directory)
    return folder


def _take_files(directory: str) -> dict[str, bytes]:
    """Read every file a run left in ``directory`` and remove it, leaving the folder empty for the next run."""
    files = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                files[name] = handle.read()
            os.remove(path)
        else:
            shutil.rmtree(path, ignore_errors=True)
    return files


@contextlib.contextmanager
def _watchdog(timeout: float | None, key: str, run_id: int) -> Iterator[None]:
    """Tell this worker's nanny when the run must be over. GMAT holds the GIL for a whole mission, so nothing in
    this process can act on time: the nanny (another process) reads the note, and kills this process if it must."""
    if not timeout:
        yield
        return
    path = _watch_path(os.getpid())
    now = time.time()
    note = {"key": key, "run_id": run_id, "timeout": timeout, "start": now, "deadline": now + timeout}
    write_bytes(path, json.dumps(note).encode())  # the nanny may read it at any moment
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)


def _watch_path(pid: int) -> str:
    # The nanny's folder: a LocalCluster's workers have a TMPDIR of their own (see _local_cluster), and a run moves
    # its process's TMPDIR into a private folder (worker_process.private_gmat_temp), which processes started later
    # from that one inherit while their nanny does not: both sides look past it to the system's temporary folder.
    folder = os.environ.get(WATCH_DIR) or os.environ.get(SYSTEM_TMPDIR) or tempfile.gettempdir()
    return os.path.join(folder, f"gmat-sweep-watch-{pid}.json")


class Watchdog:
    """On each nanny: kill the worker process when a run outlives its timeout, after telling the driver why.

    The nanny restarts the worker at once; the driver records the run as failed and cancels its task first, so
    that Dask does not hand the same hung run to another worker."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def setup(self, nanny: Any) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch(nanny))

    async def teardown(self, nanny: Any) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _watch(self, nanny: Any) -> None:
        while True:
            await asyncio.sleep(self.interval)
            with contextlib.suppress(Exception):  # a watchdog must never die of a bad note
                await self._check(nanny)

    async def _check(self, nanny: Any) -> None:
        pid = nanny.pid
        if not pid:
            return
        path = _watch_path(pid)
        try:
            with open(path) as handle:
                note = json.load(handle)
        except (OSError, ValueError):
            return
        if time.time() < note["deadline"]:
            return
        os.remove(path)
        worker = getattr(nanny, "worker_address", None) or "?"
        reason = f"timed out after {note['timeout']:g} s; its worker process {pid} ({worker}) was killed"
        nanny.log_event(TIMEOUT_TOPIC, {"key": note["key"], "run_id": note["run_id"], "reason": reason,
                                        "timeout": note["timeout"], "elapsed": time.time() - note["start"]})
        await asyncio.sleep(1.0)  # time for the driver to cancel the task, so that Dask does not run it again
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # the nanny sees its worker exit and starts a fresh one
