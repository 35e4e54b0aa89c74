"""Functions LocalPool tests send to spawned workers (they must be importable by module name)."""

from __future__ import annotations

import os
import signal
import time


def pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def crash(kind: str) -> None:
    if kind == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif kind == "exit":
        os._exit(3)
    raise ValueError("a plain error")


def _refuse(message: str) -> None:
    raise RuntimeError(message)


class Unreadable:
    """Pickles fine in the worker, but unpickling it raises: a result the driver cannot read back."""

    def __reduce__(self):
        return (_refuse, ("this result cannot be unpickled",))


def unreadable() -> Unreadable:
    return Unreadable()


def temp_folders() -> tuple[str, str, str]:
    """Where this worker's temporary files go, GMAT's runtime folder and gmat-sweep's scratch folder (both made
    now)."""
    import tempfile

    from gmatpy import _runtime

    from gmat_sweep import worker
    from gmat_sweep.engine import get_engine

    get_engine("embedded")
    return tempfile.gettempdir(), _runtime._directory.name, worker.process_scratch()


def hold(started: str, release: str, limit: float = 120.0) -> int:
    """Write this process's pid to ``started`` (whole, at once), then run until the file ``release`` exists (or
    ``limit`` seconds pass): a task whose start a test can see and whose length the test decides."""
    with open(started + ".tmp", "w") as handle:
        handle.write(str(os.getpid()))
    os.replace(started + ".tmp", started)
    deadline = time.monotonic() + limit
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.005)
    return os.getpid()


def wait_started(started, timeout: float = 60.0) -> int:
    """The pid written by :func:`hold` to ``started`` once it exists (for the test process, not a worker)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(started):
        if time.monotonic() > deadline:
            raise AssertionError(f"the task never started ({started} not written)")
        time.sleep(0.005)
    with open(started) as handle:
        return int(handle.read())


def hold_or_sleep(arg) -> int:
    """:func:`hold` for a ``(started, release)`` pair, else :func:`pid_after` (for ``imap``'s one argument)."""
    return hold(*arg) if isinstance(arg, tuple) else pid_after(arg)
