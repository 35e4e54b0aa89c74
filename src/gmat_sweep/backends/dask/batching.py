"""How many runs the next Dask task carries, and reading the sweep's runs far enough ahead to know when it ends.

Every task costs the driver the same whatever it carries: a message to the scheduler to submit it, the scheduler's
bookkeeping, the result fetched from its worker, the key released. For runs of a few tens of milliseconds that
fixed cost, not the runs, is what the driver spends its CPU on, so short runs travel in tasks of about
``TASK_SECONDS`` of work. Long tasks would make the end of a sweep one long tail (one worker finishing its last
big task while the others wait), so the runs are read ahead of what is submitted: once the end of the sweep is in
sight, each task carries a share of the runs left (``1 / (TAIL_SHARE * workers)`` of them), so the batches shrink
towards the end and the workers finish together.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterator
from typing import Generic, TypeVar

#: Runs shorter than this (seconds) are batched ...
SHORT_RUN = 0.2
#: ... into tasks of about this much work, at most MAX_BATCH runs each.
TASK_SECONDS = 2.0
MAX_BATCH = 256
#: Near the end of a sweep, a task carries at most 1 / (TAIL_SHARE * workers) of the runs left ...
TAIL_SHARE = 2
#: ... but at least this much work (seconds): the last runs do not go one per task.
TAIL_SECONDS = 0.25

#: Runs read ahead only once this many came back: a sweep's adaptive time limit (timeouts.py) holds its initial
#: value until 5 runs have finished, and a spec gets its limit when it is made.
READ_AHEAD_AFTER = 20

T = TypeVar("T")


def runs_per_task(mean_run: float | None) -> int:
    """Runs per task for runs that last ``mean_run`` seconds on average (``None``: not known yet, one per task).

    >>> runs_per_task(0.02), runs_per_task(0.5), runs_per_task(None)
    (100, 1, 1)
    """
    if mean_run is None or mean_run >= SHORT_RUN:
        return 1
    return max(1, min(MAX_BATCH, round(TASK_SECONDS / max(mean_run, 1e-3))))


def tail_size(batch: int, left: int, workers: int, mean_run: float | None) -> int:
    """The size of the next task when ``left`` runs remain in all: ``batch``, or less near the end of the sweep.

    >>> tail_size(100, 1000, 2, 0.02), tail_size(100, 200, 2, 0.02), tail_size(100, 20, 2, 0.02)
    (100, 50, 12)
    """
    share = math.ceil(left / (TAIL_SHARE * max(1, workers)))
    floor = 1 if not mean_run else max(1, round(TAIL_SECONDS / mean_run))
    return max(1, min(batch, left, max(share, floor)))


class Lookahead(Generic[T]):
    """An iterator read ahead into a buffer, so that how many items are left is known once it is exhausted.

    >>> ahead = Lookahead(iter(range(5)))
    >>> ahead.fill(10), ahead.left(), ahead.take(2), ahead.left()
    (None, 5, [0, 1], 3)
    """

    def __init__(self, source: Iterator[T]) -> None:
        self._source = source
        self._buffer: collections.deque[T] = collections.deque()
        self.exhausted = False

    def fill(self, depth: int) -> None:
        """Read the source until ``depth`` items wait in the buffer or it ends."""
        while not self.exhausted and len(self._buffer) < depth:
            try:
                self._buffer.append(next(self._source))
            except StopIteration:
                self.exhausted = True

    def left(self) -> int | None:
        """How many items are left, once the source is exhausted; ``None`` before."""
        return len(self._buffer) if self.exhausted else None

    def take(self, count: int) -> list[T]:
        """Up to ``count`` items, from the buffer and then the source."""
        self.fill(count)
        return [self._buffer.popleft() for _ in range(min(count, len(self._buffer)))]

    def __bool__(self) -> bool:
        return bool(self._buffer) or not self.exhausted
