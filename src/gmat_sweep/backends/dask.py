"""DaskPool: run a sweep on any Dask cluster (a LocalCluster, Kubernetes, Slurm through dask-jobqueue).

>>> from distributed import Client
>>> with DaskPool(client=Client("tcp://scheduler:8786")) as pool:
...     df = sweep("mission.script", grid={"Sat.SMA": [7000, 7100]}, backend=pool, out="sweeps/sma")

What it adds to plain Dask, and why:

* **A gate in front of every worker.** Before a sweep, every worker reports its gmat-sweep, Python, pandas,
  pyarrow, numpy and distributed versions and starts its GMAT engine (once per process, which is also the warm-up).
  Versions that differ from the driver's, or an engine that differs between workers, refuse the sweep with the odd
  workers named. A worker plugin repeats the check on every worker that joins later (autoscaling, a restarted
  worker) and only then grants it a Dask *resource* that every run requires, so a worker that does not pass never
  receives a run.
* **Where the files go.** By default (*return mode*) a worker runs each mission into a private temporary folder and
  ships its files back inside the outcome; the driver writes them under ``out/runs/<id>/``. With
  ``shared_storage=True`` workers write under ``out=`` directly; the pool first proves that every worker sees the
  driver's ``out=`` (a token file the driver writes must be readable, and the folder writable, from each worker).
* **Batching.** Missions of a few tens of milliseconds would spend as long in Dask's bookkeeping as in GMAT, so once
  the first runs show how long a run takes, runs shorter than 0.2 s travel in batches of about 0.5 s of work.
* **Lost workers.** A worker that dies mid-run has its tasks rescheduled by Dask. A batch that keeps killing
  workers is split so that only the run that crashes GMAT fails (with ``WorkerLost``); a sweep whose cluster has no
  usable worker for ``worker_wait`` seconds stops with :class:`DaskPoolError` instead of hanging. Every finished
  run is already in the manifest, so ``Sweep.from_manifest(out).resume()`` finishes the rest.
* **Timeouts.** A run that overruns ``timeout`` (or the sweep's) is recorded as failed and its worker process is
  killed by a watchdog in the worker's nanny: GMAT holds the GIL for a whole mission, so nothing inside the worker
  process can act meanwhile. The nanny starts a fresh worker at once. Workers without a nanny cannot time out runs.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import math
import os
import platform
import shutil
import signal
import socket
import tempfile
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError
from typing import Any

from ..distribution import install_hint

try:
    import distributed
    from distributed import KilledWorker, NannyPlugin, WorkerPlugin
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(f"DaskPool needs Dask's distributed package: {install_hint('dask')}") from exc

from ..records import RunOutcome, RunSpec
from ..worker import run_one
from .base import Pool, RunTimedOut, WorkerLost, task_limit

logger = logging.getLogger("gmat_sweep.dask")

#: Versions every worker must share with the driver (results and pickles depend on them).
DRIVER_KEYS = ("gmat-sweep", "python", "pandas", "pyarrow", "numpy", "distributed")
#: Engine facts every worker must share with the other workers (the numbers depend on them).
ENGINE_KEYS = ("engine", "gmat_version", "gmatpy")
#: Runs shorter than this (seconds) are batched ...
SHORT_RUN = 0.2
#: ... into tasks of about this much work, at most MAX_BATCH runs each.
TASK_SECONDS = 0.5
MAX_BATCH = 64
GATE_PLUGIN = "gmat-sweep-gate"
WATCHDOG_PLUGIN = "gmat-sweep-watchdog"
TIMEOUT_TOPIC = "gmat-sweep-timeout"
#: Where a worker leaves its run's deadline for its nanny, when the two do not share a TMPDIR.
WATCH_DIR = "GMAT_SWEEP_WATCH_DIR"
REFUSED_TOPIC = "gmat-sweep-refused"


class DaskPoolError(ValueError):
    """The Dask cluster cannot run the sweep as asked (unreachable, no workers, mismatched versions, unshared
    storage). The message names what is wrong and what to do; nothing finished is lost."""


class DaskPool(Pool):
    """Runs a sweep's missions on a Dask cluster.

    ``client``: dispatch through this ``distributed.Client`` (the pool never closes it). ``address``: connect to
    the scheduler there (and close that connection when done). Neither: start a ``LocalCluster`` of ``n_workers``
    single-threaded worker processes (default one per core) and close it when done.

    ``shared_storage``: workers write run folders under ``out=`` themselves (it must be the same path on every
    worker); default: workers return the files and the driver writes them. ``batch_size``: runs per task (default:
    adaptive). ``timeout``: seconds after which one run is failed and its worker process killed. ``worker_wait``:
    how long to wait for a usable worker before giving up.

    >>> with DaskPool(n_workers=4) as pool:
    ...     Sweep("leo.script", grid={"Sat.SMA": [7000, 7100]}, out="sweeps/sma").run(pool)
    """

    def __init__(self, client: Any = None, n_workers: int | None = None, *, address: str | None = None,
                 shared_storage: bool = False, batch_size: int | None = None, timeout: float | None = None,
                 worker_wait: float = 60.0, connect_timeout: float = 10.0) -> None:
        if client is not None and address is not None:
            raise ValueError("give either client= or address=, not both")
        for name, value in (("n_workers", n_workers), ("batch_size", batch_size)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive whole number, got {value!r}")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.shared_storage = shared_storage
        self.batch_size = batch_size
        self.timeout = timeout
        self.worker_wait = worker_wait
        self._cluster: Any = None
        self._owns_client = client is None
        if client is not None:
            self._client = client
        elif address is not None:
            self._client = _connect(address, connect_timeout)
        else:
            self._cluster, self._client = _local_cluster(n_workers)
        self.address = self._client.scheduler.address
        self._resource: str | None = None
        self._token_path: str | None = None
        self._threads_cache: tuple[float, int] = (0.0, 0)
        self._expired: dict[str, tuple[int, RunTimedOut]] = {}
        self._expired_lock = threading.Lock()
        self._mean_run: float | None = None
        self._warned_threads = False
        self._closed = False
        self.split_batches = 0  # batches rerun run by run after they killed workers, for reports and tests
        self._client.subscribe_topic(TIMEOUT_TOPIC, self._on_timeout)
        self._client.subscribe_topic(REFUSED_TOPIC, _on_refused)

    @property
    def client(self) -> Any:
        return self._client

    def adapt(self, minimum: int, maximum: int) -> None:
        """Refused: this pool talks to a scheduler, not to whatever made its cluster (KubernetesPool can adapt).

        >>> DaskPool(address="tcp://sma-scheduler:8786").adapt(1, 4)  # doctest: +SKIP
        DaskPoolError: this pool cannot adapt the Dask cluster at tcp://...
        """
        raise DaskPoolError(
            f"this pool cannot adapt the Dask cluster at {self.address}: it only talks to its scheduler, and nothing "
            "of it asks for workers. Adapt where the cluster is made: KubernetesPool(...).adapt(minimum, maximum) "
            "with the Dask operator, cluster.adapt(...) on your own Dask cluster object; a cluster of plain "
            "Deployments (gmat-sweep k8s render --no-operator) has no autoscaler: kubectl scale "
            "deployment/NAME-worker --replicas=N")

    # ------------------------------------------------------------------------------ preflight

    def prepare(self, context: dict[str, Any]) -> None:
        """Check every worker before the sweep starts; let later workers in only once they pass the same check."""
        engine = context.get("engine")
        out = context.get("out")
        self._await_workers()
        reports = self._client.run(_make_probe(), engine, on_error="return")
        expected = _expected_fingerprint(reports, self.address)
        self._warn_threads(reports)
        token = None
        if self.shared_storage:
            if not out:
                raise DaskPoolError("shared_storage=True needs the sweep's out= folder")
            token = self._check_shared_storage(os.path.abspath(out))
        digest = hashlib.sha256(json.dumps([expected, self._token_path], sort_keys=True).encode()).hexdigest()
        self._resource = f"gmat-sweep-{digest[:12]}"
        gate = _portable(WorkerPlugin, "_Gate", resource=self._resource, expected=expected, engine=engine,
                         token_path=self._token_path, token=token)
        self._client.register_plugin(gate, name=GATE_PLUGIN)
        self._client.register_plugin(_portable(NannyPlugin, "_Watchdog"), name=WATCHDOG_PLUGIN)
        unguarded = sorted(a for a, r in reports.items() if isinstance(r, dict) and not r.get("nanny"))
        if self.timeout and unguarded:
            warnings.warn(f"timeout={self.timeout:g} cannot be enforced on workers without a nanny "
                          f"({', '.join(unguarded)}): GMAT holds the process while a mission runs, so only the "
                          "nanny can stop it. Start workers with a nanny (the default of 'dask worker').",
                          RuntimeWarning, stacklevel=3)
        self._threads_cache = (0.0, 0)
        if self._gated_threads(fresh=True) == 0:  # someone's worker changed between the probe and the gate
            raise DaskPoolError(f"no worker of {self.address} passed the gmat-sweep check; see the workers' logs")

    def _await_workers(self) -> None:
        deadline = time.monotonic() + self.worker_wait
        nudge = None
        try:
            while not self._client.scheduler_info()["workers"]:
                if time.monotonic() >= deadline:
                    raise DaskPoolError(
                        f"no Dask worker connected to the scheduler at {self.address} within {self.worker_wait:g} s. "
                        f"Start workers (dask worker {self.address} --nthreads 1), scale the cluster "
                        "(cluster.scale(n) or cluster.adapt(minimum=1)), or wait longer with worker_wait=.")
                if nudge is None:
                    logger.warning("waiting up to %g s for Dask workers to connect to %s", self.worker_wait,
                                   self.address)
                    # An adaptive cluster only grows when work is pending: give it some.
                    nudge = self._client.submit(time.sleep, 0, pure=False, key=f"gmat-sweep-waiting-{uuid.uuid4()}")
                time.sleep(0.25)
        finally:
            if nudge is not None:
                nudge.cancel()

    def _warn_threads(self, reports: dict[str, Any]) -> None:
        crowded = {a: r.get("nthreads") for a, r in reports.items() if isinstance(r, dict) and r.get("nthreads", 1) > 1}
        if crowded and not self._warned_threads:
            self._warned_threads = True
            names = ", ".join(f"{a} ({n} threads)" for a, n in sorted(crowded.items()))
            warnings.warn(
                f"Dask workers with several threads: {names}. GMAT runs one mission at a time per process, so the "
                "extra threads wait; start more single-threaded worker processes instead (dask worker --nthreads 1 "
                "--nworkers N, or LocalCluster(threads_per_worker=1, n_workers=N)).", RuntimeWarning, stacklevel=3)

    def _check_shared_storage(self, out: str) -> str:
        token = uuid.uuid4().hex
        self._remove_token()
        path = os.path.join(out, f".gmat-sweep-storage-{token[:12]}")
        with open(path, "w") as handle:
            handle.write(token)
        self._token_path = path
        replies = self._client.run(_storage_problem, path, token, on_error="return")
        blind = {a: (r if isinstance(r, str) else f"{type(r).__name__}: {r}") for a, r in replies.items()
                 if r is not None}
        if blind:
            self._remove_token()
            lines = "\n  ".join(f"{a}: {why}" for a, why in sorted(blind.items()))
            raise DaskPoolError(
                f"shared_storage=True but out={out} is not the same folder on these workers:\n  {lines}\n"
                "Mount the shared volume at the same path on the driver and every worker, or drop shared_storage "
                "(the default return mode ships each run's files back to the driver).")
        return token

    def _remove_token(self) -> None:
        if self._token_path:
            with contextlib.suppress(OSError):
                os.remove(self._token_path)
            self._token_path = None

    # ------------------------------------------------------------------------------ Pool interface

    @property
    def max_workers(self) -> int:
        """Worker threads that can take runs right now (follows scaling and adaptive clusters)."""
        return self._gated_threads()

    def _gated_threads(self, fresh: bool = False) -> int:
        stamp, count = self._threads_cache
        if fresh or time.monotonic() - stamp > 1.0:
            workers = self._client.scheduler_info()["workers"].values()
            count = sum(w.get("nthreads", 0) for w in workers
                        if self._resource is None or w.get("resources", {}).get(self._resource, 0) > 0)
            self._threads_cache = (time.monotonic(), count)
        return count

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._closed:
            raise RuntimeError("this DaskPool is closed; create a new one")
        return self._client.submit(fn, *args, pure=False, resources=self._needs(),
                                   key=f"gmat-sweep-{getattr(fn, '__name__', 'task')}-{uuid.uuid4().hex}")

    def _needs(self) -> dict[str, float] | None:
        return {self._resource: 1} if self._resource else None

    def wait_any(self, futures: list[Any], timeout: float | None = None) -> set[Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        idle_since: float | None = None
        while True:
            step = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            with contextlib.suppress(distributed.TimeoutError, TimeoutError), self._client.as_current():
                distributed.wait(futures, timeout=step, return_when="FIRST_COMPLETED")
            done = {f for f in futures if f.done()}
            if done or (deadline is not None and time.monotonic() >= deadline):
                return done
            idle_since = self._check_alive(idle_since)

    def result(self, future: Any) -> Any:
        try:
            return self._fetch(future)
        except KilledWorker as exc:
            raise WorkerLost(f"the task killed every worker that ran it ({exc}); GMAT probably crashes on it") \
                from None
        except CancelledError:
            raise WorkerLost("the task was cancelled (its worker or the scheduler went away)") from None

    def _fetch(self, future: Any) -> Any:
        """The future's value. A done task's value lives on its worker: if that worker dies before the value is
        fetched, Dask computes the task again, so this waits for that as it waits for any run."""
        idle_since: float | None = None
        while True:
            try:
                return future.result(timeout=1.0)
            except (distributed.TimeoutError, TimeoutError):
                if future.status == "error":
                    raise  # the task's own error
                # Finished but not here yet: its worker is busy with the next mission, and GMAT holds that worker's
                # GIL until the mission ends, so the value comes then (or the task runs again if the worker dies).
                idle_since = self._check_alive(idle_since)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._remove_token()
        client = self._client
        with contextlib.suppress(Exception):
            client.unsubscribe_topic(TIMEOUT_TOPIC)
            client.unsubscribe_topic(REFUSED_TOPIC)
        if self._resource and self._cluster is None and client.status == "running":
            with contextlib.suppress(Exception):
                client.unregister_worker_plugin(GATE_PLUGIN)
            with contextlib.suppress(Exception):
                client.unregister_worker_plugin(WATCHDOG_PLUGIN, nanny=True)
        if self._owns_client:
            client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster.gmat_sweep_tmp()

    # ------------------------------------------------------------------------------ running

    def imap(self, fn: Callable[[Any], Any], items: Iterable[Any],
             window: int | None = None) -> Iterator[tuple[Any, Any, BaseException | None]]:
        """Like :meth:`Pool.imap`; runs of ``run_one`` travel in adaptive batches, one result per run."""
        if fn is not run_one:
            return super().imap(fn, items, window)
        return self._imap_runs(iter(items), window)

    def _imap_runs(self, source: Iterator[RunSpec], window: int | None) -> Iterator[tuple[Any, Any, Any]]:
        inflight: dict[Any, list[RunSpec]] = {}
        singles: set[Any] = set()  # futures holding one run split out of a batch that killed its workers
        retry: collections.deque[RunSpec] = collections.deque()
        exhausted = False
        idle_since: float | None = None

        def launch(specs: list[RunSpec], single: bool = False) -> None:
            future = self._client.submit(_run_batch, specs, not self.shared_storage, self.timeout, pure=False,
                                         resources=self._needs(),
                                         key=f"gmat-sweep-runs-{specs[0].run_id}-{uuid.uuid4().hex[:12]}")
            inflight[future] = specs
            if single:
                singles.add(future)

        def refill() -> None:
            nonlocal exhausted
            target = window or self._in_flight()
            while retry and len(inflight) < target:
                launch([retry.popleft()], single=True)
            while not exhausted and len(inflight) < target:
                batch = []
                for spec in source:
                    batch.append(spec)
                    if len(batch) >= self._batch_size():
                        break
                else:
                    exhausted = True
                if batch:
                    launch(batch)

        try:
            refill()
            while inflight:
                done = self.wait_any(list(inflight), timeout=0.25)
                for future, lost, innocent in self._expire_timed_out(inflight):
                    singles.discard(future)
                    yield from lost
                    retry.extend(innocent)
                for future in done:
                    specs = inflight.pop(future, None)
                    if specs is None:
                        continue
                    single = future in singles
                    singles.discard(future)
                    try:
                        outcomes = self._fetch(future)
                    except KilledWorker as exc:
                        if len(specs) > 1:  # find the run that crashes GMAT: the others are innocent
                            self.split_batches += 1
                            retry.extend(specs)
                            continue
                        lost = WorkerLost(f"the worker running it died {'again ' if single else ''}each time it was "
                                          f"tried (crash, kill or out of memory): {exc}")
                        yield specs[0], None, lost
                        continue
                    except Exception as exc:  # noqa: BLE001 - one task's failure is data for the caller
                        error = WorkerLost(f"task cancelled: {exc or 'its worker or the scheduler went away'}") \
                            if isinstance(exc, CancelledError) else exc
                        for spec in specs:
                            yield spec, None, error
                        continue
                    self._learn(outcomes)
                    for spec, outcome in zip(specs, outcomes):
                        yield spec, outcome, None
                idle_since = None if done else self._check_alive(idle_since)
                refill()
        finally:
            for future in inflight:
                future.cancel()

    def _in_flight(self) -> int:
        """How many tasks to keep submitted: ``window_per_worker`` per usable worker now."""
        return max(1, math.ceil(self.window_per_worker * max(1, self.max_workers)))

    def _batch_size(self) -> int:
        if self.batch_size:
            return self.batch_size
        if self._mean_run is None or self._mean_run >= SHORT_RUN:
            return 1
        return max(1, min(MAX_BATCH, round(TASK_SECONDS / max(self._mean_run, 1e-3))))

    def _learn(self, outcomes: list[RunOutcome]) -> None:
        for outcome in outcomes:
            if outcome.duration > 0:
                previous = self._mean_run
                self._mean_run = outcome.duration if previous is None else 0.9 * previous + 0.1 * outcome.duration

    def _check_alive(self, idle_since: float | None) -> float | None:
        """Raise when the cluster has had no usable worker for ``worker_wait`` seconds; else return the clock."""
        if self._client.status not in ("running", "connecting"):
            raise DaskPoolError(f"lost the connection to the Dask scheduler at {self.address}; every finished run "
                                "is saved: resume the sweep once the cluster is back")
        if self._gated_threads() > 0:
            return None
        now = time.monotonic()
        if idle_since is None:
            logger.warning("no usable Dask worker at %s; waiting up to %g s for one", self.address, self.worker_wait)
            return now
        if now - idle_since > self.worker_wait:
            raise DaskPoolError(
                f"the Dask cluster at {self.address} has had no usable worker for {self.worker_wait:g} s; every "
                "finished run is saved in the manifest: resume the sweep (gmat-sweep resume OUT, or "
                "Sweep.from_manifest(out).resume(backend=...)) when workers are back")
        return idle_since

    def _on_timeout(self, event: tuple[float, dict[str, Any]]) -> None:
        message = event[1]
        with self._expired_lock:
            self._expired[str(message["key"])] = (message["run_id"], RunTimedOut(
                message["reason"], message.get("elapsed"), message.get("timeout")))

    def _expire_timed_out(self, inflight: dict[Any, list[RunSpec]]) -> list[tuple[Any, list[Any], list[RunSpec]]]:
        """Tasks whose run overran the timeout: cancel them before Dask reschedules them on another worker.

        Returns, for each, the future, the (spec, None, WorkerLost) triple to yield and the batch's other specs,
        which run again (what they returned was lost with the process)."""
        with self._expired_lock:
            if not self._expired:
                return []
            expired, self._expired = self._expired, {}
        found = []
        for future in list(inflight):
            if str(future.key) not in expired:
                continue
            run_id, error = expired[str(future.key)]
            future.cancel()
            specs = inflight.pop(future)
            lost = [(s, None, error) for s in specs if s.run_id == run_id]
            found.append((future, lost, [s for s in specs if s.run_id != run_id]))
        return found


# ---------------------------------------------------------------------------------------- connecting


def _connect(address: str, timeout: float) -> Any:
    try:
        # Check what can be checked without a Client: one that never connected leaves noise behind when collected.
        from distributed.comm.addressing import parse_address, parse_host_port
        from distributed.comm.registry import get_backend

        scheme, location = parse_address(address)
        get_backend(scheme)
        if scheme == "tcp":
            socket.create_connection(parse_host_port(location, default_port=8786), timeout=timeout).close()
        return distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, distributed.TimeoutError, ValueError) as exc:
        raise DaskPoolError(
            f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({type(exc).__name__}: {exc}). "
            "Check the address (tcp://HOST:8786), that the scheduler runs (dask scheduler) and that this machine "
            "can reach its port; or leave --scheduler out to run a LocalCluster here.") from None


_GUARD = ('Dask starts the LocalCluster\'s worker processes by importing your main module again: put the code that '
          'runs the sweep under  if __name__ == "__main__":  (or use the default LocalPool, which needs no guard)')


def _local_cluster(n_workers: int | None) -> tuple[Any, Any]:
    import dask
    import multiprocessing

    from ..dask_config import CLUSTER

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        # This is one of the cluster's worker processes, running an unguarded main module again: say why in one
        # line and stop, instead of a traceback from every worker process.
        raise SystemExit(f"gmat-sweep: {_GUARD}")
    n_workers = n_workers or os.cpu_count() or 1
    # The workers' temporary files (GMAT's runtime folder, the scripts runs execute) go into one folder, removed
    # with the cluster: a worker its nanny kills cannot clean up after itself.
    tmp = tempfile.mkdtemp(prefix="gmat-sweep-cluster-")
    try:
        # The nannies hand this config to the worker processes they start (see dask_config for each setting's why).
        with dask.config.set(CLUSTER), _quiet("distributed"):
            cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                               dashboard_address=":0",
                                               env={"TMPDIR": tmp, WATCH_DIR: tempfile.gettempdir()})
    except Exception as exc:  # noqa: BLE001 - said in one line below; Dask's own logs of it are silenced
        shutil.rmtree(tmp, ignore_errors=True)
        reason = f"{type(exc).__name__}: {exc}".strip()
        hint = f" {_GUARD}" if "failed to start" in reason.lower() and _main_is_reimported() else ""
        raise DaskPoolError(f"could not start a LocalCluster of {n_workers} worker processes ({reason}).{hint}") \
            from None
    cluster.gmat_sweep_tmp = weakref.finalize(cluster, shutil.rmtree, tmp, True)  # also at interpreter exit
    logger.info("started a LocalCluster of %d workers; dashboard: %s", len(cluster.workers), cluster.dashboard_link)
    return cluster, distributed.Client(cluster, set_as_default=False)


def _main_is_reimported() -> bool:
    """Whether spawned processes import the main module again (a script file or ``-m module``, not ``-c``)."""
    import sys

    main = sys.modules.get("__main__")
    return getattr(getattr(main, "__spec__", None), "name", None) is not None or \
        os.path.isfile(getattr(main, "__file__", None) or "")


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Silence a library's loggers for a moment: a cluster that fails to start logs a traceback per worker, and
    the error raised afterwards says what happened in one line."""
    loggers = [logging.getLogger(name)] + [logging.getLogger(other) for other in list(logging.root.manager.loggerDict)
                                            if other.startswith(name + ".")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)


def _on_refused(event: tuple[float, dict[str, Any]]) -> None:
    message = event[1]
    logger.warning("Dask worker %s joined but gets no gmat-sweep runs: %s", message.get("worker"),
                   message.get("problem"))


# ---------------------------------------------------------------------------------------- the check


@functools.cache
def installed_versions() -> dict[str, str]:
    """The versions a worker must share with the driver, read from installed metadata (nothing is imported)."""
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    versions = {"gmat-sweep": __version__, "python": ".".join(platform.python_version_tuple()[:2])}
    for name in ("pandas", "pyarrow", "numpy", "distributed", "gmatpy"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def describe_worker(engine: str | None, address: str = "", nthreads: int = 1) -> dict[str, Any]:
    """What a worker runs: package versions and its GMAT engine's fingerprint (starting the engine once)."""
    from ..engine import EngineError, get_engine
    from ..worker import _lock

    info: dict[str, Any] = {"address": address, "nthreads": nthreads, "host": socket.gethostname(),
                            "pid": os.getpid(), "versions": installed_versions()}
    try:
        with _lock:  # never start the engine beside a running mission
            info["engine"] = get_engine(engine).fingerprint()
    except EngineError as exc:
        info["error"] = f"the GMAT engine does not start there: {exc}"
    except Exception as exc:  # noqa: BLE001 - report, do not crash the worker's event loop
        info["error"] = f"the GMAT engine does not start there ({type(exc).__name__}: {exc})"
    return info


def _make_probe() -> Callable[..., Any]:
    # Defined inside a function so that cloudpickle ships it by value: it must run even where gmat_sweep is not
    # installed, to say so.
    async def probe(engine: str | None, dask_worker: Any = None) -> dict[str, Any]:
        import asyncio as _asyncio
        import sys as _sys

        try:
            from gmat_sweep.backends.dask import describe_worker as _describe
        except Exception as exc:  # noqa: BLE001
            return {"error": f"gmat-sweep cannot be imported there ({type(exc).__name__}: {exc}); install the "
                             f"driver's gmat-sweep version in the workers' environment ({_sys.executable})"}
        loop = _asyncio.get_running_loop()
        report = await loop.run_in_executor(None, _describe, engine, dask_worker.address, dask_worker.state.nthreads)
        report["nanny"] = dask_worker.nanny
        return report

    return probe


def _engine_identity(report: dict[str, Any]) -> dict[str, Any]:
    engine = report.get("engine") or {}
    return {k: engine.get(k) for k in ENGINE_KEYS if k in engine}


def _expected_fingerprint(reports: dict[str, Any], address: str) -> dict[str, Any]:
    """The fingerprint every worker must have: the driver's versions and the engine all workers share.

    Raises :class:`DaskPoolError` naming each worker that lacks gmat-sweep or the engine, or differs."""
    problems: dict[str, str] = {}
    good: dict[str, dict[str, Any]] = {}
    for worker, report in reports.items():
        if not isinstance(report, dict):
            problems[worker] = f"could not be asked ({type(report).__name__}: {report})"
        elif report.get("error"):
            problems[worker] = report["error"]
        else:
            good[worker] = report
    driver = {k: v for k, v in installed_versions().items() if k in DRIVER_KEYS}
    for worker, report in good.items():
        diff = _differences(report["versions"], driver, "driver")
        if diff:
            problems[worker] = diff
    engines = collections.Counter(json.dumps(_engine_identity(r), sort_keys=True) for r in good.values())
    common = json.loads(engines.most_common(1)[0][0]) if engines else {}
    if len(engines) > 1:
        for worker, report in good.items():
            diff = _differences(_engine_identity(report), common, "most workers")
            if diff:
                problems.setdefault(worker, diff)
    if problems:
        lines = "\n  ".join(f"{w}: {why}" for w, why in sorted(problems.items()))
        raise DaskPoolError(
            f"{len(problems)} of {len(reports)} Dask workers at {address} cannot run this sweep:\n  {lines}\n"
            "Every worker needs the driver's gmat-sweep, Python, pandas, pyarrow, numpy and distributed versions "
            "and the same GMAT engine (build workers from one image or environment; 'gmat-sweep doctor' prints "
            "what a machine has), or remove the odd workers from the cluster.")
    return {"versions": driver, "engine": common}


def _differences(theirs: dict[str, Any], ours: dict[str, Any], whose: str) -> str:
    diff = [f"{k} {theirs.get(k, 'missing')} ({whose}: {v})" for k, v in ours.items() if theirs.get(k) != v]
    return ("differs: " + ", ".join(diff)) if diff else ""


def _worker_problem(report: dict[str, Any], expected: dict[str, Any]) -> str:
    if report.get("error"):
        return report["error"]
    return (_differences(report["versions"], expected["versions"], "driver")
            or _differences(_engine_identity(report), expected["engine"], "the sweep's workers"))


def _storage_problem(path: str, token: str) -> str | None:
    """None when this worker reads ``token`` at ``path`` and can write beside it; else what is wrong."""
    try:
        with open(path) as handle:
            if handle.read() != token:
                return f"{path} holds something else here: another folder is mounted at that path"
    except OSError as exc:
        return f"cannot read the driver's check file {path} ({exc.strerror}): the folder is not shared with it"
    probe = f"{path}-{socket.gethostname()}-{os.getpid()}"
    try:
        with open(probe, "w") as handle:
            handle.write("ok")
        os.remove(probe)
    except OSError as exc:
        return f"cannot write in {os.path.dirname(path)} ({exc.strerror})"
    return None


def _portable(kind: type, implementation: str, **state: Any) -> Any:
    """A plugin shipped by value that loads ``implementation`` from gmat_sweep on the worker or nanny, so a
    worker or nanny without gmat-sweep still starts (and gets no runs) instead of failing to unpickle it."""

    class GmatSweepPlugin(kind):  # type: ignore[misc, valid-type]
        name = implementation

        def __init__(self) -> None:
            self.state = state
            self.impl: Any = None

        async def setup(self, **server: Any) -> None:
            import importlib
            import logging as _logging

            try:
                self.impl = getattr(importlib.import_module("gmat_sweep.backends.dask"), implementation)(**state)
            except Exception as exc:  # noqa: BLE001 - say why, never break the server
                problem = f"gmat-sweep cannot be imported there ({type(exc).__name__}: {exc})"
                _logging.getLogger("gmat_sweep.dask").warning("gmat-sweep: %s", problem)
                if "worker" in server:
                    server["worker"].log_event("gmat-sweep-refused", {"worker": server["worker"].address,
                                                                      "problem": problem})
                return
            await self.impl.setup(*server.values())

        async def teardown(self, **server: Any) -> None:
            if self.impl is not None:
                await self.impl.teardown(*server.values())

    return GmatSweepPlugin()


class _Gate:
    """Runs on every worker, now and when it joins later: grants the sweep's resource only to workers that pass."""

    def __init__(self, resource: str, expected: dict[str, Any], engine: str | None, token_path: str | None,
                 token: str | None) -> None:
        self.resource = resource
        self.expected = expected
        self.engine = engine
        self.token_path = token_path
        self.token = token
        self.problem: str | None = None

    async def setup(self, worker: Any) -> None:
        from distributed.core import Status

        loop = asyncio.get_running_loop()
        report = await loop.run_in_executor(None, describe_worker, self.engine, worker.address,
                                            worker.state.nthreads)
        problem = _worker_problem(report, self.expected)
        if not problem and self.token_path:
            problem = await loop.run_in_executor(None, _storage_problem, self.token_path, self.token) or ""
        if problem:
            self.problem = problem
            logger.warning("gmat-sweep: this worker gets no runs: %s", problem)
            with contextlib.suppress(Exception):
                worker.log_event(REFUSED_TOPIC, {"worker": worker.address, "problem": problem})
            return
        await worker.set_resources(**{self.resource: worker.state.nthreads})
        if worker.status == Status.running:
            # The scheduler looks for runnable tasks when a worker (re)starts running, not when its resources grow:
            # a brief pause makes it hand this worker the runs that waited for one while none was usable.
            worker.status = Status.paused
            worker.status = Status.running

    async def teardown(self, worker: Any) -> None:
        if not self.problem:
            with contextlib.suppress(Exception):
                await worker.set_resources(**{self.resource: 0})


# ---------------------------------------------------------------------------------------- on the worker


def _run_batch(specs: list[RunSpec], return_files: bool, timeout: float | None) -> list[RunOutcome]:
    """Run ``specs`` one after the other on this worker. In return mode each run writes into a private folder
    whose files travel back in ``outcome.payload``."""
    worker = distributed.get_worker()
    key = str(worker.get_current_task())
    versions = installed_versions()
    outcomes = []
    for spec in specs:
        scratch = None
        if return_files:
            scratch = _private_folder(worker.local_directory)
            spec = dataclasses.replace(spec, out_dir=scratch)
        elif os.path.isdir(spec.out_dir):
            shutil.rmtree(spec.out_dir, ignore_errors=True)  # what an attempt on a worker that died left behind
        with _watchdog(task_limit(timeout, (spec,)), key, spec.run_id):
            outcome = run_one(spec)
        if scratch is not None:
            outcome.payload = _take_files(scratch)
        outcome.worker = worker.address
        outcome.fingerprint = {**(outcome.fingerprint or {}), "versions": versions}
        outcomes.append(outcome)
    return outcomes


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
    with open(path + ".tmp", "w") as handle:
        json.dump(note, handle)
    os.replace(path + ".tmp", path)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)


def _watch_path(pid: int) -> str:
    # The nanny's folder: a LocalCluster's workers have a TMPDIR of their own (see _local_cluster).
    return os.path.join(os.environ.get(WATCH_DIR) or tempfile.gettempdir(), f"gmat-sweep-watch-{pid}.json")


class _Watchdog:
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


__all__ = ["DaskPool", "DaskPoolError", "describe_worker", "installed_versions"]
