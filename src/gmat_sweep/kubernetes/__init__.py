"""Kubernetes manifests for running sweeps on a cluster: pure functions that return plain dicts.

Nothing here talks to a cluster. The dicts are what ``kubectl apply -f -`` takes (through :func:`to_yaml`)
and what ``dask_kubernetes.operator.KubeCluster(custom_cluster_spec=...)`` takes (:func:`cluster_spec`).

>>> spec = cluster_spec("sma-scan", "ghcr.io/acme/gmat-sweep:0.1.0", 4, claim="gmat-shared")
>>> spec["kind"], spec["spec"]["worker"]["replicas"]
('DaskCluster', 4)

Every Pod here runs the same pinned image, mounts the same PersistentVolumeClaim at the same path (exported
as ``GMAT_SWEEP_SHARED``), runs as the image's non-root user (uid 1000) and runs one single-threaded Dask
worker, because GMAT has process-global state: one mission at a time per process.
"""


from .checks import (ACCESS_MODES, DASHBOARD_PORT, DASK_GROUP, DEFAULT_MEMORY, DEFAULT_MOUNT, DRIVER_SCRIPT_DIR,
                     HTTP_ROUTES_ENV, RUN_AS_USER, SCHEDULER_API_ROUTE, SCHEDULER_PORT, SCHEDULER_SERVICE_TYPES,
                     SHARED_ENV, WORKER_DASHBOARD_PORT, WORKER_TTL_ENV, check_count, check_label)
from .cluster import cluster_spec
from .manifests import driver_pod, driver_script, manual_manifests, pvc, render_all, to_yaml
from .pods import scheduler_address
from .rbac import (ADAPT_PERMISSIONS, DRIVER_RULES, OTHER_PERMISSIONS, PORT_FORWARD_PERMISSIONS, SCALE_PERMISSIONS,
                   START_PERMISSIONS, driver_rbac)

__all__ = [
    "DEFAULT_MEMORY",
    "RUN_AS_USER",
    "SCHEDULER_SERVICE_TYPES",
    "cluster_spec",
    "driver_pod",
    "driver_rbac",
    "driver_script",
    "manual_manifests",
    "pvc",
    "render_all",
    "scheduler_address",
    "to_yaml",
]
