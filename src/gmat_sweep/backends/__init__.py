"""Where runs execute: the Pool interface, LocalPool (processes on this machine), DaskPool (any Dask cluster),
KubernetesPool (a Dask cluster it starts on Kubernetes); and the registry of backends by name.

The registry is the one list the CLI's ``--backend`` choices and a sweep's default pool are read from: a new
backend is a module with its Pool plus one line in ``BACKENDS`` (and, if it takes options of its own, their
builder in ``gmat_sweep.cli.options``).

>>> default_backend().name
'local'
"""

from __future__ import annotations

import dataclasses
import importlib

from .base import Pool, PoolBroken, RunTimedOut, WorkerLost
from .local import LocalPool


@dataclasses.dataclass(frozen=True)
class Backend:
    """One place runs can execute: its ``--backend`` name, its Pool class, the CLI options only it reads."""

    name: str
    #: ``module:Class``, imported only when chosen: the Dask and Kubernetes pools need extras.
    pool: str
    #: Parameter names of CLI options no other backend accepts (``--image`` -> ``image``).
    only_options: tuple[str, ...] = ()
    #: The backend a sweep uses when given none.
    default: bool = False

    def load(self) -> type[Pool]:
        """The Pool class (ImportError when its extra is not installed)."""
        module, _, name = self.pool.partition(":")
        return getattr(importlib.import_module(module), name)


BACKENDS: tuple[Backend, ...] = (
    Backend("local", "gmat_sweep.backends.local:LocalPool", default=True),
    Backend("dask", "gmat_sweep.backends.dask:DaskPool"),
    Backend("kubernetes", "gmat_sweep.backends.kubernetes:KubernetesPool",
            only_options=("image", "claim", "mount", "namespace", "allow_unpinned")),
)


def default_backend() -> Backend:
    """The registry's default backend."""
    return next(backend for backend in BACKENDS if backend.default)


def default_pool() -> Pool:
    """A pool of the default backend with its default settings (LocalPool: one worker per core)."""
    return default_backend().load()()


__all__ = ["BACKENDS", "Backend", "DaskPool", "KubernetesPool", "LocalPool", "Pool", "PoolBroken", "RunTimedOut",
           "WorkerLost", "default_backend", "default_pool"]


def __getattr__(name: str) -> type[Pool]:  # these need the [dask] / [kubernetes] extras: import them when asked for
    for backend in BACKENDS:
        if backend.pool.endswith(":" + name):
            return backend.load()
    raise AttributeError(name)
