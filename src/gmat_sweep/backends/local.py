"""LocalPool: spawned worker processes on this machine, each starting the GMAT engine once.

GMAT is process-global and a bad script can crash the process that runs it, so each run executes in a worker
process that does one task at a time. The pool watches every worker: when one dies (segfault, kill -9, the
out-of-memory killer) or overruns the per-run ``timeout``, only the task it held fails, with ``WorkerLost``, and a
fresh process takes its place. Workers are spawned, never forked, because GMAT cannot be used after fork.
"""

from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import ForkingPickler
from typing import Any

from .base import Pool, PoolBroken, WorkerLost


_READY = b"ready"  # never a pickle: a result is told from it without unpickling


def _die_with_parent() -> None:
    """On Linux, ask the kernel to kill this worker when the driver dies (kill -9 included), so no orphan
    keeps writing into a sweep folder that a resumed driver is about to reuse."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _worker_main(conn: Connection) -> None:
    _die_with_parent()
    # Ctrl-C in a terminal reaches the whole process group: the driver handles it and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn.send_bytes(_READY)  # per-run timeouts start only once a process is up, not while it is being spawned
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        fn, args = message
        try:
            reply = (True, fn(*args))
        except BaseException as exc:  # noqa: BLE001 - report every failure to the driver
            reply = (False, RuntimeError(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        try:
            conn.send(reply)
        except Exception as exc:  # noqa: BLE001 - an unpicklable result must not kill the worker
            conn.send((False, RuntimeError(f"task result could not be sent back: {exc}")))


def _deliver(future: concurrent.futures.Future[Any], reply: bytes) -> None:
    try:
        ok, value = ForkingPickler.loads(reply)
    except Exception as exc:  # noqa: BLE001 - e.g. a result class the driver cannot import
        ok, value = False, WorkerLost(f"the task's result could not be read back: {type(exc).__name__}: {exc}")
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


_MAIN_GUARD = ('Worker processes are spawned and import your main module again: put the code that runs the sweep '
               'under  if __name__ == "__main__":')


class _StartFailed(RuntimeError):
    pass


def _start_failure(exc: BaseException) -> str:
    if isinstance(exc, _StartFailed):
        return f"LocalPool could not start its worker processes: {exc}"
    hint = f" {_MAIN_GUARD}" if "bootstrapping phase" in str(exc) else ""
    return f"LocalPool could not run its worker processes: {type(exc).__name__}: {exc}".rstrip() + hint


class _Worker:
    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child,), daemon=True, name="gmat-sweep-worker")
        self.process.start()
        child.close()
        self.future: concurrent.futures.Future[Any] | None = None
        self.deadline: float | None = None
        self.ready = False

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

    >>> with LocalPool(max_workers=4, timeout=600) as pool:
    ...     df = sweep("mission.script", grid={"Sat.SMA": [7000, 7100]}, backend=pool)
    """

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
            return [w.process.pid for w in self._workers if w.future is not None and w.process.pid]

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
        if self._closed:
            raise RuntimeError("this LocalPool is closed; create a new one")
        if self._broken is not None:
            raise PoolBroken(_start_failure(self._broken))
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        # Pickled here, on the caller's thread, so handing a task to a worker that just finished one is only a write.
        try:
            task = bytes(ForkingPickler.dumps((fn, args)))
        except Exception as exc:  # noqa: BLE001 - an unpicklable task fails alone, like any other task
            future.set_exception(WorkerLost(f"could not send the task to a worker: {exc}"))
            return future
        with self._lock:
            self._queue.append((future, task))
            # A busy pool takes the task when a worker finishes, and the dispatcher is awake then anyway.
            wake = len(self._workers) < self._n or any(w.ready and w.future is None for w in self._workers)
        if wake:
            self._wake()
        return future

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
            if worker.future is not None and not worker.future.done():
                worker.future.set_exception(WorkerLost("the pool was closed while this task ran"))
            worker.stop(kill=worker.future is not None)
        for future, _ in pending:
            future.cancel()

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
                running = [w.future for w in self._workers if w.future is not None]
                queued = [future for future, _ in self._queue]
                self._queue.clear()
            error = PoolBroken(_start_failure(exc))
            for future in running + queued:
                if not future.done():
                    future.set_exception(error)

    def _serve(self) -> None:
        while not self._closed:
            self._dispatch()
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
            finished: list[tuple[concurrent.futures.Future[Any], bytes]] = []
            try:
                self._collect(ready, finished)
                # Freed workers get their next task before any result is delivered: a delivered result wakes the
                # caller's thread, which then competes for the GIL, and a worker waiting for work is the dearer wait.
                self._dispatch()
            finally:
                for future, reply in finished:
                    _deliver(future, reply)

    def _dispatch(self) -> None:
        with self._lock:
            while self._queue:
                idle = next((w for w in self._workers if w.future is None and w.ready), None)
                if idle is None:
                    if len(self._workers) < self._n:
                        self._workers.append(_Worker(self._ctx))
                        continue
                    return
                future, task = self._queue.popleft()
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    idle.conn.send_bytes(task)
                except Exception as exc:  # noqa: BLE001 - a worker that just died
                    future.set_exception(WorkerLost(f"could not send the task to a worker: {exc}"))
                    continue
                idle.future = future
                idle.deadline = time.monotonic() + self.timeout if self.timeout else None

    def _collect(self, ready: list[Any], finished: list[tuple[concurrent.futures.Future[Any], bytes]]) -> None:
        """Read what the workers sent; add the finished tasks' futures to ``finished`` with their (still pickled)
        replies."""
        now = time.monotonic()
        with self._lock:
            for worker in list(self._workers):
                if worker.conn in ready:
                    try:
                        message = worker.conn.recv_bytes()
                    except (EOFError, OSError):
                        self._replace(worker, self._death(worker))
                        continue
                    if message == _READY:
                        worker.ready = True
                        continue
                    future, worker.future, worker.deadline = worker.future, None, None
                    if future is not None:
                        finished.append((future, message))
                elif worker.process.sentinel in ready or not worker.process.is_alive():
                    self._replace(worker, self._death(worker))
                elif worker.deadline is not None and now >= worker.deadline:
                    self._replace(worker, f"timed out after {self.timeout:g} s; the worker process was killed")

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

    def _replace(self, worker: _Worker, reason: str) -> None:
        if not worker.ready:
            # A process that dies before it can take work will not do better the next time: stop respawning.
            self._start_failures += 1
            if self._start_failures >= 3:
                raise _StartFailed(f"worker processes die while starting ({reason.split(' while ')[0]}); see the "
                                   f"traceback they printed above. {_MAIN_GUARD}")
        else:
            self._start_failures = 0
        if worker.future is not None and not worker.future.done():
            worker.future.set_exception(WorkerLost(reason))
        worker.future = None
        worker.stop(kill=True)
        self._workers.remove(worker)
        self.replaced += 1
        # A new process is started on demand by _dispatch, so a dead worker costs one engine start.
