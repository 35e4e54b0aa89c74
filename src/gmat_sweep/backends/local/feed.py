"""Feeding LocalPool from its own dispatcher thread: what ``for_each`` and ``run_each`` share.

Both keep a window of items in flight and call ``consume`` on the dispatcher thread as each item finishes, which then
hands out the next ones (``refill``) in the same wake-up: a finished run costs the driver one thread wake-up, not
two. They differ only in how they hand items out (a future per task, or runs several to a message: batches.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

Consume = Callable[[Any, Any, "BaseException | None"], None]


class Feed:
    """Items handed out by ``refill(feed)`` (called with ``feed.lock`` held; it reads ``feed.source`` and counts
    ``feed.inflight``), each reported back through :meth:`finished` or :meth:`finished_future`.

    >>> Feed(items, consume, refill).run()  # blocks until every item is consumed, or raises what consume raised
    """

    def __init__(self, items: Iterable[Any], consume: Consume, refill: Callable[[Feed], None]) -> None:
        self.source = iter(items)
        # One consume at a time, and the source read by one thread at a time. Reentrant: an item that fails before
        # it is sent is settled inside the pool's submit, and its callback then runs inside refill.
        self.lock = threading.RLock()
        self.inflight = 0
        self.finished_count = 0
        self.exhausted = False
        self.stopped = False
        self.error: BaseException | None = None
        self._done = threading.Event()
        self._consume, self._refill = consume, refill

    def run(self) -> None:
        try:
            with self.lock:
                self._hand_out()
            while not self._done.wait(0.5):  # a short wait keeps Ctrl-C prompt on the caller's thread
                pass
        finally:
            with self.lock:  # a consume in progress on the dispatcher thread finishes first
                self.stopped = True
        if self.error is not None:
            raise self.error

    def finished(self, item: Any, value: Any, error: BaseException | None) -> None:
        """``item`` is done with ``value`` or ``error``: consume it, then hand out more."""
        self._finish(item, lambda: (value, error))

    def finished_future(self, item: Any, future: Any) -> None:
        """``item``'s future is done (a done-callback); a cancelled one stops the feed with its error."""
        def outcome() -> tuple[Any, BaseException | None]:
            error = future.exception()
            return (None if error else future.result()), error

        self._finish(item, outcome)

    def _finish(self, item: Any, outcome: Callable[[], tuple[Any, BaseException | None]]) -> None:
        with self.lock:
            self.inflight -= 1
            self.finished_count += 1
            if self.stopped:
                return
            try:
                value, error = outcome()
                self._consume(item, value, error)
                self._hand_out()
            except BaseException as exc:  # noqa: BLE001 - raised on the caller's thread by run
                self.error, self.stopped = exc, True
                self._done.set()

    def _hand_out(self) -> None:  # with ``lock`` held
        self._refill(self)
        if self.stopped or (self.exhausted and not self.inflight):
            self._done.set()
