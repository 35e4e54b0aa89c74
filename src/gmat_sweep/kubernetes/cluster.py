"""The DaskCluster spec the Dask Operator (and ``KubeCluster(custom_cluster_spec=...)``) takes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..dask_config import CLUSTER, QUIET
from ..dask_config import env as dask_env
from .checks import (DEFAULT_MOUNT, PART_OF, SCHEDULER_API_ROUTE, check_count, check_image, check_mount, check_name,
                     check_service_type)
from .pods import (harden_container, pod_env, pod_options, pod_volumes, resource_requests, scheduler_args,
                   scheduler_command, worker_args, worker_command)


def cluster_spec(name: str, image: str, n_workers: int, *, resources: Mapping[str, Any] | None = None,
                 claim: str | None = None, mount_path: str | None = DEFAULT_MOUNT,
                 env: Mapping[str, str] | Sequence[Mapping[str, Any]] | None = None,
                 node_selector: Mapping[str, str] | None = None,
                 tolerations: Sequence[Mapping[str, Any]] | None = None,
                 image_pull_secrets: Sequence[str] | None = None, service_account: str | None = None,
                 scheduler_service_type: str = "ClusterIP", allow_unpinned: bool = False) -> dict:
    """A ``DaskCluster`` for the Dask Kubernetes operator: one scheduler and ``n_workers`` worker Pods.

    >>> from dask_kubernetes.operator import KubeCluster
    >>> cluster = KubeCluster(custom_cluster_spec=cluster_spec("sma-scan", "acme/gmat-sweep:0.1.0", 8,
    ...                                                         claim="gmat-shared"))  # doctest: +SKIP

    Built on ``dask_kubernetes.operator.make_cluster_spec`` with the commands of current images
    (``dask scheduler`` / ``dask worker``), one single-threaded worker per Pod (CPU request 1, memory from
    ``resources``, default 2Gi), ``imagePullPolicy: IfNotPresent``, a restricted security context, and the
    claim mounted at ``mount_path`` in every Pod. Raises ValueError on anything Kubernetes would reject or
    that would make Pods disagree (an unpinned image).
    """
    from dask_kubernetes.operator import make_cluster_spec

    check_name(name, "cluster name")
    check_image(image, allow_unpinned)
    check_count(n_workers, "number of workers")
    check_service_type(scheduler_service_type)
    claim, mount_path = check_mount(claim, mount_path)
    env_list = pod_env(env, mount_path)
    res = resource_requests(resources)
    options = pod_options(node_selector, tolerations, image_pull_secrets, service_account)

    spec = make_cluster_spec(name=name, image=image, n_workers=n_workers, resources=res, env=env_list,
                             scheduler_service_type=scheduler_service_type)
    spec["metadata"]["labels"] = dict(PART_OF)
    for role, command, args in (("worker", worker_command(), worker_args()),
                                ("scheduler", scheduler_command(), scheduler_args())):
        pod_spec = spec["spec"][role]["spec"]
        [container] = pod_spec["containers"]
        container["command"] = command
        container["args"] = args
        harden_container(container, image=image, env=env_list, resources=res, mount_path=mount_path)
        pod_spec.update(options)
        if claim:
            pod_spec["volumes"] = pod_volumes(claim)
    # Dask settings for GMAT (see dask_config) and the operator's autoscaler, unless the caller's env sets them.
    for role, settings in (("worker", QUIET), ("scheduler", {**CLUSTER, **_scheduler_http()})):
        container = spec["spec"][role]["spec"]["containers"][0]
        given = {item["name"] for item in container["env"]}
        container["env"] = container["env"] + [{"name": name, "value": value}
                                               for name, value in dask_env(settings).items() if name not in given]
    return spec


def _scheduler_http() -> dict[str, Any]:
    """Dask's default scheduler HTTP routes plus its ``/api/v1`` (what the operator's autoscaler calls)."""
    import dask
    import distributed  # noqa: F401 - loads the distributed.* defaults into dask.config

    routes = list(dask.config.get("distributed.scheduler.http.routes"))
    if SCHEDULER_API_ROUTE not in routes:
        routes.append(SCHEDULER_API_ROUTE)
    return {"distributed.scheduler.http.routes": routes}
