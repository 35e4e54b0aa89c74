"""DaskPool: the driver's side of running a sweep on a Dask cluster (connecting, batching, lost workers, timeouts).

See the package docstring for what it adds to plain Dask and why.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import pickle
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError
from typing import Any

from ...distribution import install_hint

try:
    import distributed
    from distributed import KilledWorker
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(f"DaskPool needs Dask's distributed package: {install_hint('dask')}") from exc

from ...records import RunOutcome, RunSpec
from ..base import Pool, RunTimedOut, WorkerLost
from . import deadline
from .admission import GATE_PLUGIN, REFUSED_TOPIC, DaskPoolError
from .batching import READ_AHEAD_AFTER, TAIL_SHARE, Lookahead, runs_per_task, tail_size
from .cluster import connect, local_cluster, scheduler_workers
from .deadline import within
from .on_worker import TIMEOUT_TOPIC, WATCHDOG_PLUGIN, run_batch_packed
from .preflight import Preflight

logger = logging.getLogger("gmat_sweep.dask")


class DaskPool(Pool):
    """Runs a sweep's missions on a Dask cluster.

    ``client``: dispatch through this ``distributed.Client`` (the pool never closes it). ``address``: connect to
    the scheduler there (and close that connection when done). Neither: start a ``LocalCluster`` of ``n_workers``
    single-threaded worker processes (default one per core) and close it when done.

    ``shared_storage``: workers write run folders under ``out=`` themselves (it must be the same path on every
    worker); ``False``: workers return the files and the driver writes them (*return mode*). Default: shared
    storage on the pool's own LocalCluster (its workers are processes of this machine), return mode otherwise.
    ``batch_size``: runs per task (default: adaptive, see ``batching.py``). ``timeout``: seconds after which one run
    is failed and its worker process killed. ``worker_wait``: how long to wait for a usable worker before giving up.

    >>> with DaskPool(n_workers=4) as pool:
    ...     Sweep("leo.script", grid={"Sat.SMA": [7000, 7100]}, out="sweeps/sma").run(pool)
    """

    def __init__(self, client: Any = None, n_workers: int | None = None, *, address: str | None = None,
                 shared_storage: bool | None = None, batch_size: int | None = None, timeout: float | None = None,
                 worker_wait: float = 60.0, connect_timeout: float = 10.0) -> None:
        if client is not None and address is not None:
            raise ValueError("give either client= or address=, not both")
        for name, value in (("n_workers", n_workers), ("batch_size", batch_size)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive whole number, got {value!r}")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.batch_size = batch_size
        self.timeout = timeout
        self.worker_wait = worker_wait
        self._cluster: Any = None
        self._owns_client = client is None
        if client is not None:
            self._client = client
        elif address is not None:
            self._client = connect(address, connect_timeout)
        else:
            self._cluster, self._client = local_cluster(n_workers)
        self.address = self._client.scheduler.address
        # Writing each run's files costs the driver more CPU than anything else it does for a short run (a mkdir and
        # a file per output, mostly system time); a LocalCluster's workers share this machine's folders, so they
        # write them, as LocalPool's workers do.
        self.shared_storage = self._cluster is not None if shared_storage is None else shared_storage
        self._resource: str | None = None
        self._preflight = Preflight(self._client, self.address)
        self._threads_cache: tuple[float, int] = (0.0, 0)
        self._expired: dict[str, tuple[int, RunTimedOut]] = {}
        self._expired_lock = threading.Lock()
        self._mean_run: float | None = None
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
        """Check every worker before the sweep starts; let later workers in only once they pass the same check
        (see :mod:`.preflight`)."""
        self._resource = self._preflight.admit(context.get("engine"), context.get("out"),
                                               shared_storage=self.shared_storage, timeout=self.timeout,
                                               worker_wait=self.worker_wait)
        self._threads_cache = (0.0, 0)
        if self._gated_threads(fresh=True) == 0:  # someone's worker changed between the probe and the gate
            raise DaskPoolError(f"no worker of {self.address} passed the gmat-sweep check; see the workers' logs")

    # ------------------------------------------------------------------------------ Pool interface

    @property
    def max_workers(self) -> int:
        """Worker threads that can take runs right now (follows scaling and adaptive clusters)."""
        return self._gated_threads()

    def _gated_threads(self, fresh: bool = False) -> int:
        stamp, count = self._threads_cache
        if fresh or time.monotonic() - stamp > 1.0:
            # Not Client.scheduler_info(): its cached copy could say "no worker" for a second (a one-task window).
            workers = scheduler_workers(self._client).values()
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
        self._preflight.remove_token()
        client = self._client
        with contextlib.suppress(Exception):
            client.unsubscribe_topic(TIMEOUT_TOPIC)
            client.unsubscribe_topic(REFUSED_TOPIC)
        if self._resource and self._cluster is None and client.status == "running":
            # Bounded: a worker that does not answer would hold these calls forever.
            with contextlib.suppress(Exception):
                within(deadline.CLOSE_WAIT, client.unregister_worker_plugin, GATE_PLUGIN)
            with contextlib.suppress(Exception):
                within(deadline.CLOSE_WAIT, client.unregister_worker_plugin, WATCHDOG_PLUGIN, nanny=True)
        if self._owns_client:
            client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster.gmat_sweep_tmp()

    # ------------------------------------------------------------------------------ running

    def run_each(self, specs: Iterable[RunSpec], consume: Callable[[Any, Any, BaseException | None], None],
                 window: int | None = None) -> None:
        """Like :meth:`Pool.run_each`; runs travel in adaptive batches, one ``consume`` call per run."""
        for spec, outcome, error in self._imap_runs(iter(specs), window):
            consume(spec, outcome, error)

    def _imap_runs(self, source: Iterator[RunSpec], window: int | None) -> Iterator[tuple[Any, Any, Any]]:
        inflight: dict[Any, list[RunSpec]] = {}
        singles: set[Any] = set()  # futures holding one run split out of a batch that killed its workers
        retry: collections.deque[RunSpec] = collections.deque()
        ahead = Lookahead(source)
        finished: queue.SimpleQueue[Any] = queue.SimpleQueue()
        returned = 0  # runs of this call whose outcome came back
        # Each sweep learns its own runs' length: the last sweep's mission may have been a hundred times shorter.
        self._mean_run = None
        idle_since: float | None = None

        def launch(specs: list[RunSpec], single: bool = False) -> None:
            future = self._client.submit(run_batch_packed, specs, not self.shared_storage, self.timeout, pure=False,
                                         resources=self._needs(),
                                         key=f"gmat-sweep-runs-{specs[0].run_id}-{uuid.uuid4().hex[:12]}")
            inflight[future] = specs
            # Each task tells the loop below when it ends (one callback per task): waiting on the whole window
            # every quarter second costs the client's event loop a coroutine per wait, whether a task ended or not.
            future.add_done_callback(finished.put)
            if single:
                singles.add(future)

        def refill() -> None:
            target = window or self._in_flight()
            while retry and len(inflight) < target:
                launch([retry.popleft()], single=True)
            while ahead and len(inflight) < target:
                size = self.runs_per_task()
                if not self.batch_size and size > 1:
                    # Read far enough ahead to see the end coming, then shrink the batches so that the workers
                    # finish together (batching.py). Only once some runs came back: a sweep sets a run's adaptive
                    # time limit when it makes the run's spec, from the runs finished by then.
                    workers = self._gated_threads()
                    if returned >= READ_AHEAD_AFTER:
                        ahead.fill(size * TAIL_SHARE * max(1, workers))
                    left = ahead.left()
                    if left is not None:
                        size = tail_size(size, left, workers, self._mean_run)
                batch = ahead.take(size)
                if not batch:
                    break
                launch(batch)

        try:
            refill()
            while inflight:
                done = _take_finished(finished, 0.25)
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
                        outcomes = pickle.loads(outcomes)  # one buffer per batch (on_worker.run_batch_packed)
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
                    returned += len(outcomes)
                    for spec, outcome in zip(specs, outcomes):
                        # A run that timed out or crashed its engine process comes back as the WorkerLost.
                        lost = isinstance(outcome, BaseException)
                        yield spec, (None if lost else outcome), (outcome if lost else None)
                idle_since = None if done else self._check_alive(idle_since)
                refill()
        finally:
            for future in inflight:
                future.cancel()

    def _in_flight(self) -> int:
        """How many tasks to keep submitted: the Pool's sliding window over the usable workers now (KubernetesPool
        adds what an adaptive cluster needs)."""
        return self.window_size()

    def runs_per_task(self) -> int:
        """How many runs the next task carries: ``batch_size`` if given, else one until runs prove short (under
        ``batching.SHORT_RUN`` s), then about ``batching.TASK_SECONDS`` of them (fewer near a sweep's end)."""
        return self.batch_size or runs_per_task(self._mean_run)

    def _learn(self, outcomes: list[RunOutcome]) -> None:
        for outcome in outcomes:
            if isinstance(outcome, RunOutcome) and outcome.duration > 0:
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


def _take_finished(finished: queue.SimpleQueue[Any], timeout: float) -> set[Any]:
    """The futures that finished: wait up to ``timeout`` s for the first, then take those already there."""
    try:
        done = {finished.get(timeout=timeout)}
    except queue.Empty:
        return set()
    while True:
        try:
            done.add(finished.get_nowait())
        except queue.Empty:
            return done


def _on_refused(event: tuple[float, dict[str, Any]]) -> None:
    message = event[1]
    logger.warning("Dask worker %s joined but gets no gmat-sweep runs: %s", message.get("worker"),
                   message.get("problem"))
