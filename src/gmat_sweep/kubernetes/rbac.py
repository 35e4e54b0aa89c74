"""What the driver may do in its namespace: the permissions each step of a sweep needs (checked before a cluster
is created) and the Role built from them, so the two cannot drift apart."""

from __future__ import annotations

from collections.abc import Sequence

from .checks import DASK_GROUP, check_label
from .pods import object_meta


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
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": object_meta(name, namespace)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": object_meta(name, namespace),
         "rules": [{k: list(v) for k, v in rule.items()} for rule in DRIVER_RULES]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": object_meta(name, namespace),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]},
    ]
