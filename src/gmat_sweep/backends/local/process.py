"""One LocalPool worker process: what runs inside it, and the driver's handle on it.

Inside, a worker asks the kernel to end it with the driver (Linux), takes a temporary folder of its own, then runs
the tasks it is sent one at a time. The driver's handle (:class:`WorkerProcess`) spawns it, knows which tasks it
holds, takes back a task sent ahead that it has not started (the two sides share a lock and two counters), stops
it, and says how it died. The pool (pool.py) decides which process gets which task and when one is replaced.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import signal
import sys
import tempfile
import traceback
from multiprocessing.connection import Connection
from typing import Any

from .. import spawn


READY = b"ready"  # never a pickle: a result is told from it without unpickling
#: Sent by a worker that skipped tasks taken back from it: it wakes the driver, which may send it work again.
SKIPPED = b"skipped"
#: The first item of a message that carries several tasks: ``(BATCH, fn, [args, ...])``; ``(fn, args)`` is one task.
BATCH = "gmat-sweep-batch"
# A worker's shared counters: the number of the last task it started or skipped, and the highest number it may
# start (the tasks after it were taken back). Tasks are numbered 1, 2... in the order sent, on both sides.
_POSITION, _LIMIT = 0, 1
_NO_LIMIT = 2**62

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
    conn.send_bytes(READY)  # per-run timeouts start only once a process is up, not while it is being spawned
    received = 0  # tasks are numbered 1, 2... in the order sent; the driver counts them the same way
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        # A batch is pickled once (the script its runs share, once), but each task in it is claimed, run and
        # answered on its own: a finished task's result reaches the driver while the rest of its batch still runs.
        fn, tasks = (message[1], message[2]) if message[0] == BATCH else (message[0], [message[1]])
        for args in tasks:
            received += 1
            with claim:
                counters[_POSITION] = received
                skip = received > counters[_LIMIT]
            if skip:  # the driver took this one back for an idle worker before it started here
                conn.send_bytes(SKIPPED)
                continue
            try:
                reply = (True, fn(*args))
            except BaseException as exc:  # noqa: BLE001 - report every failure to the driver
                reply = (False, RuntimeError(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
            try:
                conn.send(reply)
            except Exception as exc:  # noqa: BLE001 - an unpicklable result must not kill the worker
                conn.send((False, RuntimeError(f"task result could not be sent back: {exc}")))


# LocalPool's own workers never import the main module (spawn.py); a process that does (one of the caller's own
# multiprocessing children re-running an unguarded script) cannot start processes while it bootstraps.
_MAIN_GUARD = ('This process is being started by multiprocessing and runs your main module again: put the code that '
               'runs the sweep under  if __name__ == "__main__":')


class StartFailed(RuntimeError):
    """Worker processes keep dying before they can take work: respawning them would not help."""


def start_failure(exc: BaseException) -> str:
    """The one-line message of a pool whose workers cannot start or whose dispatcher failed with ``exc``."""
    if isinstance(exc, StartFailed):
        return f"LocalPool could not start its worker processes: {exc}"
    hint = f" {_MAIN_GUARD}" if "bootstrapping phase" in str(exc) else ""
    return f"LocalPool could not run its worker processes: {type(exc).__name__}: {exc}".rstrip() + hint


class WorkerProcess:
    """The driver's handle on one spawned worker process: its pipe, the tasks it holds, its deadline."""

    def __init__(self, ctx: Any, tmp: str) -> None:
        self.conn, child = ctx.Pipe()
        self.claim = ctx.Lock()
        self.counters = ctx.RawArray("q", 2)
        self.counters[_LIMIT] = _NO_LIMIT
        self.sent = 0  # tasks sent to this process (the number of the last one)
        self.revoked_at: int | None = None  # ``sent`` when tasks were last taken back, until the process passed them
        self.process = spawn.Process(target=_worker_main, args=(child, self.claim, self.counters, tmp), daemon=True,
                                   name="gmat-sweep-worker", env=spawn.SINGLE_THREADED)
        self.process.start()
        child.close()
        # The tasks sent to this process, in the order it runs them, with their numbers: the first is running, any
        # other is waiting.
        self.tasks: collections.deque[tuple[concurrent.futures.Future[Any], Any, int]] = collections.deque()
        self.started = 0.0  # when the first task started, as far as the driver can tell
        self.deadline: float | None = None
        self.limit: float | None = None  # the running task's time limit
        self.last = float("inf")  # how long its last task took
        self.ready = False
        self.inbox: Any = None  # the pool's non-blocking reader of this pipe (inbox.py), when it uses one

    def idle(self) -> bool:
        """Whether this process is up, holds no task and may be sent one."""
        return self.ready and not self.tasks and self._passed()

    def can_take(self, size: int) -> bool:
        """Whether this process should be sent a message of ``size`` bytes now."""
        if not self.ready or not self._passed():
            return False
        if not self.tasks:
            return True
        return len(self.tasks) == 1 and self.last < PREFETCH_BELOW and size <= PREFETCH_BYTES

    def _passed(self) -> bool:
        # Tasks taken back stay in the process's pipe until it reads and skips them: it is sent nothing new before,
        # as the limit that makes it skip them would then have to let the new ones through.
        if self.revoked_at is None:
            return True
        if self.counters[_POSITION] < self.revoked_at:
            return False
        self.counters[_LIMIT] = _NO_LIMIT  # it has read every task sent so far; the next ones are numbered higher
        self.revoked_at = None
        return True

    def begin(self, now: float) -> None:
        """The first task in ``tasks`` starts now; it may run for its own limit (see ``LocalPool.submit``)."""
        self.started = now
        self.limit = getattr(self.tasks[0][0], "gmat_limit", None)
        self.deadline = now + self.limit if self.limit else None

    def take_back(self) -> list[tuple[concurrent.futures.Future[Any], Any]]:
        """Half (rounded up) of the tasks sent ahead that this process has not started; it never will."""
        if len(self.tasks) < 2 or not self.claim.acquire(timeout=0.5):
            return []  # (a process killed while holding the lock keeps it: its death is handled elsewhere)
        try:
            position = self.counters[_POSITION]
            # The first task is the one the driver times: it stays, started or not.
            waiting = sum(1 for _, _, number in self.tasks if number > position and number != self.tasks[0][2])
            if not waiting:
                return []  # it has started them: the results of the ones before are on their way
            keep = len(self.tasks) - (waiting + 1) // 2
            self.counters[_LIMIT] = self.tasks[keep - 1][2]
        finally:
            self.claim.release()
        self.revoked_at = self.sent
        taken = [self.tasks.pop() for _ in range(len(self.tasks) - keep)]
        return [(future, task) for future, task, _ in reversed(taken)]

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
        if self.inbox is not None:
            self.inbox.close()

    def death(self) -> str:
        """Why this process ended, once it has: the signal that killed it or its exit code."""
        self.process.join(timeout=5)  # the exit code is known only once the process is reaped
        code = self.process.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else "?"
            how = f"was killed by signal {-code} ({name})"
        else:
            how = f"exited ({code})"
        return f"worker process {self.process.pid} {how} while running this task"
