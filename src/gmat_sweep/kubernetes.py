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

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from .dask_config import CLUSTER, QUIET, env_name
from .dask_config import env as dask_env

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

DEFAULT_MEMORY = "2Gi"
RUN_AS_USER = 1000  # the uid of the user that docker/Dockerfile creates
SCHEDULER_SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
ACCESS_MODES = ("ReadWriteMany", "ReadWriteOnce", "ReadOnlyMany", "ReadWriteOncePod")
DEFAULT_MOUNT = "/shared"
SHARED_ENV = "GMAT_SWEEP_SHARED"
# GMAT holds the GIL for a whole mission, so a busy worker cannot answer heartbeats: the scheduler must not drop it.
WORKER_TTL_ENV = env_name("distributed.scheduler.worker-ttl")
# The Dask operator's autoscaler asks the scheduler for its adaptive target, and retires workers before a scale-down,
# over the scheduler's HTTP API (/api/v1 on the dashboard port). Dask does not serve that API by default, and the
# operator's fallback, Dask RPC from the operator's own Dask version, may fail in "unexpected ways" (its words) when
# the versions differ. The API adds nothing to what the comm port already allows anyone who reaches the scheduler.
HTTP_ROUTES_ENV = env_name("distributed.scheduler.http.routes")
SCHEDULER_API_ROUTE = "distributed.http.scheduler.api"
SCHEDULER_PORT = 8786
DASK_GROUP = "kubernetes.dask.org"
DASHBOARD_PORT = 8787
WORKER_DASHBOARD_PORT = 8788
DRIVER_SCRIPT_DIR = "/opt/gmat-sweep/driver"

_VOLUME = "shared"
_PART_OF = {"app.kubernetes.io/part-of": "gmat-sweep"}
# "{name}-scheduler" must itself be a DNS-1035 label (it names a Service), so names start with a letter and
# leave room for the suffix, as dask-kubernetes' own check does.
_MAX_NAME = 63 - len("-scheduler")
_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


# --------------------------------------------------------------------------------------------- validation
def _check_name(value: str, what: str = "name") -> str:
    if not isinstance(value, str) or not _LABEL.match(value) or len(value) > _MAX_NAME:
        raise ValueError(
            f"invalid {what} {value!r}: use at most {_MAX_NAME} lower-case letters, digits or '-', starting "
            f"with a letter and ending with a letter or digit (a DNS-1123 label that can also name the "
            f"'<{what}>-scheduler' Service), e.g. 'sma-scan'")
    return value


def check_label(value: str, what: str) -> str:
    if not isinstance(value, str) or not _DNS1123_LABEL.match(value) or len(value) > 63:
        raise ValueError(
            f"invalid {what} {value!r}: use at most 63 lower-case letters, digits or '-', starting and ending "
            f"with a letter or digit (a DNS-1123 label), e.g. 'gmat-shared'")
    return value


def _check_subdomain(value: str, what: str) -> str:
    if not isinstance(value, str) or not _DNS1123_SUBDOMAIN.match(value) or len(value) > 253:
        raise ValueError(
            f"invalid {what} {value!r}: use lower-case letters, digits, '-' and '.', starting and ending "
            f"with a letter or digit (a DNS-1123 subdomain)")
    return value


def _check_image(image: str, allow_unpinned: bool) -> str:
    if not isinstance(image, str) or not image or any(c.isspace() for c in image):
        raise ValueError(f"invalid image {image!r}: give a reference like 'ghcr.io/acme/gmat-sweep:0.1.0'")
    name, _, digest = image.partition("@")
    if digest and not _DIGEST.match(digest):
        raise ValueError(f"invalid image digest in {image!r}: a digest looks like '@sha256:' + 64 hex digits")
    prefix, _, last = name.rpartition("/")  # a registry port ("host:5000/x") is not a tag
    repo_last, _, tag = last.partition(":")
    if not repo_last or (":" in last and not tag):
        raise ValueError(f"invalid image {image!r}: give a reference like 'ghcr.io/acme/gmat-sweep:0.1.0'")
    if not digest and tag in ("", "latest") and not allow_unpinned:
        repo = f"{prefix}/{repo_last}" if prefix else repo_last
        why = "has no tag" if not tag else "uses the moving tag ':latest'"
        raise ValueError(
            f"image {image!r} {why}: every Pod of a sweep must run the same GMAT engine and gmat-sweep, so pin "
            f"a version tag (e.g. '{repo}:0.1.0') or a digest ('{repo}@sha256:...'), or pass "
            f"allow_unpinned=True (--allow-unpinned) for throwaway experiments")
    return image


def _check_mount(claim: str | None, mount_path: str | None) -> tuple[str | None, str | None]:
    if claim is not None:
        _check_subdomain(claim, "claim name")
        if not mount_path:
            raise ValueError(f"claim {claim!r} given without a mount path: give an absolute mount path, "
                             f"e.g. {DEFAULT_MOUNT!r}")
    elif mount_path and mount_path != DEFAULT_MOUNT:
        raise ValueError(f"mount path {mount_path!r} given without a claim: name the PersistentVolumeClaim "
                         f"to mount there (claim=..., --claim)")
    if claim is None:
        return None, None
    if not mount_path.startswith("/") or ":" in mount_path:
        raise ValueError(f"invalid mount path {mount_path!r}: use an absolute path without ':', "
                         f"e.g. {DEFAULT_MOUNT!r}")
    return claim, mount_path.rstrip("/") or "/"


def _check_service_type(service_type: str) -> str:
    if service_type not in SCHEDULER_SERVICE_TYPES:
        raise ValueError(f"invalid scheduler service type {service_type!r}: use one of "
                         f"{', '.join(SCHEDULER_SERVICE_TYPES)}")
    return service_type


def _check_count(n: int, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"invalid {what} {n!r}: give a whole number >= 0")
    return n


def _check_quantity(value: Any, what: str) -> str:
    text = str(value)
    if not _QUANTITY.match(text):
        raise ValueError(f"invalid {what} {value!r}: use a Kubernetes quantity such as '2Gi', '512Mi' or '1'")
    return text


# ------------------------------------------------------------------------------------------- pod pieces
def _resources(resources: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
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
    requests.update({k: _check_quantity(v, f"resources request {k}") for k, v in resources.get("requests", {}).items()})
    # A memory limit equal to the request: a runaway GMAT process is killed alone instead of the node swapping.
    limits = {"memory": requests["memory"]}
    limits.update({k: _check_quantity(v, f"resources limit {k}") for k, v in resources.get("limits", {}).items()})
    return {"requests": requests, "limits": limits}


def _env(env: Mapping[str, str] | Sequence[Mapping[str, Any]] | None, mount_path: str | None) -> list[dict]:
    if env is None:
        items: list[dict] = []
    elif isinstance(env, Mapping):
        items = [{"name": str(k), "value": str(v)} for k, v in env.items()]
    else:
        items = [dict(item) for item in env]
    for item in items:
        if not _ENV_NAME.match(str(item.get("name", ""))):
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


def _pod_options(node_selector: Mapping[str, str] | None, tolerations: Sequence[Mapping[str, Any]] | None,
                 image_pull_secrets: Sequence[str] | None, service_account: str | None) -> dict:
    """Scheduling and identity settings shared by every Pod spec of one deployment."""
    options: dict[str, Any] = {"securityContext": _pod_security()}
    if node_selector:
        options["nodeSelector"] = {str(k): str(v) for k, v in node_selector.items()}
    if tolerations:
        options["tolerations"] = [dict(t) for t in tolerations]
    if image_pull_secrets:
        options["imagePullSecrets"] = [{"name": _check_subdomain(s, "image pull secret")}
                                       for s in image_pull_secrets]
    if service_account:
        options["serviceAccountName"] = _check_subdomain(service_account, "service account")
    else:
        # Workers and the scheduler never call the Kubernetes API: do not hand them a token.
        options["automountServiceAccountToken"] = False
    return options


_CONTAINER_ORDER = ("name", "image", "imagePullPolicy", "command", "args", "env", "ports", "resources",
                    "volumeMounts", "securityContext", "readinessProbe", "livenessProbe")


def _harden(container: dict, *, image: str, env: list[dict], resources: dict, mount_path: str | None) -> dict:
    """Set image, pull policy, env, resources, mount and security context in place (readable key order)."""
    container.update(image=image, imagePullPolicy="IfNotPresent", env=[dict(e) for e in env],
                     resources={k: dict(v) for k, v in resources.items()}, securityContext=_container_security())
    if mount_path is not None:
        container["volumeMounts"] = [{"name": _VOLUME, "mountPath": mount_path}]
    ordered = {k: container[k] for k in _CONTAINER_ORDER if k in container}
    ordered.update((k, v) for k, v in container.items() if k not in ordered)
    container.clear()
    container.update(ordered)
    return container


def _volumes(claim: str | None) -> list[dict]:
    return [{"name": _VOLUME, "persistentVolumeClaim": {"claimName": claim}}] if claim else []


def _worker_command() -> list[str]:
    # make_cluster_spec() still emits "dask-worker", which distributed no longer ships; one process, one
    # thread: GMAT runs one mission at a time per process.
    return ["dask", "worker"]


def _worker_args() -> list[str]:
    return ["$(DASK_SCHEDULER_ADDRESS)", "--name", "$(DASK_WORKER_NAME)", "--nthreads", "1", "--nworkers", "1",
            "--dashboard", "--dashboard-address", str(WORKER_DASHBOARD_PORT)]


def _scheduler_command() -> list[str]:
    return ["dask", "scheduler"]


def _scheduler_args() -> list[str]:
    return ["--host", "0.0.0.0", "--port", str(SCHEDULER_PORT), "--dashboard-address", f":{DASHBOARD_PORT}"]


def scheduler_address(name: str, namespace: str | None = None) -> str:
    """The in-cluster address of the scheduler Service of cluster ``name``.

    >>> scheduler_address("sma-scan", "sweeps")
    'tcp://sma-scan-scheduler.sweeps.svc.cluster.local:8786'
    """
    host = f"{name}-scheduler" if namespace is None else f"{name}-scheduler.{namespace}.svc.cluster.local"
    return f"tcp://{host}:{SCHEDULER_PORT}"


# ------------------------------------------------------------------------------------------ DaskCluster
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

    _check_name(name, "cluster name")
    _check_image(image, allow_unpinned)
    _check_count(n_workers, "number of workers")
    _check_service_type(scheduler_service_type)
    claim, mount_path = _check_mount(claim, mount_path)
    env_list = _env(env, mount_path)
    res = _resources(resources)
    options = _pod_options(node_selector, tolerations, image_pull_secrets, service_account)

    spec = make_cluster_spec(name=name, image=image, n_workers=n_workers, resources=res, env=env_list,
                             scheduler_service_type=scheduler_service_type)
    spec["metadata"]["labels"] = dict(_PART_OF)
    for role, command, args in (("worker", _worker_command(), _worker_args()),
                                ("scheduler", _scheduler_command(), _scheduler_args())):
        pod_spec = spec["spec"][role]["spec"]
        [container] = pod_spec["containers"]
        container["command"] = command
        container["args"] = args
        _harden(container, image=image, env=env_list, resources=res, mount_path=mount_path)
        pod_spec.update(options)
        if claim:
            pod_spec["volumes"] = _volumes(claim)
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


# --------------------------------------------------------------------------------- other manifests
def _meta(name: str, namespace: str | None, labels: Mapping[str, str] | None = None) -> dict:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = check_label(namespace, "namespace")
    meta["labels"] = {**_PART_OF, **(labels or {})}
    return meta


def pvc(claim: str, size: str = "10Gi", storage_class: str | None = None, access_mode: str = "ReadWriteMany",
        namespace: str | None = None) -> dict:
    """The PersistentVolumeClaim that the driver and every worker share (scripts in, results out).

    >>> pvc("gmat-shared", "50Gi", storage_class="nfs")["spec"]["resources"]
    {'requests': {'storage': '50Gi'}}

    ReadWriteMany because workers on different nodes write run outputs that the driver reads.
    """
    _check_subdomain(claim, "claim name")
    if access_mode not in ACCESS_MODES:
        raise ValueError(f"invalid access mode {access_mode!r}: use one of {', '.join(ACCESS_MODES)}")
    spec: dict[str, Any] = {"accessModes": [access_mode],
                            "resources": {"requests": {"storage": _check_quantity(size, "claim size")}}}
    if storage_class is not None:
        spec["storageClassName"] = _check_subdomain(storage_class, "storage class")
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": _meta(claim, namespace),
            "spec": spec}


_VERBS = ("get", "list", "create", "patch", "delete")  # the order a Role lists them in
_RESOURCES = ((DASK_GROUP, "daskclusters"), (DASK_GROUP, "daskworkergroups"), (DASK_GROUP, "daskautoscalers"),
              ("", "pods"), ("", "services"), ("", "pods/log"), ("", "pods/portforward"))


def _rules(permissions: Sequence[tuple[str, str, str]]) -> list[dict]:
    """RBAC rules granting exactly ``permissions`` ((verb, API group, resource) each), in a fixed order."""
    rules: list[dict] = []
    for group, resource in _RESOURCES:
        verbs = [v for v in _VERBS if (v, group, resource) in permissions]
        if not verbs:
            continue
        if rules and rules[-1]["apiGroups"] == [group] and rules[-1]["verbs"] == verbs:
            rules[-1]["resources"].append(resource)
        else:
            rules.append({"apiGroups": [group], "resources": [resource], "verbs": verbs})
    return rules


# What KubeCluster (dask_kubernetes/operator/kubecluster/kubecluster.py, networking.py, through kr8s) does:
# - daskclusters: exists()/refresh() GET by name; DaskCluster.get() LISTs with a metadata.name field selector;
#   create() on start, delete() on close.
# - daskworkergroups: get()/exists() (status watch, scale), scale() PATCHes spec.worker.replicas,
#   add_worker_group() creates, delete_worker_group() deletes.
# - daskautoscalers: scale() deletes one (KubernetesPool.scale then GETs it until it is gone: the operator's timer
#   holds a finalizer on it); adapt() PATCHes it or, if missing, creates it.
# The operator's own ServiceAccount (its Helm chart) does the rest of autoscaling: it patches daskworkergroups and
# creates/deletes the worker Deployments. `kubectl scale daskworkergroup` (the scale subresource) is not used here.
# - pods: Pod.get() by label selector (LIST) and ready() (GET); get_logs() and a failed start read pods/log.
# - services: Service.get() (LIST by name) and ready() (GET, then LIST pods by the service's selector).
# - pods/portforward: ClusterIP scheduler from outside the cluster. kr8s opens a websocket, an HTTP GET that
#   RBAC checks as "get"; Kubernetes 1.35 also checks "create" on websocket upgrades (feature gate
#   AuthorizePodWebsocketUpgradeCreatePermission, kubernetes/kubernetes#134577), as it always did for SPDY.
# Nothing cluster-wide: NodePort services need LIST on nodes, which a Role cannot grant; in-cluster drivers
# use ClusterIP. discover() lists daskclusters in all namespaces and is not covered either.
#: (verb, API group, resource) that starting, watching and deleting a DaskCluster always needs (KubeCluster's own
#: requests); checked before anything is created. The Role of ``gmat-sweep k8s render`` grants them all.
START_PERMISSIONS: tuple[tuple[str, str, str], ...] = (
    ("create", DASK_GROUP, "daskclusters"), ("get", DASK_GROUP, "daskclusters"),
    ("list", DASK_GROUP, "daskclusters"), ("delete", DASK_GROUP, "daskclusters"),
    ("get", "", "pods"), ("list", "", "pods"), ("get", "", "services"), ("list", "", "services"),
)
#: ... and, for a driver outside the cluster, reaching a ClusterIP scheduler through a port-forward.
PORT_FORWARD_PERMISSIONS: tuple[tuple[str, str, str], ...] = (
    ("get", "", "pods/portforward"), ("create", "", "pods/portforward"))
#: ... to resize it (KubeCluster.adapt patches the DaskAutoscaler or creates it; scale() deletes it and patches the
#: worker group, after reading both).
ADAPT_PERMISSIONS: tuple[tuple[str, str, str], ...] = (
    ("patch", DASK_GROUP, "daskautoscalers"), ("create", DASK_GROUP, "daskautoscalers"))
SCALE_PERMISSIONS: tuple[tuple[str, str, str], ...] = (
    ("get", DASK_GROUP, "daskautoscalers"), ("delete", DASK_GROUP, "daskautoscalers"),
    ("get", DASK_GROUP, "daskworkergroups"), ("patch", DASK_GROUP, "daskworkergroups"))
#: ... and the rest of what KubeCluster may ask (worker groups it adds or deletes, Pod logs after a failed start).
OTHER_PERMISSIONS: tuple[tuple[str, str, str], ...] = (
    ("list", DASK_GROUP, "daskworkergroups"), ("create", DASK_GROUP, "daskworkergroups"),
    ("delete", DASK_GROUP, "daskworkergroups"), ("get", "", "pods/log"))
#: The driver Role's rules: every permission above, one rule per resource (resources with the same verbs share one).
DRIVER_RULES: list[dict] = _rules(START_PERMISSIONS + PORT_FORWARD_PERMISSIONS + ADAPT_PERMISSIONS + SCALE_PERMISSIONS
                                  + OTHER_PERMISSIONS)


def driver_rbac(name: str, namespace: str | None = "default") -> list[dict]:
    """ServiceAccount + Role + RoleBinding that let a driver Pod run ``KubeCluster`` in its own namespace.

    >>> [obj["kind"] for obj in driver_rbac("sma-scan", "sweeps")]
    ['ServiceAccount', 'Role', 'RoleBinding']

    Namespaced only (no ClusterRole): exactly the verbs KubeCluster uses, see ``DRIVER_RULES``.
    The RoleBinding's subject must name the ServiceAccount's namespace, hence ``namespace`` is required.
    """
    check_label(name, "service account name")
    if namespace is None:
        raise ValueError("driver_rbac needs the namespace: the RoleBinding must name the ServiceAccount's "
                         "namespace")
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name, namespace)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _meta(name, namespace),
         "rules": [{k: list(v) for k, v in rule.items()} for rule in DRIVER_RULES]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": _meta(name, namespace),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]},
    ]


def driver_script(name: str, text: str, filename: str = "driver.py", namespace: str | None = None) -> dict:
    """A ConfigMap holding a driver script, for :func:`driver_pod` ``(script_configmap=name)``.

    >>> driver_script("sma-scan-driver", "print('hi')")["data"]
    {'driver.py': "print('hi')"}
    """
    _check_subdomain(name, "config map name")
    if not re.match(r"^[-._a-zA-Z0-9]+$", filename):
        raise ValueError(f"invalid script file name {filename!r}: use letters, digits, '-', '_' and '.'")
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(name, namespace),
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
    _check_image(image, allow_unpinned)
    claim, mount_path = _check_mount(claim, mount_path)
    argv = shlex.split(command) if isinstance(command, str) else [str(part) for part in command]
    if not argv:
        raise ValueError("empty driver command: give a script or a command like 'gmat-sweep run ...'")
    env_list = _env(env, mount_path)
    if scheduler is not None:
        _check_name(scheduler, "cluster name")
        if not any(item["name"] == "DASK_SCHEDULER_ADDRESS" for item in env_list):
            env_list.append({"name": "DASK_SCHEDULER_ADDRESS", "value": scheduler_address(scheduler, namespace)})
    container = _harden({"name": "driver", "command": argv}, image=image, env=env_list,
                        resources=_resources(resources), mount_path=mount_path)
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    spec.update(_pod_options(node_selector, tolerations, image_pull_secrets, service_account))
    volumes = _volumes(claim)
    if script_configmap is not None:
        _check_subdomain(script_configmap, "config map name")
        volumes.append({"name": "driver-script", "configMap": {"name": script_configmap}})
        container.setdefault("volumeMounts", []).append(
            {"name": "driver-script", "mountPath": DRIVER_SCRIPT_DIR, "readOnly": True})
    if volumes:
        spec["volumes"] = volumes
    labels = {"app.kubernetes.io/component": "driver"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": _meta(name, namespace, labels), "spec": spec}


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
                "metadata": _meta(f"{name}-{suffix}", namespace, labels),
                "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                         "template": {"metadata": {"labels": {**_PART_OF, **labels}}, "spec": pod_spec}}}

    service_spec = dict(spec["spec"]["scheduler"]["service"])
    return [
        deployment("scheduler", 1, scheduler_labels, scheduler_pod),
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta(f"{name}-scheduler", namespace, scheduler_labels),
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
            env=_env(env, None) + extra_env, resources=resources, node_selector=node_selector,
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
