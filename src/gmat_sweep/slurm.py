"""Dask on Slurm, shaped for GMAT: one single-threaded worker process per core, through dask-jobqueue.

GMAT runs one mission at a time per process and holds Python's GIL while it does, so the right worker is a
process with one thread, and a Slurm job of ``cores`` cores runs ``cores`` of them (``--nworkers cores
--nthreads 1``) under nannies (which enforce run timeouts and restart a crashed worker).

>>> from gmat_sweep.slurm import slurm_cluster
>>> cluster = slurm_cluster(cores=32, walltime="04:00:00", queue="compute", account="mission-design")
>>> cluster.scale(jobs=4)                        # 4 Slurm jobs = 128 GMAT workers
>>> with DaskPool(client=Client(cluster)) as pool:
...     Sweep("/shared/mission.script", grid=grid, out="/shared/sweeps/scan").run(pool)

:func:`slurm_options` is the pure part (keyword arguments for ``dask_jobqueue.SLURMCluster``);
:func:`job_script` renders the batch script without starting anything, to read or to submit by hand.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from .dask_config import CLUSTER, QUIET, env
from .distribution import install_hint

#: Node-local scratch for each worker (spill files, return-mode run folders); Slurm sets TMPDIR on most sites.
NODE_SCRATCH = "${TMPDIR:-/tmp}"

#: Keep numerical libraries from starting a thread pool per worker process: each worker owns one core.
ONE_THREAD = ("export OMP_NUM_THREADS=1", "export OPENBLAS_NUM_THREADS=1", "export MKL_NUM_THREADS=1")


def slurm_options(cores: int = 1, memory: str | None = None, memory_per_core: str = "2GiB",
                  walltime: str = "01:00:00", queue: str | None = None, account: str | None = None,
                  local_directory: str | None = NODE_SCRATCH, log_directory: str | None = None,
                  job_extra_directives: Sequence[str] = (), job_script_prologue: Sequence[str] = (),
                  gmat_root: str | None = None, python: str | None = None, interface: str | None = None,
                  death_timeout: float | None = 120, **extra: Any) -> dict[str, Any]:
    """Keyword arguments for ``dask_jobqueue.SLURMCluster``: each job runs ``cores`` one-thread GMAT workers.

    The job script also exports :data:`gmat_sweep.dask_config.QUIET` for the workers.
    ``memory`` is the whole job's (default ``cores x memory_per_core``). ``local_directory`` is node-local scratch
    (shell-expanded on the node). ``gmat_root`` points workers at a full GMAT install (for plugins the wheel lacks)
    instead of the embedded engine. ``python`` defaults to this interpreter: the nodes must see the same
    environment (a venv or conda env on the shared file system), or the sweep refuses workers whose versions
    differ. Other keywords pass through to ``SLURMCluster`` (e.g. ``scheduler_options``).

    >>> slurm_options(cores=8, queue="short")["processes"]
    8
    """
    if not isinstance(cores, int) or cores < 1:
        raise ValueError(f"cores must be a positive whole number, got {cores!r}")
    prologue = [*ONE_THREAD, *(f"export {name}={_quote(value)}" for name, value in env(QUIET).items())]
    if gmat_root:
        prologue.append(f"export GMAT_ROOT={_quote(gmat_root)}")
    prologue += list(job_script_prologue)
    options: dict[str, Any] = {
        "cores": cores,
        "processes": cores,  # one worker process per core, so each has exactly one thread
        "memory": memory or _times(memory_per_core, cores),
        "walltime": walltime,
        "queue": queue,
        "account": account,
        "local_directory": local_directory,
        "log_directory": log_directory,
        "job_extra_directives": list(job_extra_directives),
        "job_script_prologue": prologue,
        "python": python or sys.executable,
        "interface": interface,
        "death_timeout": death_timeout,
        "nanny": True,  # the nanny restarts workers that die (timeouts and crashes kill only the engine process)
        "name": "gmat-sweep",
        "job_name": "gmat-sweep",
    }
    options.update(extra)
    return {k: v for k, v in options.items() if v is not None}


def slurm_cluster(**kwargs: Any) -> Any:
    """A ``dask_jobqueue.SLURMCluster`` built from :func:`slurm_options` (``**kwargs`` go there).

    Creating it starts only the scheduler, in this process; jobs are submitted by ``cluster.scale(jobs=n)`` or
    ``cluster.adapt(...)``. The scheduler never drops a worker for missing heartbeats: a worker cannot send them
    while GMAT runs a long mission (see :mod:`gmat_sweep.dask_config`).
    """
    import dask

    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as exc:
        raise ImportError(f"slurm_cluster needs dask-jobqueue: {install_hint('slurm')}") from exc
    with dask.config.set(CLUSTER):  # the scheduler runs here; the workers get QUIET from the job script
        return SLURMCluster(**slurm_options(**kwargs))


def job_script(scheduler: str = "tcp://SCHEDULER:8786", **kwargs: Any) -> str:
    """The batch script one job runs, rendered without starting a scheduler (to read, or for ``sbatch`` by hand).

    >>> print(job_script("tcp://login01:8786", cores=16, queue="compute"))
    """
    from dask_jobqueue.slurm import SLURMJob

    options = slurm_options(**kwargs)
    for cluster_only in ("scheduler_options", "n_workers", "silence_logs", "asynchronous", "dashboard_address",
                         "host", "protocol", "security", "scheduler_cls", "shared_temp_directory", "loop"):
        options.pop(cluster_only, None)
    options["name"] = f"{options.pop('name')}-0"
    return SLURMJob(scheduler=scheduler, **options).job_script()


def _times(size: str, n: int) -> str:
    from dask.utils import format_bytes, parse_bytes

    return format_bytes(parse_bytes(size) * n).replace(" ", "")


def _quote(value: str) -> str:
    import shlex

    return shlex.quote(os.fspath(value))


__all__ = ["job_script", "slurm_cluster", "slurm_options"]
