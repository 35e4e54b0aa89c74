"""LocalPool, the driver's side: the task queue, the dispatcher thread that hands tasks to worker processes and
reads their results, deadlines, and replacing a process that died (the processes themselves: process.py).
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import math
import multiprocessing
import os
import pickle
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from multiprocessing.reduction import ForkingPickler
from typing import Any

from ..base import Pool, PoolBroken, RunTimedOut, WorkerLost, task_limit
from . import batches
from .feed import Feed
from .inbox import Inbox, Poller, deliver
from .process import PREFETCH_BELOW, READY, SKIPPED, StartFailed, WorkerProcess, start_failure


# What the dispatcher resolves a future with, once it has let go of the pool's lock (a future's callbacks run
# then, and may submit): a worker's pickled reply, or the error the task failed with.
_Finished = list[tuple[concurrent.futures.Future[Any], "bytes | BaseException"]]


def _dumps(value: Any) -> bytes:
    # The plain pickler first: a run's task needs none of ForkingPickler's reducers (pipes, sockets), and skipping
    # its per-call setup is a few microseconds of the driver's time on every run.
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - e.g. a multiprocessing object only ForkingPickler can reduce
        return bytes(ForkingPickler.dumps(value))


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
    #: Runs of a sweep per message while runs are short (see batches.py).
    batch_runs = 8
    #: The longest the dispatcher lets results gather before reading them, while every worker has work sent ahead.
    linger = 0.05

    def __init__(self, max_workers: int | None = None, timeout: float | None = None) -> None:
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ValueError(f"max_workers must be a positive whole number, got {max_workers!r}")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._n = max_workers or os.cpu_count() or 1
        self.timeout = timeout
        self._ctx = multiprocessing.get_context("spawn")
        self._queue: collections.deque[tuple[Any, Any]]  # (future or batches.Run, bytes or batches.Part)
        self._queue = collections.deque()
        self._workers: list[WorkerProcess] = []
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        self._closed = False
        self._broken: BaseException | None = None
        self._start_failures = 0
        self.replaced = 0  # how many workers died and were replaced, for reports and tests
        self.messages = 0  # how many messages carried tasks to workers (a batch of runs is one), the same
        self._tmp = tempfile.mkdtemp(prefix="gmat-sweep-pool-")
        # Also when the pool is never closed: at garbage collection or when the interpreter exits.
        self._remove_tmp = weakref.finalize(self, shutil.rmtree, self._tmp, True)
        self._resubmitted = False  # set when a result's callback submits a task on the dispatcher thread
        self._thread = threading.Thread(target=self._loop, name="gmat-sweep-localpool", daemon=True)
        self._thread.start()

    @property
    def max_workers(self) -> int:
        return self._n

    def worker_pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._workers if w.process.pid is not None]

    def busy_pids(self) -> list[int]:
        return [pid for pid, held in self.tasks_per_worker().items() if held]

    def tasks_per_worker(self) -> dict[int, int]:
        """How many tasks each worker process holds now, by pid: the one it runs and any sent ahead (0: idle).

        A snapshot, for reports and tests; it changes as soon as a task finishes or is sent.

        >>> pool.tasks_per_worker()  # a worker running a task with the next one sent ahead, and an idle one
        {4711: 2, 4712: 0}
        """
        with self._lock:
            return {w.process.pid: len(w.tasks) for w in self._workers if w.process.pid}

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
        if self._closed:
            raise RuntimeError("this LocalPool is closed; create a new one")
        if self._broken is not None:
            raise PoolBroken(start_failure(self._broken))
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        # Each task's own limit (a sweep's run carries one in its RunSpec), read by the dispatcher when it starts.
        future.gmat_limit = task_limit(self.timeout, args)  # type: ignore[attr-defined]
        # Pickled here, on the caller's thread, so handing a task to a worker that just finished one is only a write.
        try:
            task = _dumps((fn, args))
        except Exception as exc:  # noqa: BLE001 - an unpicklable task fails alone, like any other task
            future.set_exception(WorkerLost(f"could not send the task to a worker: {exc}"))
            return future
        self._enqueue([(future, task)], len(task))
        return future

    def submit_runs(self, fn: Callable[[Any], Any], items: list[Any],
                    settle: Callable[[Any, Any, BaseException | None], None]) -> None:
        """Queue ``fn(item)`` for each of ``items`` as one batch; ``settle(item, value, error)`` is called as each
        one finishes (see batches.py)."""
        if self._closed:
            raise RuntimeError("this LocalPool is closed; create a new one")
        if self._broken is not None:
            raise PoolBroken(start_failure(self._broken))
        for entries, size in batches.entries(fn, items, settle, self.timeout, _dumps):
            self._enqueue(entries, size)

    def _enqueue(self, entries: list[tuple[Any, Any]], size: int) -> None:
        if threading.get_ident() == self._thread.ident:
            # Submitted by a result's callback: the dispatcher sends it once the callbacks return, without waking
            # itself through the pipe (a write, a poll and a read on every run).
            with self._lock:
                self._queue.extend(entries)
                self._resubmitted = True
            return
        with self._lock:
            self._queue.extend(entries)
            # A busy pool takes the task when a worker finishes, and the dispatcher is awake then anyway.
            wake = len(self._workers) < self._n or any(w.can_take(size) for w in self._workers)
        if wake:
            self._wake()

    def batch_size(self) -> int:
        """How many runs ``run_each`` sends in one message now: ``batch_runs`` while every worker's last task was
        short, else 1 (a long run gains nothing from company, and its batch-mates would wait behind it)."""
        workers = self._workers
        if workers and all(w.last < PREFETCH_BELOW for w in workers):
            return self.batch_runs
        return 1

    def batch_window(self, size: int) -> int:
        """Runs in flight for batches of ``size``: a batch running and one sent ahead per worker, and one queued."""
        return max(self.window_size(), self.max_workers * (size + 1) + size)

    def run_each(self, specs: Iterable[Any], consume: Callable[[Any, Any, BaseException | None], None],
                 window: int | None = None) -> None:
        """Like :meth:`Pool.run_each`; short runs travel several to a message (batches.py), each one still
        claimed, timed, answered and consumed on its own."""
        from ...worker import run_one  # the pool layer calls down into the worker; imported when runs start

        batches.run_each(self, run_one, specs, consume, window)

    def for_each(self, fn: Callable[[Any], Any], items: Iterable[Any],
                 consume: Callable[[Any, Any, BaseException | None], None], window: int | None = None) -> None:
        """Like :meth:`Pool.for_each`; ``consume`` runs on the pool's dispatcher thread as each result is read (or
        on the caller's thread, for a task that fails before it is sent), one call at a time."""
        def refill(feed: Feed) -> None:
            size = self.window_size(window)
            while not feed.stopped and not feed.exhausted and feed.inflight < size:
                try:
                    item = next(feed.source)
                except StopIteration:
                    feed.exhausted = True
                    break
                feed.inflight += 1
                self.submit(fn, item).add_done_callback(functools.partial(feed.finished_future, item))

        Feed(items, consume, refill).run()

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
            for k, (future, *_) in enumerate(worker.tasks):
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
                running = [future for w in self._workers for future, *_ in w.tasks]
                queued = [future for future, _ in self._queue]
                self._queue.clear()
            error = PoolBroken(start_failure(exc))
            for future in running + queued:
                if not future.done():
                    future.set_exception(error)

    def _serve(self) -> None:
        poller, pause = Poller(), Poller()
        while not self._closed:
            finished: _Finished = []
            self._resubmitted = False
            try:
                self._dispatch(finished)
            finally:
                for future, reply in finished:
                    deliver(future, reply)
            if self._resubmitted:
                continue  # a callback above submitted a task: send it before waiting
            with self._lock:
                waitables: list[Any] = [self._wake_r]
                for worker in self._workers:
                    waitables += [worker.conn, worker.process.sentinel]
                deadlines = [w.deadline for w in self._workers if w.deadline is not None]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            linger = self._linger(timeout)
            if linger:
                # Every worker has work for longer than this: results gather and are read in one wake-up. A caller's
                # submit or close still wakes the dispatcher at once.
                pause.wait([self._wake_r], linger)
                timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            ready = poller.wait(waitables, timeout)
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
                    deliver(future, reply)

    def _linger(self, timeout: float | None) -> float:
        """How long the dispatcher may wait before it looks at the workers: until the first of them could run out
        of work sent ahead (its runs' pace), at most ``linger`` s, never past a deadline; 0 when one has none."""
        with self._lock:
            if not self._workers:
                return 0.0
            ahead = min((len(w.tasks) - 1.5) * w.last if w.ready else 0.0 for w in self._workers)
        return max(0.0, min(self.linger, ahead, math.inf if timeout is None else timeout))

    def _dispatch(self, finished: _Finished) -> None:
        with self._lock:
            while self._queue or self._take_back():
                data, count = batches.message(self._queue, _dumps)
                # An idle worker first, then a new process, and only then a busy worker's next task.
                worker = next((w for w in self._workers if w.idle()), None)
                if worker is None and len(self._workers) < self._n:
                    self._workers.append(WorkerProcess(self._ctx, self._tmp))
                    self._workers[-1].inbox = Inbox(self._workers[-1].conn)
                    continue
                worker = worker or next((w for w in self._workers if w.can_take(len(data))), None)
                if worker is None:
                    return
                entries = [self._queue.popleft() for _ in range(count)]
                # A task taken back from a dead worker before it started is already marked running. (A batch's
                # runs are only cancelled by close, once this thread has stopped: the message carries them all.)
                if not all([f.running() or f.set_running_or_notify_cancel() for f, _ in entries]) and count == 1:
                    continue
                try:
                    worker.conn.send_bytes(data)
                except Exception as exc:  # noqa: BLE001 - a worker that just died
                    finished += [(f, WorkerLost(f"could not send the task to a worker: {exc}")) for f, _ in entries]
                    continue
                self.messages += 1
                for future, task in entries:
                    worker.sent += 1
                    worker.tasks.append((future, task, worker.sent))
                if len(worker.tasks) == count:
                    worker.begin(time.monotonic())

    def _take_back(self) -> bool:
        """With nothing queued and a worker idle, queue a task sent ahead to a busy worker that has not started it:
        at the end of a sweep it would otherwise wait for that worker's current run."""
        if not any(w.idle() for w in self._workers):
            return False
        for worker in sorted(self._workers, key=lambda w: -len(w.tasks)):  # from the one holding most first
            taken = worker.take_back()
            if taken:
                self._queue.extend(taken)
                return True
        return False

    def _collect(self, ready: list[Any], finished: _Finished) -> None:
        """Read what the workers sent; add the finished tasks' futures to ``finished`` with their (still pickled)
        replies."""
        now = time.monotonic()
        with self._lock:
            for worker in list(self._workers):
                if worker.conn in ready:
                    started, held = worker.started, len(worker.tasks)
                    messages, ended = worker.inbox.read()
                    for message in messages:
                        self._received(worker, message, finished, now)
                    if held - len(worker.tasks) > 1:
                        # Several results read at once: the pace of its runs, not the time since the last read.
                        worker.last = (now - started) / (held - len(worker.tasks))
                    if ended:
                        self._replace(worker, worker.death(), finished, now)
                # A dead process's sentinel is among the waitables (one started since is seen on the next wake-up):
                # no waitpid per worker per run.
                elif worker.process.sentinel in ready:
                    self._replace(worker, worker.death(), finished, now)
                elif worker.deadline is not None and now >= worker.deadline:
                    # A result that arrived since the wait wins over the deadline (which then moves on).
                    if not self._drain(worker, finished, now):
                        self._replace(worker, f"timed out after {worker.limit:g} s; the worker process was killed",
                                      finished, now, timed_out=True)

    def _received(self, worker: WorkerProcess, message: bytes, finished: _Finished, now: float) -> None:
        if message == READY:
            worker.ready = True
            return
        if message == SKIPPED or not worker.tasks:
            return  # (it skipped a task taken back from it: it may be sent work again, see WorkerProcess.idle)
        future, *_ = worker.tasks.popleft()
        finished.append((future, message))
        worker.last = now - worker.started
        worker.deadline = None
        if worker.tasks:
            worker.begin(now)  # the worker went straight on to the task sent ahead

    def _drain(self, worker: WorkerProcess, finished: _Finished, now: float) -> bool:
        """Read the messages already in ``worker``'s pipe; whether there were any."""
        messages, _ = worker.inbox.read()
        for message in messages:
            self._received(worker, message, finished, now)
        return bool(messages)

    def _replace(self, worker: WorkerProcess, reason: str, finished: _Finished, now: float,
                 timed_out: bool = False) -> None:
        # Results it sent before it died are still in the pipe: they count, and the task it died on is the next one.
        self._drain(worker, finished, now)
        if not worker.ready:
            # A process that dies before it can take work will not do better the next time: stop respawning.
            self._start_failures += 1
            if self._start_failures >= 3:
                raise StartFailed(f"worker processes die while starting ({reason.split(' while ')[0]}); see the "
                                   "traceback they printed above")
        else:
            self._start_failures = 0
        if worker.tasks:
            future, *_ = worker.tasks.popleft()
            elapsed = now - worker.started  # the lost run's real duration, as far as the driver can tell
            finished.append((future, RunTimedOut(reason, elapsed, worker.limit) if timed_out
                             else WorkerLost(reason, elapsed)))
        # A task sent ahead had not started (tasks run in the order sent): it goes first to the next free worker.
        self._queue.extendleft((future, task) for future, task, _ in reversed(worker.tasks))
        worker.tasks.clear()
        worker.stop(kill=True)
        self._workers.remove(worker)
        self.replaced += 1
        # A new process is started on demand by _dispatch, so a dead worker costs one engine start.
