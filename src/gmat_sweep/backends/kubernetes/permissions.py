"""What the driver's Kubernetes identity may do: the RBAC rules each step needs, checked before anything is
created, and the Kubernetes API's refusals turned into one message that says what to grant."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

from ...kubernetes import DASK_GROUP, PORT_FORWARD_PERMISSIONS, START_PERMISSIONS
from ..dask import DaskPoolError

logger = logging.getLogger("gmat_sweep.kubernetes")

# The rules each step needs live with the Role that grants them (gmat_sweep.kubernetes).
OPERATOR_INSTALL = ("helm install --repo https://helm.dask.org --create-namespace -n dask-operator "
                    "--generate-name dask-kubernetes-operator")
_FORBIDDEN = re.compile(r'cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)" in API group "(?P<group>[^"]*)"'
                        r'(?: in the namespace "(?P<namespace>[^"]+)")?')


class KubernetesPoolError(DaskPoolError):
    """The Kubernetes cluster cannot run the sweep's Dask cluster as asked: no Dask operator, missing permissions,
    an image the nodes cannot pull, a start that takes too long. The message says what to do; nothing that the
    pool created is left running."""


# Raised across the package; users catch it as gmat_sweep.backends.kubernetes.KubernetesPoolError.
KubernetesPoolError.__module__ = "gmat_sweep.backends.kubernetes"


async def check_access(api: Any, namespace: str, name: str, port_forward: bool) -> None:
    """Before creating anything: the operator's CRDs are served, the name is free, and RBAC allows the rest."""
    async with api.call_api("GET", version=f"{DASK_GROUP}/v1", url="daskclusters", namespace=namespace,
                            params={"fieldSelector": f"metadata.name={name}"}, raise_for_status=False) as resp:
        code, text = resp.status_code, resp.text
    if code == 404:
        raise _no_operator()
    if code == 403:
        raise KubernetesPoolError(_forbidden_message(api_status(text), "list", DASK_GROUP, "daskclusters", namespace))
    if code >= 400:
        raise KubernetesPoolError(f"the Kubernetes API answered {code} to listing DaskClusters in namespace "
                                  f"{namespace!r}: {api_status(text).get('message') or text[:300]}")
    if json.loads(text).get("items"):
        raise KubernetesPoolError(
            f"a DaskCluster named {name!r} already exists in namespace {namespace!r}: give another name (or none, "
            f"for a fresh one), or delete it first with: kubectl delete daskcluster {name} -n {namespace}")
    wanted = START_PERMISSIONS + (PORT_FORWARD_PERMISSIONS if port_forward else ())
    answers = await asyncio.gather(*(can_i(api, namespace, *permission) for permission in wanted))
    missing = [permission for permission, allowed in zip(wanted, answers) if allowed is False]
    if missing:
        raise KubernetesPoolError(_rbac_message(missing, namespace))


async def can_i(api: Any, namespace: str, verb: str, group: str, resource: str) -> bool | None:
    """A SelfSubjectAccessReview: may this identity do it? None when the server would not say."""
    plural, _, sub = resource.partition("/")
    attributes = {"namespace": namespace, "verb": verb, "group": group, "resource": plural}
    if sub:
        attributes["subresource"] = sub
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": attributes}}
    try:
        async with api.call_api("POST", version="authorization.k8s.io/v1", url="selfsubjectaccessreviews",
                                content=json.dumps(review), raise_for_status=False) as resp:
            if resp.status_code >= 300:
                return None
            return bool((resp.json().get("status") or {}).get("allowed"))
    except Exception:  # noqa: BLE001 - the check is an early warning; the real request still reports
        logger.debug("SelfSubjectAccessReview for %s %s failed", verb, resource, exc_info=True)
        return None


def api_status(text: str) -> dict[str, Any]:
    try:
        status = json.loads(text)
    except ValueError:
        return {}
    return status if isinstance(status, dict) else {}


def qualified(resource: str, group: str) -> str:
    plural, _, sub = resource.partition("/")
    name = f"{plural}.{group}" if group else plural
    return f"{name}/{sub}" if sub else name


def can_i_command(verb: str, group: str, resource: str, namespace: str | None) -> str:
    plural, _, sub = resource.partition("/")
    what = qualified(plural, group) + (f" --subresource={sub}" if sub else "")
    return f"kubectl auth can-i {verb} {what}" + (f" -n {namespace}" if namespace else "")


def grant_advice(namespace: str | None) -> str:
    where = f" -n {namespace}" if namespace else ""
    return ("Grant it the Role that 'gmat-sweep k8s render --image IMAGE --driver-command ...' prints (a namespaced "
            "Role named NAME-driver with exactly the verbs a sweep uses, gmat_sweep.kubernetes.DRIVER_RULES): apply "
            "it and bind it to your user or the driver Pod's ServiceAccount (kubectl create rolebinding "
            f"gmat-sweep --role=NAME-driver --user=YOU{where}), or ask a cluster admin")


def _rbac_message(missing: list[tuple[str, str, str]], namespace: str) -> str:
    listed = ", ".join(f"{verb} {qualified(resource, group)}" for verb, group, resource in missing)
    return (f"your Kubernetes identity may not {listed} in namespace {namespace!r}: a sweep needs that to start, "
            f"watch and delete its Dask cluster, so nothing was created. {grant_advice(namespace)}. Check with: "
            f"{can_i_command(*missing[0], namespace)}")


def _forbidden_message(status: dict[str, Any], verb: str, group: str, resource: str, namespace: str | None) -> str:
    """What a 403 from the API server means and what to do, from the server's own Status message."""
    message = str(status.get("message") or "")
    if m := _FORBIDDEN.search(message):
        verb, resource, group = m["verb"], m["resource"], m["group"]
        namespace = m["namespace"] or namespace
    where = f" in namespace {namespace!r}" if namespace else " at the cluster scope"
    return (f"the Kubernetes API refused to let you {verb} {qualified(resource, group)}{where} (403 Forbidden"
            f"{': ' + message if message else ''}). {grant_advice(namespace)}. Check with: "
            f"{can_i_command(verb, group, resource, namespace)}")


def _request_facts(response: Any) -> tuple[str, str, str, str | None]:
    """(verb, group, resource, namespace) of the request behind an error response, from its method and URL."""
    request = response.request
    parts = [p for p in request.url.path.split("/") if p]
    group = ""
    if parts[:1] == ["apis"] and len(parts) >= 3:
        group, parts = parts[1], parts[3:]
    elif parts[:1] == ["api"]:
        parts = parts[2:]
    namespace = None
    if parts[:1] == ["namespaces"] and len(parts) >= 3:
        namespace, parts = parts[1], parts[2:]
    plural = parts[0] if parts else "?"
    name = parts[1] if len(parts) > 1 else None
    sub = parts[2] if len(parts) > 2 else None
    method = request.method.upper()
    if method == "GET":
        verb = "watch" if "watch=" in str(request.url.query) else ("get" if name else "list")
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())
    return verb, group, f"{plural}/{sub}" if sub else plural, namespace


def _no_operator() -> KubernetesPoolError:
    return KubernetesPoolError(
        f"this Kubernetes cluster has no Dask operator: it does not serve the DaskCluster resource ({DASK_GROUP}/v1), "
        f"so the operator's custom resource definitions are not installed. Install the operator once per cluster "
        f"(needs cluster-admin): {OPERATOR_INSTALL} (see docs/kubernetes.md). Without it, run plain Deployments: "
        "gmat-sweep k8s render --no-operator ... | kubectl apply -f -, then --backend dask --scheduler ...")


def explain(exc: BaseException, namespace: str | None, name: str) -> KubernetesPoolError | None:
    """A clear KubernetesPoolError for what the Kubernetes client raised, or None to let it through."""
    import httpx

    if isinstance(exc, KubernetesPoolError):
        return exc
    try:
        import kr8s
    except ImportError:  # pragma: no cover - installed with dask-kubernetes
        kr8s = None
    response = getattr(exc, "response", None)
    if kr8s is not None and isinstance(exc, kr8s.ServerError) and response is not None:
        verb, group, resource, ns = _request_facts(response)
        status = exc.status if isinstance(exc.status, dict) else api_status(response.text)
        if response.status_code == 403:
            return KubernetesPoolError(_forbidden_message(status, verb, group, resource, ns or namespace))
        if response.status_code == 404 and group == DASK_GROUP and verb in ("create", "list"):
            return _no_operator()
        return KubernetesPoolError(
            f"the Kubernetes API answered {response.status_code} to '{verb} {qualified(resource, group)}' for the "
            f"DaskCluster {name} in namespace {ns or namespace}: {status.get('message') or exc}")
    if isinstance(exc, httpx.TransportError):
        url = getattr(getattr(exc, "request", None), "url", None) if _has_request(exc) else None
        where = f" at {url.scheme}://{url.netloc.decode()}" if url is not None else ""
        return KubernetesPoolError(
            f"cannot reach the Kubernetes API server{where} ({type(exc).__name__}: {exc}). Check that kubectl "
            "works with the same configuration (kubectl cluster-info; KUBECONFIG picks the file, "
            "kubectl config use-context the cluster)")
    if isinstance(exc, ValueError) and "valid credentials" in str(exc):
        return KubernetesPoolError(
            "no Kubernetes configuration found: point KUBECONFIG at a kubeconfig file (or create ~/.kube/config, "
            "e.g. with your cloud's 'get-credentials' command), or run the driver in a Pod with a ServiceAccount")
    if isinstance(exc, TimeoutError) and "Dask Operator running" in str(exc):
        return KubernetesPoolError(
            f"the DaskCluster {name} was created in namespace {namespace} but no Dask operator acted on it: the "
            "CRDs are installed but the operator is not running. Check it with kubectl get pods -n dask-operator "
            f"(install or repair it with: {OPERATOR_INSTALL}); the DaskCluster was deleted")
    if type(exc).__name__ == "SchedulerStartupError":
        details = "\n".join(str(a) for a in getattr(exc, "args", ()) if a)
        return KubernetesPoolError(f"the scheduler Pod of DaskCluster {name} keeps crashing; the DaskCluster was "
                                   f"deleted. {details}")
    return None


def _has_request(exc: BaseException) -> bool:
    try:
        getattr(exc, "request")
    except RuntimeError:  # httpx raises when the error has no request attached
        return False
    return True


@contextlib.contextmanager
def explained(namespace: str | None, name: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        explained = explain(exc, namespace, name)
        if explained is None or explained is exc:
            raise
        raise explained from exc
