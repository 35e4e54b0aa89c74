"""Where runs execute: the Pool interface, LocalPool (processes on this machine), DaskPool (any Dask cluster),
KubernetesPool (a Dask cluster it starts on Kubernetes); and the registry of backends by name.

The registry is the one list the CLI's ``--backend`` choices, its backend options and a sweep's default pool are
read from: a new backend is a module with its Pool and its :class:`~gmat_sweep.backends.options.BackendOptions`,
plus one line in ``BACKENDS`` (or one :func:`register` call, from outside this package).

>>> default_backend().name
'local'
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from .base import Pool, PoolBroken, RunTimedOut, WorkerLost
from .local import LocalPool


@dataclasses.dataclass(frozen=True)
class Backend:
    """One place runs can execute: its ``--backend`` name, its Pool class, and what the command line gives it.

    >>> Backend("inline", "mypackage.inline:InlinePool", "mypackage.inline:OPTIONS")  # doctest: +SKIP
    """

    name: str
    #: ``module:Class``, imported only when chosen: the Dask and Kubernetes pools need extras.
    pool: str
    #: ``module:attribute`` of its BackendOptions (the options only it reads, and the pool's keyword arguments
    #: the parsed options make); only the gmat-sweep command imports it, and it must import without the extra.
    options: str
    #: The backend a sweep uses when given none.
    default: bool = False

    def load(self) -> type[Pool]:
        """The Pool class (ImportError when its extra is not installed)."""
        return _resolve(self.pool)

    def command_line(self) -> Any:
        """Its :class:`~gmat_sweep.backends.options.BackendOptions`."""
        return _resolve(self.options)


def _resolve(reference: str) -> Any:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


BACKENDS: list[Backend] = [
    Backend("local", "gmat_sweep.backends.local:LocalPool", "gmat_sweep.backends.options:LOCAL", default=True),
    Backend("dask", "gmat_sweep.backends.dask:DaskPool", "gmat_sweep.backends.options:DASK"),
    Backend("kubernetes", "gmat_sweep.backends.kubernetes:KubernetesPool", "gmat_sweep.backends.options:KUBERNETES"),
]


def register(backend: Backend) -> None:
    """Add a backend from outside this package; call it before the gmat-sweep command is imported (its options
    are read then).

    >>> register(Backend("inline", "mypackage.inline:InlinePool", "mypackage.inline:OPTIONS"))  # doctest: +SKIP
    """
    if any(known.name == backend.name for known in BACKENDS):
        raise ValueError(f"a backend named {backend.name!r} is already registered; choose another name")
    if backend.default:
        raise ValueError(f"backend {backend.name!r}: the default backend is {default_backend().name!r}; register "
                         "yours without default=True and choose it with --backend or backend=")
    BACKENDS.append(backend)


def default_backend() -> Backend:
    """The registry's default backend."""
    return next(backend for backend in BACKENDS if backend.default)


def default_pool() -> Pool:
    """A pool of the default backend with its default settings (LocalPool: one worker per core)."""
    return default_backend().load()()


__all__ = ["BACKENDS", "Backend", "DaskPool", "KubernetesPool", "LocalPool", "Pool", "PoolBroken", "RunTimedOut",
           "WorkerLost", "default_backend", "default_pool", "register"]


def __getattr__(name: str) -> type[Pool]:  # these need the [dask] / [kubernetes] extras: import them when asked for
    for backend in BACKENDS:
        if backend.pool.endswith(":" + name):
            return backend.load()
    raise AttributeError(name)
