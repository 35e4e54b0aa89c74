"""Where runs execute: the Pool interface, LocalPool (processes on this machine), DaskPool (any Dask cluster)."""

from .base import Pool, PoolBroken, WorkerLost
from .local import LocalPool

__all__ = ["DaskPool", "LocalPool", "Pool", "PoolBroken", "WorkerLost"]


def __getattr__(name: str):  # DaskPool needs the [dask] extra; import it only when asked for
    if name == "DaskPool":
        from .dask import DaskPool

        return DaskPool
    raise AttributeError(name)
