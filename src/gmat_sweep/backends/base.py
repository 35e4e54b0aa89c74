"""The Pool interface every backend implements, and the sliding window that keeps every worker busy.

A backend only needs ``submit``, ``wait_any``, ``result`` and ``max_workers``; ``imap``, ``for_each``,
``as_completed`` and ``run_each`` (what a sweep calls: every run through ``worker.run_one``) are built on them. A
custom backend (a batch system, a cloud function service) is a small subclass::

    class ThreadPool(Pool):
        def __init__(self, n=4):
            self._ex = concurrent.futures.ThreadPoolExecutor(n)
            self._n = n
        @property
        def max_workers(self):
            return self._n
        def submit(self, fn, *args):
            return self._ex.submit(fn, *args)
        def wait_any(self, futures, timeout=None):
            return concurrent.futures.wait(futures, timeout, return_when="FIRST_COMPLETED").done
        def result(self, future):
            return future.result()
        def close(self):
            self._ex.shutdown()
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from typing import Any


class WorkerLost(RuntimeError):
    """The process running a task died (crash, kill -9, out of memory, eviction) or the task timed out.

    ``elapsed``: how long the task had run when it was lost, in seconds, when the pool knows."""

    def __init__(self, message: str = "", elapsed: float | None = None) -> None:
        super().__init__(message)
        self.elapsed = elapsed

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (str(self), self.elapsed)


class RunTimedOut(WorkerLost):
    """The task ran longer than its time limit (``limit`` seconds); its worker process was killed."""

    def __init__(self, message: str = "", elapsed: float | None = None, limit: float | None = None) -> None:
        super().__init__(message, elapsed)
        self.limit = limit

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (str(self), self.elapsed, self.limit)


def task_limit(pool_timeout: float | None, args: tuple[Any, ...]) -> float | None:
    """A task's time limit: the smaller of the pool's ``timeout`` and the task's own (a run's ``RunSpec.timeout``,
    the sweep's limit for that run)."""
    own = getattr(args[0], "timeout", None) if len(args) == 1 else None
    limits = [t for t in (pool_timeout, own) if isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0]
    return min(limits) if limits else None


class PoolBroken(RuntimeError):
    """The pool itself cannot run tasks (its workers cannot start); the message says why and what to do."""


class Pool(ABC):
    """Runs functions on workers. Use as a context manager so workers are released."""

    #: How many tasks to keep in flight per worker: a little more than one hides dispatch latency.
    window_per_worker: float = 2.0

    @property
    @abstractmethod
    def max_workers(self) -> int:
        """How many tasks can run at once right now (may change while a sweep runs)."""

    @abstractmethod
    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Start ``fn(*args)`` on a worker; return a future-like handle."""

    @abstractmethod
    def wait_any(self, futures: list[Any], timeout: float | None = None) -> set[Any]:
        """Block until at least one of ``futures`` is done (or ``timeout``); return the done ones."""

    @abstractmethod
    def result(self, future: Any) -> Any:
        """The value of a done future; raises its error (``WorkerLost`` when its worker died)."""

    def close(self) -> None:
        """Release the workers this pool owns."""

    def prepare(self, context: dict[str, Any]) -> None:
        """Called by a sweep before its first task with facts about the sweep (out dir, engine, fingerprint).

        Backends use it for preflight checks that must fail fast. The default does nothing."""

    def as_completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        """Yield ``futures`` as they finish."""
        pending = list(futures)
        while pending:
            done = self.wait_any(pending)
            for future in done:
                yield future
            pending = [f for f in pending if f not in done]

    def imap(self, fn: Callable[[Any], Any], items: Iterable[Any],
             window: int | None = None) -> Iterator[tuple[Any, Any, BaseException | None]]:
        """Run ``fn(item)`` for every item, yielding ``(item, result, error)`` in completion order.

        A sliding window keeps about ``window_per_worker x max_workers`` tasks in flight and refills it as each
        task finishes, so no worker waits on a slow neighbour and new workers get work at once. Errors are
        yielded, not raised, so one failed task never stops the others.
        """
        source = iter(items)
        inflight: dict[Any, Any] = {}
        exhausted = False

        def refill() -> None:
            nonlocal exhausted
            target = self.window_size(window)
            while not exhausted and len(inflight) < target:
                try:
                    item = next(source)
                except StopIteration:
                    exhausted = True
                    return
                inflight[self.submit(fn, item)] = item

        refill()
        while inflight:
            done = self.wait_any(list(inflight), timeout=1.0)
            for future in done:
                item = inflight.pop(future)
                try:
                    value, error = self.result(future), None
                except Exception as exc:  # noqa: BLE001 - a task's error is data for the caller
                    value, error = None, exc
                yield item, value, error
            refill()

    def window_size(self, window: int | None = None) -> int:
        """The sliding window every backend keeps: ``window`` tasks in flight if given, else ``window_per_worker``
        per worker now (rounded down, at least one); read again at each refill, so it follows ``max_workers``.

        >>> pool.window_size()  # a LocalPool of 2 workers (3 per worker)
        6
        """
        return window or max(1, int(self.window_per_worker * max(1, self.max_workers)))

    def for_each(self, fn: Callable[[Any], Any], items: Iterable[Any],
                 consume: Callable[[Any, Any, BaseException | None], None], window: int | None = None) -> None:
        """Run ``fn(item)`` for every item and call ``consume(item, result, error)`` as each one finishes.

        ``consume`` is called one item at a time, but a backend may call it from a thread of its own (LocalPool
        does, to spare the caller's thread a wake-up per task). When ``consume`` raises, no new task starts and
        the error is raised here; results that arrive after that, or after this call returns, are not consumed.
        """
        for item, value, error in self.imap(fn, items, window):
            consume(item, value, error)

    def run_each(self, specs: Iterable[Any], consume: Callable[[Any, Any, BaseException | None], None],
                 window: int | None = None) -> None:
        """Run every ``RunSpec`` of ``specs`` with :func:`gmat_sweep.worker.run_one` and call ``consume(spec,
        outcome, error)`` as each one finishes: what a sweep calls.

        The default is ``for_each(run_one, specs, consume, window)``. A backend that ships runs its own way
        overrides it (DaskPool sends short runs in batches); ``imap`` and ``for_each`` stay general.
        """
        from ..worker import run_one  # the pool layer calls down into the worker; imported when runs start

        self.for_each(run_one, specs, consume, window)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
