"""The Dask settings every cluster gmat-sweep starts gets, as config keys and as environment variables.

The DaskPool's LocalCluster, :func:`gmat_sweep.slurm.slurm_cluster` and the Kubernetes DaskCluster specs all use
these; a cluster you start yourself keeps Dask's defaults unless you set them (``docs/dask.md`` shows how).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The scheduler. GMAT holds the GIL for a whole mission, so a busy worker cannot answer heartbeats: never drop a
#: worker for that (run timeouts are the nanny watchdog's job).
SCHEDULER: dict[str, Any] = {"distributed.scheduler.worker-ttl": None}

#: Every Dask process (worker, nanny, scheduler). Dask's defaults wake each of them many times a second: a
#: statistical profiler sampling the worker's threads every 10 ms (it cannot see inside GMAT's C++, and it needs
#: the GIL the mission holds), a 20 ms event-loop tick, a 0.5 s system monitor and a 0.1 s memory monitor. An idle
#: 2-worker LocalCluster spends about 12 % of a core on them, taken from the missions on a small machine; with
#: these it spends about 1.5 %. What is given up: the dashboard's profile page and finer system plots, and the
#: nanny notices a worker over its memory limit within a second instead of a tenth of one.
QUIET: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}

#: Everything, for a cluster whose scheduler runs in this process (LocalCluster, SLURMCluster).
CLUSTER: dict[str, Any] = {**SCHEDULER, **QUIET}


def env_name(key: str) -> str:
    """The environment variable Dask reads ``key`` from: ``distributed.worker.profile.enabled`` ->
    ``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED``."""
    return "DASK_" + key.upper().replace(".", "__").replace("-", "_")


def env(settings: Mapping[str, Any]) -> dict[str, str]:
    """``settings`` as environment variables (Dask parses the values back: ``False``, ``None``, ``1s``)."""
    return {env_name(key): str(value) for key, value in settings.items()}


__all__ = ["CLUSTER", "QUIET", "SCHEDULER", "env", "env_name"]
