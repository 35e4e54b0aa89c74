"""Group commit of manifest lines: every run line is written and flushed the moment its run finishes, and a thread
of its own fsyncs the manifest every ``COMMIT_DELAY`` seconds while lines are waiting, one fsync covering all the
lines written since the last. A run is counted (``done`` runs: the sweep's counts, its progress bar) only after the
fsync that covers its line has returned, so what a counted run's line guarantees is what a per-line fsync
guarantees; the driver just pays one fsync per group instead of one per run.

Why a thread that looks periodically: an fsync costs the driver ~0.1-0.2 ms of CPU (it also commits the filesystem
journal for the files the workers wrote meanwhile), as much as everything else it does for a short run, and lines
arrive one per dispatcher wake-up, so grouping needs to wait a little. Waking the thread for each line would cost
about what the fsync saves. ``COMMIT_DELAY`` is short enough that nobody watching the progress bar notices it, and
long enough that a few runs a second already share an fsync; the more runs a second finish, the more lines one fsync
covers, which is when the driver's time matters.
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from .manifest import ManifestWriter

#: Seconds between the syncing thread's looks at the waiting lines (a run is counted at most this much plus one
#: fsync after its line is written).
COMMIT_DELAY = 0.5


class GroupCommit:
    """Writes run lines to ``writer`` at once and calls each line's ``done`` once an fsync covers it.

    With ``writer.fsync_every > 1`` (grouped fsync by count and time, chosen by the user) lines go through
    ``writer.append`` and ``done`` runs at once, as before: such a sweep counts runs once they are flushed.

    >>> with GroupCommit(ManifestWriter(path)) as commit:
    ...     commit.append({"run_id": 0, "status": "ok"}, lambda: print("on disk"))
    """

    def __init__(self, writer: ManifestWriter, delay: float = COMMIT_DELAY) -> None:
        if delay <= 0:
            raise ValueError(f"delay must be a positive number of seconds, got {delay!r}")
        self.writer = writer
        self.delay = delay
        self._direct = writer.fsync_every > 1
        self._waiting: collections.deque[Callable[[], None]] = collections.deque()
        self._closing = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if not self._direct:
            self._thread = threading.Thread(target=self._serve, name="gmat-sweep-manifest-sync", daemon=True)
            self._thread.start()

    def append(self, entry: Mapping[str, Any], done: Callable[[], None]) -> None:
        """Write ``entry``'s line and flush it (a killed driver keeps it); ``done`` runs after its fsync."""
        if self._error is not None:
            raise self._error
        if self._direct:
            self.writer.append(entry)
            done()
            return
        self.writer.write_line(entry)
        # Only after its line is written: whatever group takes ``done`` syncs after taking it. No lock and no
        # notify: the syncing thread looks every ``delay`` seconds (a wake-up per run would cost what the fsync
        # saves).
        self._waiting.append(done)

    def _serve(self) -> None:
        while not self._closing.wait(self.delay):
            if self._waiting and not self._sync():
                return
        self._sync()

    def _sync(self) -> bool:
        # The lines of the first ``count`` callbacks were written before this fsync starts; any appended meanwhile
        # wait for the next one. (deque's append and popleft are atomic: no lock between the two threads.)
        count = len(self._waiting)
        if not count:
            return True
        try:
            os.fsync(self.writer.fileno())
        except BaseException as exc:  # noqa: BLE001 - e.g. EIO: these runs are not counted; append says why
            self._error = OSError(f"the sweep's manifest could not be written to disk ({exc}); the runs whose "
                                  "lines it could not sync will be rerun on resume")
            return False
        try:
            for _ in range(count):
                self._waiting.popleft()()
        except BaseException as exc:  # noqa: BLE001 - raised to the sweep by the next append or by close
            self._error = exc
            return False
        return True

    def close(self) -> None:
        """Sync what is left and run its ``done`` callbacks; raises an fsync error the thread met."""
        if self._thread is not None:
            self._closing.set()
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error

    def __enter__(self) -> GroupCommit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
