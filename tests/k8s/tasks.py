"""Task functions for the emulated cluster's worker processes.

Kept in a tiny module (no pytest, no kopf) because workers import it by name to unpickle the tasks.
"""

from __future__ import annotations

import os
import time


def pid_after(x: int, delay: float = 0.0) -> tuple[int, int]:
    """Sleep ``delay`` seconds, then return (this worker process's pid, x * x)."""
    time.sleep(delay)
    return os.getpid(), x * x


def shared_dir() -> str | None:
    """What a worker sees as the shared volume (the claim's mount path)."""
    return os.environ.get("GMAT_SWEEP_SHARED")


def gmat_sweep_version() -> str:
    """The gmat-sweep a worker imports (the image's, here the venv's)."""
    import gmat_sweep

    return gmat_sweep.__version__
