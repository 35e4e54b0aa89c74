"""The other objects a sweep on Kubernetes needs: the shared claim, the driver's script and Pod, plain Deployments
for clusters without the operator, all of it at once (``render_all``), and YAML for kubectl."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from .checks import (ACCESS_MODES, DEFAULT_MOUNT, DRIVER_SCRIPT_DIR, PART_OF, check_image, check_label, check_mount,
                     check_name, check_quantity, check_subdomain)
from .cluster import cluster_spec
from .pods import harden_container, object_meta, pod_env, pod_options, pod_volumes, resource_requests, scheduler_address
from .rbac import driver_rbac


def pvc(claim: str, size: str = "10Gi", storage_class: str | None = None, access_mode: str = "ReadWriteMany",
        namespace: str | None = None) -> dict:
    """The PersistentVolumeClaim that the driver and every worker share (scripts in, results out).

    >>> pvc("gmat-shared", "50Gi", storage_class="nfs")["spec"]["resources"]
    {'requests': {'storage': '50Gi'}}

    ReadWriteMany because workers on different nodes write run outputs that the driver reads.
    """
    check_subdomain(claim, "claim name")
    if access_mode not in ACCESS_MODES:
        raise ValueError(f"invalid access mode {access_mode!r}: use one of {', '.join(ACCESS_MODES)}")
    spec: dict[str, Any] = {"accessModes": [access_mode],
                            "resources": {"requests": {"storage": check_quantity(size, "claim size")}}}
    if storage_class is not None:
        spec["storageClassName"] = check_subdomain(storage_class, "storage class")
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": object_meta(claim, namespace),
            "spec": spec}


def driver_script(name: str, text: str, filename: str = "driver.py", namespace: str | None = None) -> dict:
    """A ConfigMap holding a driver script, for :func:`driver_pod` ``(script_configmap=name)``.

    >>> driver_script("sma-scan-driver", "print('hi')")["data"]
    {'driver.py': "print('hi')"}
    """
    check_subdomain(name, "config map name")
    if not re.match(r"^[-._a-zA-Z0-9]+$", filename):
        raise ValueError(f"invalid script file name {filename!r}: use letters, digits, '-', '_' and '.'")
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": object_meta(name, namespace),
            "data": {filename: text}}


def driver_pod(name: str, image: str, *, claim: str | None, mount_path: str | None = DEFAULT_MOUNT,
               command: Sequence[str] | str, service_account: str | None = None, namespace: str | None = None,
               scheduler: str | None = None, script_configmap: str | None = None,
               env: Mapping[str, str] | Sequence[Mapping[str, Any]] | None = None,
               resources: Mapping[str, Any] | None = None, node_selector: Mapping[str, str] | None = None,
               tolerations: Sequence[Mapping[str, Any]] | None = None,
               image_pull_secrets: Sequence[str] | None = None, allow_unpinned: bool = False) -> dict:
    """The Pod that runs a sweep's driver: a script or ``gmat-sweep run ...`` next to the workers.

    >>> pod = driver_pod("sma-scan-driver", "acme/gmat-sweep:0.1.0", claim="gmat-shared",
    ...                  command="gmat-sweep run /shared/mission.script", scheduler="sma-scan")
    >>> pod["spec"]["containers"][0]["command"]
    ['gmat-sweep', 'run', '/shared/mission.script']

    Same image, claim and mount path as the workers, so the driver sees what they write. With
    ``scheduler`` (a cluster name) it exports ``DASK_SCHEDULER_ADDRESS``, so ``distributed.Client()``
    connects without arguments. It never restarts by itself: a killed sweep is resumed, not rerun.
    """
    check_label(name, "driver pod name")
    check_image(image, allow_unpinned)
    claim, mount_path = check_mount(claim, mount_path)
    argv = shlex.split(command) if isinstance(command, str) else [str(part) for part in command]
    if not argv:
        raise ValueError("empty driver command: give a script or a command like 'gmat-sweep run ...'")
    env_list = pod_env(env, mount_path)
    if scheduler is not None:
        check_name(scheduler, "cluster name")
        if not any(item["name"] == "DASK_SCHEDULER_ADDRESS" for item in env_list):
            env_list.append({"name": "DASK_SCHEDULER_ADDRESS", "value": scheduler_address(scheduler, namespace)})
    container = harden_container({"name": "driver", "command": argv}, image=image, env=env_list,
                        resources=resource_requests(resources), mount_path=mount_path)
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    spec.update(pod_options(node_selector, tolerations, image_pull_secrets, service_account))
    volumes = pod_volumes(claim)
    if script_configmap is not None:
        check_subdomain(script_configmap, "config map name")
        volumes.append({"name": "driver-script", "configMap": {"name": script_configmap}})
        container.setdefault("volumeMounts", []).append(
            {"name": "driver-script", "mountPath": DRIVER_SCRIPT_DIR, "readOnly": True})
    if volumes:
        spec["volumes"] = volumes
    labels = {"app.kubernetes.io/component": "driver"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": object_meta(name, namespace, labels), "spec": spec}


def manual_manifests(name: str, image: str, n_workers: int, *, namespace: str | None = None,
                     resources: Mapping[str, Any] | None = None, claim: str | None = None,
                     mount_path: str | None = DEFAULT_MOUNT,
                     env: Mapping[str, str] | Sequence[Mapping[str, Any]] | None = None,
                     node_selector: Mapping[str, str] | None = None,
                     tolerations: Sequence[Mapping[str, Any]] | None = None,
                     image_pull_secrets: Sequence[str] | None = None, service_account: str | None = None,
                     scheduler_service_type: str = "ClusterIP", allow_unpinned: bool = False) -> list[dict]:
    """A Dask cluster without the operator: scheduler Deployment + Service and a worker Deployment.

    >>> [o["kind"] for o in manual_manifests("sma-scan", "acme/gmat-sweep:0.1.0", 4)]
    ['Deployment', 'Service', 'Deployment']

    For clusters where installing CRDs/operators is not allowed. Scale with
    ``kubectl scale deployment/<name>-worker --replicas=N``. Same Pods as :func:`cluster_spec`.
    """
    spec = cluster_spec(name, image, n_workers, resources=resources, claim=claim, mount_path=mount_path, env=env,
                        node_selector=node_selector, tolerations=tolerations,
                        image_pull_secrets=image_pull_secrets, service_account=service_account,
                        scheduler_service_type=scheduler_service_type, allow_unpinned=allow_unpinned)
    scheduler_labels = {"dask.org/cluster-name": name, "dask.org/component": "scheduler"}
    worker_labels = {"dask.org/cluster-name": name, "dask.org/component": "worker"}
    scheduler_pod = spec["spec"]["scheduler"]["spec"]
    worker_pod = spec["spec"]["worker"]["spec"]
    # The operator injects these two into worker containers; without it the Deployment carries them.
    worker_pod["containers"][0]["env"] += [
        {"name": "DASK_SCHEDULER_ADDRESS", "value": scheduler_address(name)},
        {"name": "DASK_WORKER_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]

    def deployment(suffix: str, replicas: int, labels: dict, pod_spec: dict) -> dict:
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": object_meta(f"{name}-{suffix}", namespace, labels),
                "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                         "template": {"metadata": {"labels": {**PART_OF, **labels}}, "spec": pod_spec}}}

    service_spec = dict(spec["spec"]["scheduler"]["service"])
    return [
        deployment("scheduler", 1, scheduler_labels, scheduler_pod),
        {"apiVersion": "v1", "kind": "Service",
         "metadata": object_meta(f"{name}-scheduler", namespace, scheduler_labels),
         "spec": service_spec},
        deployment("worker", n_workers, worker_labels, worker_pod),
    ]


def render_all(name: str, image: str, n_workers: int, *, namespace: str = "default", claim: str | None = None,
               mount_path: str | None = DEFAULT_MOUNT, size: str = "10Gi", storage_class: str | None = None,
               access_mode: str = "ReadWriteMany", create_claim: bool = True,
               driver_command: Sequence[str] | str | None = None, driver_script_text: str | None = None,
               driver_script_name: str = "driver.py", operator: bool = True,
               resources: Mapping[str, Any] | None = None,
               env: Mapping[str, str] | Sequence[Mapping[str, Any]] | None = None,
               node_selector: Mapping[str, str] | None = None,
               tolerations: Sequence[Mapping[str, Any]] | None = None,
               image_pull_secrets: Sequence[str] | None = None, scheduler_service_type: str = "ClusterIP",
               allow_unpinned: bool = False) -> list[dict]:
    """Everything for one sweep on a cluster, in apply order: claim, RBAC, cluster, driver.

    >>> objs = render_all("sma-scan", "acme/gmat-sweep:0.1.0", 4, claim="gmat-shared",
    ...                   driver_command="gmat-sweep run /shared/mission.script")
    >>> [o["kind"] for o in objs]
    ['PersistentVolumeClaim', 'ServiceAccount', 'Role', 'RoleBinding', 'DaskCluster', 'Pod']

    With ``operator=False`` the cluster is :func:`manual_manifests` and the driver gets no API access.
    ``driver_script_text`` ships a script in a ConfigMap and runs it with ``python``.
    """
    if driver_command is not None and driver_script_text is not None:
        raise ValueError("give either a driver command or a driver script, not both")
    check_label(namespace, "namespace")
    common = dict(resources=resources, claim=claim, mount_path=mount_path, env=env, node_selector=node_selector,
                  tolerations=tolerations, image_pull_secrets=image_pull_secrets,
                  scheduler_service_type=scheduler_service_type, allow_unpinned=allow_unpinned)
    objs: list[dict] = []
    if claim is not None and create_claim:
        objs.append(pvc(claim, size, storage_class, access_mode, namespace=namespace))
    has_driver = driver_command is not None or driver_script_text is not None
    driver_name = f"{name}-driver"
    if has_driver and operator:
        objs += driver_rbac(driver_name, namespace)
    if driver_script_text is not None:
        objs.append(driver_script(driver_name, driver_script_text, driver_script_name, namespace))
    if operator:
        cluster = cluster_spec(name, image, n_workers, **common)
        cluster["metadata"]["namespace"] = namespace
        objs.append(cluster)
    else:
        objs += manual_manifests(name, image, n_workers, namespace=namespace, **common)
    if has_driver:
        command = (driver_command if driver_command is not None
                   else ["python", f"{DRIVER_SCRIPT_DIR}/{driver_script_name}"])
        extra_env = [{"name": "GMAT_SWEEP_CLUSTER", "value": name}]
        objs.append(driver_pod(
            driver_name, image, claim=claim, mount_path=mount_path, command=command,
            service_account=driver_name if operator else None, namespace=namespace, scheduler=name,
            script_configmap=driver_name if driver_script_text is not None else None,
            env=pod_env(env, None) + extra_env, resources=resources, node_selector=node_selector,
            tolerations=tolerations, image_pull_secrets=image_pull_secrets, allow_unpinned=allow_unpinned))
    return objs


def to_yaml(objs: dict | Sequence[dict]) -> str:
    """Multi-document YAML for ``kubectl apply -f -``.

    >>> print(to_yaml([{"kind": "A"}, {"kind": "B"}]), end="")
    kind: A
    ---
    kind: B
    """
    import yaml

    if isinstance(objs, Mapping):
        objs = [objs]
    return yaml.safe_dump_all(list(objs), sort_keys=False, default_flow_style=False)
