"""Where runs execute: the Pool interface, LocalPool (processes on this machine), DaskPool (any Dask cluster)."""

from .base import Pool, PoolBroken, RunTimedOut, WorkerLost
from .local import LocalPool

__all__ = ["DaskPool", "KubernetesPool", "LocalPool", "Pool", "PoolBroken", "RunTimedOut", "WorkerLost"]


def __getattr__(name: str):  # these need the [dask] / [kubernetes] extras: import them only when asked for
    if name == "DaskPool":
        from .dask import DaskPool

        return DaskPool
    if name == "KubernetesPool":
        from .kubernetes import KubernetesPool

        return KubernetesPool
    raise AttributeError(name)
