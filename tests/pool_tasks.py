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
    return tempfile.gettempdir(), _runtime._directory.name, worker._process_scratch()
