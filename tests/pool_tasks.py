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
