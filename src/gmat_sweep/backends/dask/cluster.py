"""Reaching a Dask cluster: a scheduler's address, or a LocalCluster of worker processes started here."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
import weakref
from collections.abc import Iterator
from typing import Any

import distributed

from .admission import DaskPoolError
from .on_worker import WATCH_DIR

logger = logging.getLogger("gmat_sweep.dask")


def connect(address: str, timeout: float) -> Any:
    try:
        # Check what can be checked without a Client: one that never connected leaves noise behind when collected.
        from distributed.comm.addressing import parse_address, parse_host_port
        from distributed.comm.registry import get_backend

        scheme, location = parse_address(address)
        get_backend(scheme)
        if scheme == "tcp":
            socket.create_connection(parse_host_port(location, default_port=8786), timeout=timeout).close()
        return distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, distributed.TimeoutError, ValueError) as exc:
        raise DaskPoolError(
            f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({type(exc).__name__}: {exc}). "
            "Check the address (tcp://HOST:8786), that the scheduler runs (dask scheduler) and that this machine "
            "can reach its port; or leave --scheduler out to run a LocalCluster here.") from None


def scheduler_workers(client: Any) -> dict[str, Any]:
    """The scheduler's workers now, by address, asked of the scheduler itself.

    ``Client.scheduler_info()`` returns the client's cached copy, which the client's periodic refresh (totals only,
    no workers) can replace between the fetch and the return: the cluster then looks empty for a moment.

    >>> sorted(scheduler_workers(client))  # doctest: +SKIP
    ['tcp://127.0.0.1:40121', 'tcp://127.0.0.1:40123']
    """
    return client.sync(client.scheduler.identity).get("workers", {})


_GUARD = ('Dask starts the LocalCluster\'s worker processes by importing your main module again: put the code that '
          'runs the sweep under  if __name__ == "__main__":  (or use the default LocalPool, which needs no guard)')


def local_cluster(n_workers: int | None) -> tuple[Any, Any]:
    import dask
    import multiprocessing

    from ...dask_config import CLUSTER

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        # This is one of the cluster's worker processes, running an unguarded main module again: say why in one
        # line and stop, instead of a traceback from every worker process.
        raise SystemExit(f"gmat-sweep: {_GUARD}")
    n_workers = n_workers or os.cpu_count() or 1
    # The workers' temporary files (GMAT's runtime folder, the scripts runs execute) go into one folder, removed
    # with the cluster: a worker its nanny kills cannot clean up after itself.
    tmp = tempfile.mkdtemp(prefix="gmat-sweep-cluster-")
    try:
        # The nannies hand this config to the worker processes they start (see dask_config for each setting's why).
        with dask.config.set(CLUSTER), _quiet("distributed"):
            cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                               dashboard_address=":0",
                                               env={"TMPDIR": tmp, WATCH_DIR: tempfile.gettempdir()})
    except Exception as exc:  # noqa: BLE001 - said in one line below; Dask's own logs of it are silenced
        shutil.rmtree(tmp, ignore_errors=True)
        reason = f"{type(exc).__name__}: {exc}".strip()
        hint = f" {_GUARD}" if "failed to start" in reason.lower() and _main_is_reimported() else ""
        raise DaskPoolError(f"could not start a LocalCluster of {n_workers} worker processes ({reason}).{hint}") \
            from None
    cluster.gmat_sweep_tmp = weakref.finalize(cluster, shutil.rmtree, tmp, True)  # also at interpreter exit
    logger.info("started a LocalCluster of %d workers; dashboard: %s", len(cluster.workers), cluster.dashboard_link)
    return cluster, distributed.Client(cluster, set_as_default=False)


def _main_is_reimported() -> bool:
    """Whether spawned processes import the main module again (a script file or ``-m module``, not ``-c``)."""
    import sys

    main = sys.modules.get("__main__")
    return getattr(getattr(main, "__spec__", None), "name", None) is not None or \
        os.path.isfile(getattr(main, "__file__", None) or "")


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Silence a library's loggers for a moment: a cluster that fails to start logs a traceback per worker, and
    the error raised afterwards says what happened in one line."""
    loggers = [logging.getLogger(name)] + [logging.getLogger(other) for other in list(logging.root.manager.loggerDict)
                                            if other.startswith(name + ".")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)
