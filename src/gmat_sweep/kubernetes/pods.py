"""The pieces every Pod of a sweep shares: resources, environment, security, volumes, the Dask commands."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .checks import (DASHBOARD_PORT, DEFAULT_MEMORY, ENV_NAME, PART_OF, RUN_AS_USER, SCHEDULER_PORT, SHARED_ENV, VOLUME,
                     WORKER_DASHBOARD_PORT, check_label, check_quantity, check_subdomain)


def resource_requests(resources: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """Requests and limits for one single-threaded GMAT process; ``resources`` overrides (k8s form)."""
    resources = dict(resources or {})
    unknown = set(resources) - {"requests", "limits"}
    if unknown:
        raise ValueError(f"invalid resources keys {sorted(unknown)}: use {{'requests': {{...}}, 'limits': {{...}}}}, "
                         f"e.g. {{'requests': {{'memory': '4Gi'}}}}")
    requests = {"cpu": "1", "memory": DEFAULT_MEMORY}
    for key in ("requests", "limits"):
        if not isinstance(resources.get(key, {}), Mapping):
            raise ValueError(f"invalid resources[{key!r}]: give a mapping like {{'memory': '4Gi'}}")
    requests.update({k: check_quantity(v, f"resources request {k}") for k, v in resources.get("requests", {}).items()})
    # A memory limit equal to the request: a runaway GMAT process is killed alone instead of the node swapping.
    limits = {"memory": requests["memory"]}
    limits.update({k: check_quantity(v, f"resources limit {k}") for k, v in resources.get("limits", {}).items()})
    return {"requests": requests, "limits": limits}


def pod_env(env: Mapping[str, str] | Sequence[Mapping[str, Any]] | None, mount_path: str | None) -> list[dict]:
    if env is None:
        items: list[dict] = []
    elif isinstance(env, Mapping):
        items = [{"name": str(k), "value": str(v)} for k, v in env.items()]
    else:
        items = [dict(item) for item in env]
    for item in items:
        if not ENV_NAME.match(str(item.get("name", ""))):
            raise ValueError(f"invalid environment variable name {item.get('name')!r}")
    if mount_path is not None:
        own = [item for item in items if item["name"] == SHARED_ENV]
        if own and own[0].get("value") != mount_path:
            raise ValueError(f"env sets {SHARED_ENV}={own[0].get('value')!r} but the claim is mounted at "
                             f"{mount_path!r}: drop it from env, gmat-sweep sets it")
        if not own:
            items.append({"name": SHARED_ENV, "value": mount_path})
    return items


def _container_security() -> dict:
    return {"runAsNonRoot": True, "runAsUser": RUN_AS_USER, "runAsGroup": RUN_AS_USER,
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}}


def _pod_security() -> dict:
    # fsGroup makes a fresh volume writable by the non-root user on storage that honours it.
    return {"runAsNonRoot": True, "runAsUser": RUN_AS_USER, "runAsGroup": RUN_AS_USER, "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"}}


def pod_options(node_selector: Mapping[str, str] | None, tolerations: Sequence[Mapping[str, Any]] | None,
                 image_pull_secrets: Sequence[str] | None, service_account: str | None) -> dict:
    """Scheduling and identity settings shared by every Pod spec of one deployment."""
    options: dict[str, Any] = {"securityContext": _pod_security()}
    if node_selector:
        options["nodeSelector"] = {str(k): str(v) for k, v in node_selector.items()}
    if tolerations:
        options["tolerations"] = [dict(t) for t in tolerations]
    if image_pull_secrets:
        options["imagePullSecrets"] = [{"name": check_subdomain(s, "image pull secret")}
                                       for s in image_pull_secrets]
    if service_account:
        options["serviceAccountName"] = check_subdomain(service_account, "service account")
    else:
        # Workers and the scheduler never call the Kubernetes API: do not hand them a token.
        options["automountServiceAccountToken"] = False
    return options


_CONTAINER_ORDER = ("name", "image", "imagePullPolicy", "command", "args", "env", "ports", "resources",
                    "volumeMounts", "securityContext", "readinessProbe", "livenessProbe")


def harden_container(container: dict, *, image: str, env: list[dict], resources: dict, mount_path: str | None) -> dict:
    """Set image, pull policy, env, resources, mount and security context in place (readable key order)."""
    container.update(image=image, imagePullPolicy="IfNotPresent", env=[dict(e) for e in env],
                     resources={k: dict(v) for k, v in resources.items()}, securityContext=_container_security())
    if mount_path is not None:
        container["volumeMounts"] = [{"name": VOLUME, "mountPath": mount_path}]
    ordered = {k: container[k] for k in _CONTAINER_ORDER if k in container}
    ordered.update((k, v) for k, v in container.items() if k not in ordered)
    container.clear()
    container.update(ordered)
    return container


def pod_volumes(claim: str | None) -> list[dict]:
    return [{"name": VOLUME, "persistentVolumeClaim": {"claimName": claim}}] if claim else []


def worker_command() -> list[str]:
    # make_cluster_spec() still emits "dask-worker", which distributed no longer ships; one process, one
    # thread: GMAT runs one mission at a time per process.
    return ["dask", "worker"]


def worker_args() -> list[str]:
    return ["$(DASK_SCHEDULER_ADDRESS)", "--name", "$(DASK_WORKER_NAME)", "--nthreads", "1", "--nworkers", "1",
            "--dashboard", "--dashboard-address", str(WORKER_DASHBOARD_PORT)]


def scheduler_command() -> list[str]:
    return ["dask", "scheduler"]


def scheduler_args() -> list[str]:
    return ["--host", "0.0.0.0", "--port", str(SCHEDULER_PORT), "--dashboard-address", f":{DASHBOARD_PORT}"]


def scheduler_address(name: str, namespace: str | None = None) -> str:
    """The in-cluster address of the scheduler Service of cluster ``name``.

    >>> scheduler_address("sma-scan", "sweeps")
    'tcp://sma-scan-scheduler.sweeps.svc.cluster.local:8786'
    """
    host = f"{name}-scheduler" if namespace is None else f"{name}-scheduler.{namespace}.svc.cluster.local"
    return f"tcp://{host}:{SCHEDULER_PORT}"


def object_meta(name: str, namespace: str | None, labels: Mapping[str, str] | None = None) -> dict:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = check_label(namespace, "namespace")
    meta["labels"] = {**PART_OF, **(labels or {})}
    return meta
