"""LocalPool: spawned worker processes on this machine, each starting the GMAT engine once.

GMAT is process-global and a bad script can crash the process that runs it, so each run executes in a worker
process that does one task at a time. The pool watches every worker: when one dies (segfault, kill -9, the
out-of-memory killer) or overruns the per-run ``timeout``, only the task it was running fails, with ``WorkerLost``,
and a fresh process takes its place. Workers are spawned, never forked, because GMAT cannot be used after fork.
Their temporary files (GMAT's runtime folder and temporary outputs, the scripts each run executes) go into a
folder of each worker's own inside one folder of the pool's, removed when the pool closes: a worker that is killed
cannot clean up after itself. Workers do not import the caller's main module (see spawn.py), so a script needs no
``if __name__ == "__main__":`` guard to use this pool.

A worker whose last task took under ``PREFETCH_BELOW`` seconds is sent its next task while it still runs the
current one, so it starts the next the moment it finishes instead of waiting a pipe round trip for the driver
(about 1 % of a 40 ms mission). A task sent ahead is never stuck behind a run that turns out long: when another
worker runs out of work, the driver takes the task back, if its worker has not started it (a lock shared with the
worker settles who was first), and hands it to the idle one. A worker that dies fails only the task it had started.
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import ForkingPickler
from typing import Any

from . import spawn
from .base import Pool, PoolBroken, RunTimedOut, WorkerLost, task_limit


_READY = b"ready"  # never a pickle: a result is told from it without unpickling
_STARTED, _REVOKED = 0, 1  # a worker's shared counters: the number of the task it started last, of one taken back

#: A worker whose last task took less than this many seconds is sent its next task before it finishes the current.
PREFETCH_BELOW = 1.0
#: Larger tasks are never sent ahead: the dispatcher must not block on a full pipe while the worker is busy.
PREFETCH_BYTES = 64 * 1024


def _die_with_parent() -> None:
    """On Linux, ask the kernel to kill this worker when the driver dies (kill -9 included), so no orphan
    keeps writing into a sweep folder that a resumed driver is about to reuse."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _worker_main(conn: Connection, claim: Any, counters: Any, tmp: str) -> None:
    _die_with_parent()
    # A folder of this process's own inside the pool's (removed with it, even if this process is killed), set
    # before GMAT starts and makes its runtime folder: GMAT names some temporary files after the output they
    # become, so processes sharing a TMPDIR would write over each other's.
    tempfile.tempdir = os.environ["TMPDIR"] = tempfile.mkdtemp(prefix="worker-", dir=tmp)
    # Ctrl-C in a terminal reaches the whole process group: the driver handles it and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn.send_bytes(_READY)  # per-run timeouts start only once a process is up, not while it is being spawned
    received = 0  # tasks are numbered 1, 2... in the order sent; the driver counts them the same way
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        received += 1
        with claim:
            if counters[_REVOKED] == received:
                continue  # the driver took this one back for an idle worker before it started here
            counters[_STARTED] = received
        fn, args = message
        try:
            reply = (True, fn(*args))
        except BaseException as exc:  # noqa: BLE001 - report every failure to the driver
            reply = (False, RuntimeError(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        try:
            conn.send(reply)
        except Exception as exc:  # noqa: BLE001 - an unpicklable result must not kill the worker
            conn.send((False, RuntimeError(f"task result could not be sent back: {exc}")))


# What the dispatcher resolves a future with, once it has let go of the pool's lock (a future's callbacks run
# then, and may submit): a worker's pickled reply, or the error the task failed with.
_Finished = list[tuple[concurrent.futures.Future[Any], "bytes | BaseException"]]


def _deliver(future: concurrent.futures.Future[Any], reply: bytes | BaseException) -> None:
    if isinstance(reply, BaseException):
        ok, value = False, reply
    else:
        try:
            ok, value = ForkingPickler.loads(reply)
        except Exception as exc:  # noqa: BLE001 - e.g. a result class the driver cannot import
            ok, value = False, WorkerLost(f"the task's result could not be read back: {type(exc).__name__}: {exc}")
    try:
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
    except concurrent.futures.InvalidStateError:
        pass  # already settled: the pool was closed meanwhile


# LocalPool's own workers never import the main module (spawn.py); a process that does (one of the caller's own
# multiprocessing children re-running an unguarded script) cannot start processes while it bootstraps.
_MAIN_GUARD = ('This process is being started by multiprocessing and runs your main module again: put the code that '
               'runs the sweep under  if __name__ == "__main__":')


class _StartFailed(RuntimeError):
    pass


def _start_failure(exc: BaseException) -> str:
    if isinstance(exc, _StartFailed):
        return f"LocalPool could not start its worker processes: {exc}"
    hint = f" {_MAIN_GUARD}" if "bootstrapping phase" in str(exc) else ""
    return f"LocalPool could not run its worker processes: {type(exc).__name__}: {exc}".rstrip() + hint


class _Worker:
    def __init__(self, ctx: Any, tmp: str) -> None:
        self.conn, child = ctx.Pipe()
        self.claim = ctx.Lock()
        self.counters = ctx.RawArray("q", 2)
        self.sent = 0  # tasks sent to this process
        self.process = spawn.Process(target=_worker_main, args=(child, self.claim, self.counters, tmp), daemon=True,
                                   name="gmat-sweep-worker", env=spawn.SINGLE_THREADED)
        self.process.start()
        child.close()
        # The tasks sent to this process, in the order it runs them: the first is running, any other is waiting.
        self.tasks: collections.deque[tuple[concurrent.futures.Future[Any], bytes]] = collections.deque()
        self.started = 0.0  # when the first task started, as far as the driver can tell
        self.deadline: float | None = None
        self.limit: float | None = None  # the running task's time limit
        self.last = float("inf")  # how long its last task took
        self.ready = False

    def can_take(self, task: bytes) -> bool:
        """Whether this process should be sent ``task`` now."""
        if not self.ready:
            return False
        if not self.tasks:
            return True
        return len(self.tasks) == 1 and self.last < PREFETCH_BELOW and len(task) <= PREFETCH_BYTES

    def begin(self, now: float) -> None:
        """The first task in ``tasks`` starts now; it may run for its own limit (see ``LocalPool.submit``)."""
        self.started = now
        self.limit = getattr(self.tasks[0][0], "gmat_limit", None)
        self.deadline = now + self.limit if self.limit else None

    def take_back(self) -> tuple[concurrent.futures.Future[Any], bytes] | None:
        """The task sent ahead, if this process has not started it; it never will."""
        if len(self.tasks) < 2 or not self.claim.acquire(timeout=0.5):
            return None  # (a process killed while holding the lock keeps it: its death is handled elsewhere)
        try:
            if self.counters[_STARTED] >= self.sent:
                return None  # it has started it: the result of the one before is on its way
            self.counters[_REVOKED] = self.sent
        finally:
            self.claim.release()
        return self.tasks.pop()

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()


class LocalPool(Pool):
    """Worker processes on this machine (default: one per core).

    ``timeout``: seconds after which any task is stopped and fails with :class:`RunTimedOut`; a sweep's runs also
    carry their own limit (``Sweep(timeout=...)``), and the smaller of the two applies.

    >>> with LocalPool(max_workers=4, timeout=600) as pool:
    ...     df = sweep("mission.script", grid={"Sat.SMA": [7000, 7100]}, backend=pool)
    """

    #: A running task, one sent ahead and one queued per worker: a finished task's worker is then sent its next one
    #: in the same wake-up of the dispatcher that read the result, instead of a second wake-up when the caller submits.
    window_per_worker = 3.0

    def __init__(self, max_workers: int | None = None, timeout: float | None = None) -> None:
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ValueError(f"max_workers must be a positive whole number, got {max_workers!r}")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._n = max_workers or os.cpu_count() or 1
        self.timeout = timeout
        self._ctx = multiprocessing.get_context("spawn")
        self._queue: collections.deque[tuple[concurrent.futures.Future[Any], bytes]]
        self._queue = collections.deque()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        self._closed = False
        self._broken: BaseException | None = None
        self._start_failures = 0
        self.replaced = 0  # how many workers died and were replaced, for reports and tests
        self._tmp = tempfile.mkdtemp(prefix="gmat-sweep-pool-")
        # Also when the pool is never closed: at garbage collection or when the interpreter exits.
        self._remove_tmp = weakref.finalize(self, shutil.rmtree, self._tmp, True)
        self._thread = threading.Thread(target=self._loop, name="gmat-sweep-localpool", daemon=True)
        self._thread.start()

    @property
    def max_workers(self) -> int:
        return self._n

    def worker_pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._workers if w.process.pid is not None]

    def busy_pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._workers if w.tasks and w.process.pid]

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
        if self._closed:
            raise RuntimeError("this LocalPool is closed; create a new one")
        if self._broken is not None:
            raise PoolBroken(_start_failure(self._broken))
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        # Each task's own limit (a sweep's run carries one in its RunSpec), read by the dispatcher when it starts.
        future.gmat_limit = task_limit(self.timeout, args)  # type: ignore[attr-defined]
        # Pickled here, on the caller's thread, so handing a task to a worker that just finished one is only a write.
        try:
            task = bytes(ForkingPickler.dumps((fn, args)))
        except Exception as exc:  # noqa: BLE001 - an unpicklable task fails alone, like any other task
            future.set_exception(WorkerLost(f"could not send the task to a worker: {exc}"))
            return future
        with self._lock:
            self._queue.append((future, task))
            # A busy pool takes the task when a worker finishes, and the dispatcher is awake then anyway.
            wake = len(self._workers) < self._n or any(w.can_take(task) for w in self._workers)
        if wake:
            self._wake()
        return future

    def for_each(self, fn: Callable[[Any], Any], items: Iterable[Any],
                 consume: Callable[[Any, Any, BaseException | None], None], window: int | None = None) -> None:
        """Like :meth:`Pool.for_each`; ``consume`` runs on the pool's dispatcher thread as each result is read (or
        on the caller's thread, for a task that fails before it is sent), one call at a time."""
        source = iter(items)
        # One consume at a time, and the source read by one thread at a time. Reentrant: a task that fails before
        # it is sent settles its future inside submit, and its callback then runs inside refill.
        lock = threading.RLock()
        done = threading.Event()
        state: dict[str, Any] = {"inflight": 0, "exhausted": False, "stopped": False, "error": None}

        def refill() -> None:  # called with ``lock`` held
            while not state["stopped"] and not state["exhausted"] and state["inflight"] < self.window_size(window):
                try:
                    item = next(source)
                except StopIteration:
                    state["exhausted"] = True
                    break
                state["inflight"] += 1
                future = self.submit(fn, item)
                future.add_done_callback(functools.partial(finished, item))
            if state["stopped"] or (state["exhausted"] and not state["inflight"]):
                done.set()

        def finished(item: Any, future: concurrent.futures.Future[Any]) -> None:
            with lock:
                state["inflight"] -= 1
                if state["stopped"]:
                    return
                try:
                    error = future.exception()
                    consume(item, None if error else future.result(), error)
                    refill()
                except BaseException as exc:  # noqa: BLE001 - raised on the caller's thread below
                    state["error"], state["stopped"] = exc, True
                    done.set()

        try:
            with lock:
                refill()
            while not done.wait(0.5):  # a short wait keeps Ctrl-C prompt on the caller's thread
                pass
        finally:
            with lock:  # a consume in progress on the dispatcher thread finishes first
                state["stopped"] = True
        if state["error"] is not None:
            raise state["error"]

    def wait_any(self, futures: list[Any], timeout: float | None = None) -> set[Any]:
        return concurrent.futures.wait(futures, timeout, return_when=concurrent.futures.FIRST_COMPLETED).done

    def result(self, future: Any) -> Any:
        return future.result()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake()
        self._thread.join(timeout=30)
        with self._lock:
            workers, self._workers = self._workers, []
            pending = list(self._queue)
            self._queue.clear()
        for worker in workers:
            for k, (future, _) in enumerate(worker.tasks):
                if not future.done():
                    future.set_exception(WorkerLost("the pool was closed while this task ran" if k == 0 else
                                                    "the pool was closed before this task started"))
            worker.stop(kill=bool(worker.tasks))
        for future, _ in pending:
            # One taken back from a dead worker is marked running and cannot be cancelled.
            if not future.cancel() and not future.done():
                future.set_exception(WorkerLost("the pool was closed before this task started"))
        self._remove_tmp()

    # ----------------------------------------------------------------------------------- dispatch

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"")
        except OSError:
            pass

    def _loop(self) -> None:
        try:
            self._serve()
        except BaseException as exc:  # noqa: BLE001 - never leave futures waiting on a dead dispatcher
            self._broken = exc
            with self._lock:
                running = [future for w in self._workers for future, _ in w.tasks]
                queued = [future for future, _ in self._queue]
                self._queue.clear()
            error = PoolBroken(_start_failure(exc))
            for future in running + queued:
                if not future.done():
                    future.set_exception(error)

    def _serve(self) -> None:
        while not self._closed:
            finished: _Finished = []
            try:
                self._dispatch(finished)
            finally:
                for future, reply in finished:
                    _deliver(future, reply)
            with self._lock:
                waitables: list[Any] = [self._wake_r]
                for worker in self._workers:
                    waitables += [worker.conn, worker.process.sentinel]
                deadlines = [w.deadline for w in self._workers if w.deadline is not None]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            ready = wait(waitables, timeout=timeout)
            if self._wake_r in ready:
                while self._wake_r.poll():
                    self._wake_r.recv()
            finished = []
            try:
                self._collect(ready, finished)
                # Freed workers get their next task before any result is delivered: a delivered result wakes the
                # caller's thread, which then competes for the GIL, and a worker waiting for work is the dearer wait.
                self._dispatch(finished)
            finally:
                for future, reply in finished:
                    _deliver(future, reply)

    def _dispatch(self, finished: _Finished) -> None:
        with self._lock:
            while self._queue or self._take_back():
                future, task = self._queue[0]
                # An idle worker first, then a new process, and only then a busy worker's next task.
                worker = next((w for w in self._workers if w.ready and not w.tasks), None)
                if worker is None and len(self._workers) < self._n:
                    self._workers.append(_Worker(self._ctx, self._tmp))
                    continue
                worker = worker or next((w for w in self._workers if w.can_take(task)), None)
                if worker is None:
                    return
                self._queue.popleft()
                # A task taken back from a dead worker before it started is already marked running.
                if not future.running() and not future.set_running_or_notify_cancel():
                    continue
                try:
                    worker.conn.send_bytes(task)
                except Exception as exc:  # noqa: BLE001 - a worker that just died
                    finished.append((future, WorkerLost(f"could not send the task to a worker: {exc}")))
                    continue
                worker.sent += 1
                worker.tasks.append((future, task))
                if len(worker.tasks) == 1:
                    worker.begin(time.monotonic())

    def _take_back(self) -> bool:
        """With nothing queued and a worker idle, queue a task sent ahead to a busy worker that has not started it:
        at the end of a sweep it would otherwise wait for that worker's current run."""
        if not any(w.ready and not w.tasks for w in self._workers):
            return False
        for worker in self._workers:
            taken = worker.take_back()
            if taken is not None:
                self._queue.append(taken)
                return True
        return False

    def _collect(self, ready: list[Any], finished: _Finished) -> None:
        """Read what the workers sent; add the finished tasks' futures to ``finished`` with their (still pickled)
        replies."""
        now = time.monotonic()
        with self._lock:
            for worker in list(self._workers):
                if worker.conn in ready:
                    try:
                        self._received(worker, worker.conn.recv_bytes(), finished, now)
                    except (EOFError, OSError):
                        self._replace(worker, self._death(worker), finished, now)
                elif worker.process.sentinel in ready or not worker.process.is_alive():
                    self._replace(worker, self._death(worker), finished, now)
                elif worker.deadline is not None and now >= worker.deadline:
                    # A result that arrived since the wait wins over the deadline (which then moves on).
                    if not self._drain(worker, finished, now):
                        self._replace(worker, f"timed out after {worker.limit:g} s; the worker process was killed",
                                      finished, now, timed_out=True)

    def _received(self, worker: _Worker, message: bytes, finished: _Finished, now: float) -> None:
        if message == _READY:
            worker.ready = True
            return
        if not worker.tasks:
            return
        future, _ = worker.tasks.popleft()
        finished.append((future, message))
        worker.last = now - worker.started
        worker.deadline = None
        if worker.tasks:
            worker.begin(now)  # the worker went straight on to the task sent ahead

    def _drain(self, worker: _Worker, finished: _Finished, now: float) -> bool:
        """Read the messages already in ``worker``'s pipe; whether there were any."""
        got = False
        try:
            while worker.conn.poll():
                self._received(worker, worker.conn.recv_bytes(), finished, now)
                got = True
        except (EOFError, OSError):
            pass
        return got

    @staticmethod
    def _death(worker: _Worker) -> str:
        worker.process.join(timeout=5)  # the exit code is known only once the process is reaped
        code = worker.process.exitcode
        if code is not None and code < 0:
            import signal

            name = signal.Signals(-code).name if -code in signal.valid_signals() else "?"
            how = f"was killed by signal {-code} ({name})"
        else:
            how = f"exited ({code})"
        return f"worker process {worker.process.pid} {how} while running this task"

    def _replace(self, worker: _Worker, reason: str, finished: _Finished, now: float,
                 timed_out: bool = False) -> None:
        # Results it sent before it died are still in the pipe: they count, and the task it died on is the next one.
        self._drain(worker, finished, now)
        if not worker.ready:
            # A process that dies before it can take work will not do better the next time: stop respawning.
            self._start_failures += 1
            if self._start_failures >= 3:
                raise _StartFailed(f"worker processes die while starting ({reason.split(' while ')[0]}); see the "
                                   "traceback they printed above")
        else:
            self._start_failures = 0
        if worker.tasks:
            future, _ = worker.tasks.popleft()
            elapsed = now - worker.started  # the lost run's real duration, as far as the driver can tell
            finished.append((future, RunTimedOut(reason, elapsed, worker.limit) if timed_out
                             else WorkerLost(reason, elapsed)))
        # A task sent ahead had not started (tasks run in the order sent): it goes first to the next free worker.
        self._queue.extendleft(reversed(worker.tasks))
        worker.tasks.clear()
        worker.stop(kill=True)
        self._workers.remove(worker)
        self.replaced += 1
        # A new process is started on demand by _dispatch, so a dead worker costs one engine start.
