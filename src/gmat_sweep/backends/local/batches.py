"""LocalPool's ``run_each``: a sweep's runs sent to the worker processes several to a message.

A short run costs the driver a fixed amount of work per message (pickling the spec with its script text, a
``Future`` and its callback, a pipe write), which at a few hundred runs a second is most of the driver's CPU. So
while the last runs took less than ``process.PREFETCH_BELOW`` seconds, ``run_each`` hands out runs in batches of
``LocalPool.batch_runs``: one pickle per batch (the ``ScriptSource`` its runs share is pickled once), one write,
and for each run a small :class:`Run` in place of a ``Future`` that calls ``consume`` directly when the dispatcher
reads the run's result. Nothing else changes per run: the worker claims, runs and answers each run of a batch on
its own (process.py), so a finished run is recorded while its batch-mates still run, its deadline starts when the
one before it ends, a crash or timeout fails only the run it hit, and the runs of a batch a worker has not started
can be taken back for an idle worker (then sent again, re-pickled, as a smaller batch).
"""

from __future__ import annotations

import concurrent.futures
import itertools
from collections.abc import Callable, Iterable
from typing import Any

from ..base import WorkerLost, task_limit
from .feed import Feed
from .process import BATCH

_PENDING, _RUNNING, _FINISHED, _CANCELLED = range(4)


class Batch:
    """Runs handed out together: the function, each run's item, and the pickled message that carries them all."""

    __slots__ = ("fn", "items", "data")

    def __init__(self, fn: Callable[[Any], Any], items: list[Any], data: bytes) -> None:
        self.fn, self.items, self.data = fn, items, data


class Part:
    """Run ``index`` of ``batch``: what the pool's queue and a worker's task list hold for it."""

    __slots__ = ("batch", "index")

    def __init__(self, batch: Batch, index: int) -> None:
        self.batch, self.index = batch, index


class Run:
    """The part of a ``Future`` the pool uses, for one run of ``run_each``: settling it calls ``settle(item, value,
    error)`` at once, on the thread that settles it (the pool's dispatcher), with no lock or condition of its own."""

    __slots__ = ("item", "gmat_limit", "_settle", "_state")

    def __init__(self, item: Any, limit: float | None, settle: Callable[[Any, Any, BaseException | None], None]):
        self.item, self.gmat_limit, self._settle, self._state = item, limit, settle, _PENDING

    def running(self) -> bool:
        return self._state == _RUNNING

    def done(self) -> bool:
        return self._state in (_FINISHED, _CANCELLED)

    def set_running_or_notify_cancel(self) -> bool:
        if self._state == _CANCELLED:
            return False
        self._state = _RUNNING
        return True

    def cancel(self) -> bool:
        if self._state != _PENDING:
            return False
        self._state = _CANCELLED
        self._settle(self.item, None, WorkerLost("the pool was closed before this run started"))
        return True

    def set_result(self, value: Any) -> None:
        self._finish(value, None)

    def set_exception(self, error: BaseException) -> None:
        self._finish(None, error)

    def _finish(self, value: Any, error: BaseException | None) -> None:
        if self.done():
            raise concurrent.futures.InvalidStateError("this run is already settled")
        self._state = _FINISHED
        self._settle(self.item, value, error)


def entries(fn: Callable[[Any], Any], items: list[Any], settle: Callable[[Any, Any, BaseException | None], None],
            timeout: float | None, dumps: Callable[[Any], bytes]) -> Iterable[tuple[list[tuple[Run, Any]], int]]:
    """The queue entries of ``fn(item)`` for each of ``items``, as one batch (entries, message size); a run that
    cannot be pickled fails alone, settled here, and the others go in batches of one."""
    runs = [Run(item, task_limit(timeout, (item,)), settle) for item in items]
    try:
        data = dumps((BATCH, fn, [(item,) for item in items]))
    except Exception as exc:  # noqa: BLE001 - the run that cannot be pickled fails alone
        if len(items) == 1:
            runs[0].set_exception(WorkerLost(f"could not send the task to a worker: {exc}"))
            return
        for item in items:
            yield from entries(fn, [item], settle, timeout, dumps)
        return
    batch = Batch(fn, items, data)
    yield [(run, Part(batch, i)) for i, run in enumerate(runs)], len(data)


def message(queue: Any, dumps: Callable[[Any], bytes]) -> tuple[bytes, int]:
    """The message that sends the head of ``queue`` (a deque of ``(future, task)``), and how many entries it carries:
    a task's own bytes, a whole batch's, or the runs of one batch that follow each other there (taken back from a
    worker, or left by one that died), pickled again as a smaller batch."""
    task = queue[0][1]
    if not isinstance(task, Part):
        return task, 1
    batch, first = task.batch, task.index
    size = len(batch.items)
    # A batch's entries are queued together and the queue only grows at its ends: its first and last entry at the
    # head and size-1 further on mean the whole batch, unsent.
    if first == 0 and len(queue) >= size:
        last = queue[size - 1][1]
        if isinstance(last, Part) and last.batch is batch and last.index == size - 1:
            return batch.data, size
    count = 1
    while count < len(queue):
        nxt = queue[count][1]
        if not (isinstance(nxt, Part) and nxt.batch is batch and nxt.index == first + count):
            break
        count += 1
    return dumps((BATCH, batch.fn, [(item,) for item in batch.items[first:first + count]])), count


def run_each(pool: Any, fn: Callable[[Any], Any], items: Iterable[Any],
             consume: Callable[[Any, Any, BaseException | None], None], window: int | None = None) -> None:
    """``pool.for_each(fn, items, consume, window)`` with items handed out in batches (see the module's text);
    ``consume`` runs on the pool's dispatcher thread, one call at a time."""
    def refill(feed: Feed) -> None:
        while not feed.stopped and not feed.exhausted:
            # One at a time until a window's worth has finished, as for_each would: a sweep's adaptive time limit
            # is set when a run is taken from ``items``, and follows the finished runs only from then on.
            size = pool.batch_size() if feed.finished_count >= pool.window_size() else 1
            room = (window or pool.batch_window(size)) - feed.inflight
            take = min(size, room)
            # A whole batch or nothing while runs are in flight: a refill per finished run would send batches of 1.
            if take <= 0 or (take < size and feed.inflight):
                break
            batch = list(itertools.islice(feed.source, take))
            if len(batch) < take:
                feed.exhausted = True
            if batch:
                feed.inflight += len(batch)
                pool.submit_runs(fn, batch, feed.finished)

    Feed(items, consume, refill).run()
