"""An emulated Kubernetes cluster that runs the real Dask operator and the real ``KubeCluster``.

Pieces, each with what it stands in for:

- ``DaskKubernetesEmulator``: kmock's in-memory API server plus what kopf, kr8s and dask-kubernetes rely on:
  the Dask CRDs, label/field selectors on list and watch, ``uid``/``creationTimestamp``/``resourceVersion``
  on create, ``null`` fields dropped on create, ``/version/``, and ``pods/<name>/log`` from the node's logs.
  For error paths: started without the Dask CRDs (``dask_crds=False``, a cluster without the operator), and
  RBAC for the kubeconfig's user (the driver): ``deny(("create", "daskclusters"))`` answers such requests with
  the API server's own 403 Status, and SelfSubjectAccessReviews from the same rules.
- ``OperatorThread``: the real dask-kubernetes controller under ``kopf.operator`` in a thread, logged in with
  an ``@kopf.on.login`` handler that points it at the emulator. Its lookups of the scheduler Service (the
  autoscaler's HTTP queries of ``/api/v1/adaptive_target`` and ``/api/v1/retire_workers``, its Dask RPC) are
  answered by the node's Service routing instead of cluster DNS (the one operator internal replaced).
- ``EmulatedNode``: the controllers Kubernetes itself would run, polled every 0.25 s: Deployments -> Pods,
  garbage collection by ownerReferences, LoadBalancer ingress 127.0.0.1, and a kubelet that runs each
  container's command as a local process group (under ``podinit.py``), marks Pods Running/Ready by their
  readiness probes, and kills the group when the Pod is deleted; and a kube-proxy (``route``): a Service's named
  port -> the port a Ready Pod behind it really listens on. Images in ``unpullable_images`` are never
  pulled: their Pods stay Pending in ImagePullBackOff, as with a wrong tag or a missing pull secret.
- ``EmulatedKubernetes``: starts and stops all of it; test helpers (list objects, delete a Pod and wait for
  its processes to die).

Everything listens on and talks to 127.0.0.1. All Pods share it, so the scheduler's comm port is fixed at
8786 (as in the Pods' spec): one emulated DaskCluster at a time, and nothing else may hold 8786.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import copy
import datetime
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web
import attrs
import jsonpatch
import kmock
import yaml

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DRIVER_TOKEN = "emulated-driver-token"
OPERATOR_TOKEN = "emulated-operator-token"  # not one of the API server's users: may do anything
REQUEST_HISTORY = 50
DRIVER_USER = "system:serviceaccount:default:gmat-sweep-driver"
SCHEDULER_PORTS = (8786, 8787)
POLL = 0.25
PODINIT = Path(__file__).with_name("podinit.py")
K8S_VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.0+kmock", "gitCommit": "0" * 40,
               "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24",
               "compiler": "gc", "platform": "linux/amd64"}


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------------------ selectors
def _split_requirements(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in selector:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


_SET_REQUIREMENT = re.compile(r"^(\S+)\s+(in|notin)\s+\((.*)\)$")


def label_selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Kubernetes label selector semantics: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``, ``a in (x,y)``..."""
    for req in _split_requirements(selector):
        if m := _SET_REQUIREMENT.match(req):
            values = {v.strip() for v in m.group(3).split(",") if v.strip()}
            ok = (labels.get(m.group(1)) in values) == (m.group(2) == "in")
        elif "!=" in req:
            key, value = (s.strip() for s in req.split("!=", 1))
            ok = labels.get(key) != value
        elif "=" in req:
            key, value = (s.strip() for s in req.replace("==", "=").split("=", 1))
            ok = labels.get(key) == value
        elif req.startswith("!"):
            ok = req[1:].strip() not in labels
        else:
            ok = req in labels
        if not ok:
            return False
    return True


def _path(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def field_selector_matches(selector: str, obj: dict) -> bool:
    """Field selectors (``metadata.name=x``, ``status.phase!=Running``) on any dotted path."""
    for req in _split_requirements(selector):
        negate = "!=" in req
        key, value = (s.strip() for s in req.replace("!=", "=").replace("==", "=").split("=", 1))
        actual = _path(obj, key)
        if ((str(actual) if actual is not None else "") == value) == negate:
            return False
    return True


def selected(obj: dict, params: Any) -> bool:
    meta = obj.get("metadata") or {}
    labels = params.get("labelSelector")
    fields = params.get("fieldSelector")
    return ((not labels or label_selector_matches(labels, meta.get("labels") or {}))
            and (not fields or field_selector_matches(fields, obj)))


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for v in value.values():
            _drop_nulls(v)
    elif isinstance(value, list):
        for v in value:
            _drop_nulls(v)
    return value


# ----------------------------------------------------------------------------------------- API server
def dask_crd_resources() -> dict[str, kmock.ResourceInfo]:
    """Discovery info for the Dask CRDs, read from the CRD files dask-kubernetes ships."""
    import dask_kubernetes

    folder = Path(dask_kubernetes.__file__).parent / "operator" / "customresources"
    verbs = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
    found = {}
    for path in sorted(folder.glob("dask*.yaml")):
        if path.name.endswith(".patch.yaml"):
            continue
        crd = yaml.safe_load(path.read_text())
        names = crd["spec"]["names"]
        for version in crd["spec"]["versions"]:
            key = f"{crd['spec']['group']}/{version['name']}/{names['plural']}"
            found[key] = kmock.ResourceInfo(
                kind=names["kind"], singular=names["singular"], namespaced=crd["spec"]["scope"] == "Namespaced",
                verbs=verbs, shortnames=names.get("shortNames", []), subresources=version.get("subresources", {}))
    return found


def request_verb(method: str, name: str | None, params: Any) -> str:
    """The RBAC verb of a request, as the API server's authorizer sees it."""
    method = method.upper()
    if method == "GET":
        watch = str(params.get("watch", "")).lower() in ("true", "1")
        return "watch" if watch else ("get" if name else "list")
    if method == "DELETE":
        return "delete" if name else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def forbidden_status(user: str, verb: str, group: str, resource: str, namespace: str | None,
                     name: str | None) -> dict:
    """The Status body a Kubernetes API server with RBAC answers a denied request with (code 403)."""
    plural = resource.split("/", 1)[0]
    what = f"{plural}.{group}" if group else plural
    subject = f'{what} "{name}"' if name else what
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    details: dict[str, str] = {"group": group, "kind": plural} if group else {"kind": plural}
    if name:
        details["name"] = name
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API group '
                       f'"{group}" {scope}',
            "reason": "Forbidden", "details": details, "code": 403}


@attrs.define(kw_only=True)
class DaskKubernetesEmulator(kmock.KubernetesEmulator):
    """kmock's KubernetesEmulator with what kopf, kr8s and the Dask operator need from a real API server.

    RBAC, as far as tests need it: a request that carries the bearer token of one of ``users`` is that user's,
    and is refused with a real 403 Status when its (verb, resource) is in ``denied`` (``"pods/log"`` names a
    subresource) or, while ``granted`` is set, when it is not one of those (group, resource, verb); everyone else
    (the operator, the node) may do anything. SelfSubjectAccessReviews answer from the same rules. ``dask_crds=False`` serves no ``kubernetes.dask.org`` resources: a cluster without the
    Dask operator's CRDs.
    """

    logs_dir: Path | None = None
    dask_crds: bool = True
    users: dict[str, str] = attrs.field(factory=dict)  # bearer token -> user name
    denied: frozenset[tuple[str, str]] = attrs.field(default=frozenset())  # (verb, resource) refused to users
    # When set, users may do only these (API group, resource, verb): the rules of a Role bound to them.
    granted: frozenset[tuple[str, str, str]] | None = None
    unserved: list[str] = attrs.field(factory=list, init=False)  # requests for endpoints it does not emulate
    _resource_version: int = attrs.field(default=0, init=False)
    _in_flight: set[int] = attrs.field(factory=set, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.resources.load_bundled()
        if self.dask_crds:
            for key, info in dask_crd_resources().items():
                self.resources[key] = info
        # kr8s asks for /version/, /api/ and /apis/ with a trailing slash.
        self.fallback["get /version/"] << self._serve_server_version
        self.fallback["get /api/"] << self._serve_api
        self.fallback["get /apis/"] << self._serve_apis

    def _next_version(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    async def _serve_server_version(self, request: kmock.Request) -> dict:
        return dict(K8S_VERSION)

    def _user(self, request: kmock.Request) -> str | None:
        auth = request.headers.get("Authorization") or request.headers.get("authorization") or ""
        return self.users.get(auth.removeprefix("Bearer ").strip()) if auth.startswith("Bearer ") else None

    def _allowed(self, user: str | None, verb: str, resource: str, group: str = "") -> bool:
        if user is None:
            return True
        return (verb, resource) not in self.denied and (self.granted is None or (group, resource, verb) in self.granted)

    def _access_review(self, request: kmock.Request, user: str | None) -> aiohttp.web.Response:
        review = request.data if isinstance(request.data, dict) else {}
        asked = (review.get("spec") or {}).get("resourceAttributes") or {}
        resource = asked.get("resource", "") + (f"/{asked['subresource']}" if asked.get("subresource") else "")
        allowed = self._allowed(user, asked.get("verb", ""), resource, asked.get("group", ""))
        status = {"allowed": allowed} if allowed else {"allowed": False, "denied": False, "reason": ""}
        return aiohttp.web.json_response({**review, "status": status}, status=201)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        # kmock keeps every request for assertions and matches each new one against that whole history, so a
        # long-lived emulator slows down with every request (a cluster start went from 3 s to 18 s in five).
        # Nothing here asserts on past requests: forget them, except those still being matched (in _handle).
        self._in_flight.add(id(request))
        try:
            if len(self._requests) > REQUEST_HISTORY:
                self._requests[:] = [r for r in self._requests if id(r) in self._in_flight]
            return await self._handle_request(request)
        finally:
            self._in_flight.discard(id(request))

    async def _handle_request(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if request.resource is not None:
            user = self._user(request)
            if request.resource.plural == "selfsubjectaccessreviews" and request.method.value.upper() == "POST":
                return self._access_review(request, user)
            resource = (request.resource.plural or "") + (f"/{request.subresource}" if request.subresource else "")
            verb = request_verb(request.method.value, request.name, request.params)
            if request.resource.plural and not self._allowed(user, verb, resource, request.resource.group or ""):
                return aiohttp.web.json_response(
                    forbidden_status(user, verb, request.resource.group, resource, request.namespace,
                                     request.name), status=403)
            if request.subresource == "log" and request.resource.plural == "pods":
                return aiohttp.web.Response(text=self._pod_log(request.namespace, request.name))
            if request.action == kmock.action.CREATE and isinstance(request.data, dict):
                self._admit(request)
            elif request.action == kmock.action.UPDATE and isinstance(request.data, dict):
                meta = request.data.setdefault("metadata", {})
                if isinstance(meta, dict):
                    meta["resourceVersion"] = self._next_version()
        try:
            return await super()._handle(request)
        except kmock.KubernetesEndpointNotFoundError:
            self.unserved.append(f"{request.method.value} {request.url.path_qs}")
            raise
        except jsonpatch.JsonPatchException as exc:
            # A JSON patch whose "test" fails (kopf's optimistic-concurrency check on resourceVersion): the API
            # server answers 422 and the client retries with fresh data, not a 500.
            return aiohttp.web.json_response(
                {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                 "message": f"the server rejected our request due to an error in our request: {exc}",
                 "reason": "Invalid", "code": 422}, status=422)

    def _admit(self, request: kmock.Request) -> None:
        """What the API server adds on create; it also drops nulls (the operator crashes on ``env: null``)."""
        obj = _drop_nulls(request.data)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        if request.namespace and not meta.get("namespace"):
            meta["namespace"] = request.namespace
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), resourceVersion=self._next_version())
        meta.setdefault("generation", 1)
        plural = request.resource.plural
        if plural == "pods":
            obj.setdefault("status", {"phase": "Pending"})
        elif plural == "services":
            obj.setdefault("status", {"loadBalancer": {}})

    async def _serve_list(self, request: kmock.Request) -> dict:
        result = await super()._serve_list(request)
        result["items"] = [obj for obj in result["items"] if selected(obj, request.params)]
        result["metadata"] = {"resourceVersion": str(self._resource_version)}
        return result

    async def _serve_watch(self, request: kmock.Request):  # type: ignore[override]
        async for event in super()._serve_watch(request):
            if isinstance(event, dict) and isinstance(event.get("object"), dict):
                if not selected(event["object"], request.params):
                    continue
            yield event

    def _pod_log(self, namespace: str | None, name: str | None) -> str:
        path = self.logs_dir / f"{namespace}_{name}.log" if self.logs_dir else None
        return path.read_text(errors="replace") if path and path.exists() else ""


# ------------------------------------------------------------------------------------------- operator
_OPERATOR_CLIENTS: set[str] = set()  # kr8s' keys ("thread.loop") of the operator's clients: kept by reset_kr8s
_login = {"url": None, "registered": False}


def _install_login(url: str) -> None:
    import kopf

    _login["url"] = url
    if not _login["registered"]:
        @kopf.on.login(id="emulated-kubernetes")
        def _emulator_login(**_: Any) -> kopf.ConnectionInfo:
            return kopf.ConnectionInfo(server=_login["url"], insecure=True, default_namespace="default")

        @kopf.on.startup(id="emulated-kubernetes-backoff")
        def _emulator_backoff(settings: kopf.OperatorSettings, **_: Any) -> None:
            # kr8s gives up a lookup after 2 s, and this API server shares a loaded 2-core machine (and the test
            # process's GIL) with every emulated Pod, so a lookup of the operator's 5-second autoscaler timer can
            # time out here where a real API server answers in milliseconds. kopf's default wait before a failed
            # handler's next try, 60 s, then outlasts a test's backlog: retry after 5 s.
            settings.execution.default_backoff = 5.0

        _login["registered"] = True


def _service_address(route: Callable[[str, str, str], Any]) -> Callable[..., Any]:
    """The operator's ``get_scheduler_address``, answered by the emulated Service routing (``route``).

    In a cluster the operator reaches ``<service>.<namespace>:<port>`` through cluster DNS and the Service's
    endpoints; here nothing resolves those names, and the operator's fallback, a port-forward, would block its event
    loop. This is the one operator internal the emulation replaces: the same answer a real cluster gives
    (``tcp://host:port`` of the Pod behind the Service's named port), from the emulated Service and its Pods.
    """
    async def get_scheduler_address(service_name: str, namespace: str, port_name: str = "tcp-comm",
                                    **_: Any) -> str:
        host, port = await route(namespace, service_name, port_name)
        return f"tcp://{host}:{port}"

    return get_scheduler_address


class OperatorThread:
    """The real dask-kubernetes operator (kopf), standalone and cluster-wide, in a daemon thread.

    ``route(namespace, service, port_name) -> (host, port)`` answers its lookups of the scheduler Service.
    """

    def __init__(self, url: str, route: Callable[[str, str, str], Any], kubeconfig: Path | None = None) -> None:
        self.url = url
        self.route = route
        self.kubeconfig = kubeconfig
        self._client: Any = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="dask-operator", daemon=True)
        self._original_address: Callable | None = None

    def start(self, timeout: float = 30) -> None:
        import dask_kubernetes.operator.controller.controller as controller

        _install_login(self.url)
        self._original_address = controller.get_scheduler_address
        controller.get_scheduler_address = _service_address(self.route)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self.error is not None or not self._thread.is_alive():
                raise RuntimeError(f"the Dask operator did not start: {self.error!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Dask operator was not ready after {timeout} s")

    def _main(self) -> None:
        import kopf

        import dask_kubernetes.operator.controller  # noqa: F401  (registers the handlers with kopf)

        async def main() -> None:
            import kr8s

            # The operator's own identity (its ServiceAccount in a cluster), not the driver's of KUBECONFIG: kr8s
            # hands the first client of a thread's loop to every later kr8s.asyncio.api() call there.
            if self.kubeconfig is not None:
                self._client = await kr8s.asyncio.api(kubeconfig=str(self.kubeconfig))  # kr8s keeps weak refs
                _OPERATOR_CLIENTS.add(f"{threading.get_ident()}.{id(asyncio.get_running_loop())}")
            await kopf.operator(standalone=True, clusterwide=True, stop_flag=self._stop, ready_flag=self._ready)

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - reported by start()/stop()
            self.error = exc

    def stop(self, timeout: float = 15) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._original_address is not None:
            import dask_kubernetes.operator.controller.controller as controller

            controller.get_scheduler_address = self._original_address
        if self._thread.is_alive():
            log.warning("the Dask operator thread did not stop within %s s", timeout)


# ------------------------------------------------------------------------------------------------ node
_ALL_INITS: set[subprocess.Popen] = set()


def _kill_group_now(proc: subprocess.Popen) -> None:
    """SIGKILL every process of a Pod's group, the init last so it can reap the rest first."""
    try:
        members = [p for p in _group_pids(proc.pid) if p != proc.pid]
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(1.0)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(2.0)
    finally:
        _ALL_INITS.discard(proc)


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_ALL_INITS):
        _kill_group_now(proc)


def _group_pids(pgid: int) -> list[int]:
    """Live (non-zombie) processes of one process group."""
    import psutil

    pids = []
    for proc in psutil.process_iter(["pid", "status"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(proc.info["pid"]) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                pids.append(proc.info["pid"])
    return pids


def _listening_ports(pids: list[int]) -> set[int]:
    import psutil

    ports = set()
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            ports |= {c.laddr.port for c in psutil.Process(pid).net_connections(kind="tcp")
                      if c.status == psutil.CONN_LISTEN}
    return ports


def _someone_listens(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((LOOPBACK, port)) == 0


def _expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion (``$$(VAR)`` escapes it)."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


@dataclass
class ContainerRun:
    name: str
    image: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log: Any
    proc: subprocess.Popen | None = None
    restarts: int = 0
    ready: bool = False
    started: str = ""

    def spawn(self) -> None:
        """Start the command under podinit.py, in a new process group (the Pod's)."""
        self.proc = subprocess.Popen([sys.executable, str(PODINIT), "--", *self.argv], env=self.env, cwd=self.cwd,
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        _ALL_INITS.add(self.proc)
        self.started, self.ready = _now(), False


@dataclass
class PodRun:
    namespace: str
    name: str
    uid: str
    containers: list[ContainerRun]
    started: str = field(default_factory=_now)
    error: str | None = None
    last_status: dict | None = None
    kill_at: float | None = None
    unpulled: dict[str, str] = field(default_factory=dict)  # container name -> the image the node cannot pull


class EmulatedNode:
    """Deployment controller, garbage collector, LoadBalancer controller and a kubelet, on one poll loop."""

    def __init__(self, api: DaskKubernetesEmulator, url: str, workdir: Path, pythonpath: list[str],
                 lb_delay: float = 1.0, grace: float = 3.0, unpullable: set[str] | None = None) -> None:
        self.api, self.url, self.workdir = api, url, workdir
        self.pythonpath = pythonpath
        self.unpullable = unpullable if unpullable is not None else set()  # images "missing from the registry"
        self.lb_delay, self.grace = lb_delay, grace
        self.runs: dict[str, PodRun] = {}
        self.dying: list[PodRun] = []
        self.errors: list[str] = []
        self._first_seen: dict[str, float] = {}
        self._http: aiohttp.ClientSession | None = None

    # -- API access: reads from the emulator's memory (same loop), writes through HTTP like any client.
    def snapshot(self, plural: str | None = None) -> list[tuple[Any, str | None, str, dict]]:
        return [(res, ns, name, obj.raw) for (res, ns, name), obj in self.api.objects.items()
                if not obj.deleted and (plural is None or res.plural == plural)]

    def _url(self, res: Any, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
        base = f"{self.url}/api/{res.version}" if not res.group else f"{self.url}/apis/{res.group}/{res.version}"
        if namespace:
            base += f"/namespaces/{namespace}"
        return "/".join([base, res.plural] + ([name] if name else []) + ([sub] if sub else []))

    async def _request(self, method: str, url: str, body: Any = None) -> None:
        assert self._http is not None
        headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
        async with self._http.request(method, url, json=body, headers=headers) as resp:
            if resp.status >= 400 and resp.status != 404:
                raise RuntimeError(f"{method} {url}: {resp.status} {await resp.text()}")

    async def delete(self, res: Any, namespace: str | None, name: str) -> None:
        await self._request("DELETE", self._url(res, namespace, name))

    # -- the loop
    async def run(self) -> None:
        async with aiohttp.ClientSession() as self._http:
            try:
                while True:
                    for step in (self.collect_garbage, self.deployments, self.load_balancers, self.kubelet):
                        try:
                            await step()
                        except Exception:  # noqa: BLE001 - keep the node alive, report at teardown
                            self.errors.append(traceback.format_exc())
                            log.exception("emulated node: %s failed", step.__name__)
                    await asyncio.sleep(POLL)
            finally:
                self.kill_everything()

    async def collect_garbage(self) -> None:
        objs = self.snapshot()
        live = {obj["metadata"].get("uid") for *_, obj in objs}
        for res, ns, name, obj in objs:
            owners = obj["metadata"].get("ownerReferences") or []
            if owners and not any(o.get("uid") in live for o in owners) and not obj["metadata"].get(
                    "deletionTimestamp"):
                await self.delete(res, ns, name)

    async def deployments(self) -> None:
        pods_of: dict[str, list[dict]] = defaultdict(list)
        for _, _, _, pod in self.snapshot("pods"):
            if not pod["metadata"].get("deletionTimestamp"):
                for owner in pod["metadata"].get("ownerReferences") or []:
                    pods_of[owner.get("uid")].append(pod)
        for res, ns, name, dep in self.snapshot("deployments"):
            meta, spec = dep["metadata"], dep.get("spec", {})
            if res.group != "apps" or meta.get("deletionTimestamp"):
                continue
            pods = pods_of[meta["uid"]]
            replicas = spec.get("replicas", 1)
            for _ in range(replicas - len(pods)):
                log.info("deployment %s/%s: creating a pod", ns, name)
                await self._create_pod(ns, name, meta["uid"], spec["template"])
            for pod in pods[replicas:]:
                await self.delete(kmock.resource("", "v1", "pods"), ns, pod["metadata"]["name"])
            ready = sum(_condition(pod, "Ready") for pod in pods[:replicas])
            status = {"observedGeneration": meta.get("generation", 1), "replicas": min(len(pods), replicas),
                      "readyReplicas": ready, "availableReplicas": ready, "updatedReplicas": min(len(pods), replicas)}
            if {k: dep.get("status", {}).get(k) for k in status} != status:
                await self._request("PATCH", self._url(res, ns, name, "status"), {"status": status})

    async def _create_pod(self, namespace: str, deployment: str, uid: str, template: dict) -> None:
        template = copy.deepcopy(template)
        tmeta = template.get("metadata") or {}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{deployment}-{secrets.token_hex(3)[:5]}", "namespace": namespace,
                            "labels": tmeta.get("labels") or {}, "annotations": tmeta.get("annotations") or {},
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment,
                                                 "uid": uid, "controller": True, "blockOwnerDeletion": True}]},
               "spec": template["spec"]}
        await self._request("POST", self._url(kmock.resource("", "v1", "pods"), namespace), pod)

    async def load_balancers(self) -> None:
        # Cloud load balancers take a while; an instant ingress races the operator's "Pending" status patch.
        for res, ns, name, svc in self.snapshot("services"):
            if svc.get("spec", {}).get("type") != "LoadBalancer":
                continue
            if (svc.get("status", {}).get("loadBalancer") or {}).get("ingress"):
                continue
            seen = self._first_seen.setdefault(svc["metadata"]["uid"], time.monotonic())
            if time.monotonic() - seen >= self.lb_delay:
                log.info("service %s/%s: load balancer ingress %s", ns, name, LOOPBACK)
                await self._request("PATCH", self._url(res, ns, name, "status"),
                                    {"status": {"loadBalancer": {"ingress": [{"ip": LOOPBACK}]}}})

    # -- kubelet
    async def kubelet(self) -> None:
        services = [name for _, _, name, _ in self.snapshot("services")]
        pods = {pod["metadata"]["uid"]: (ns, name, pod) for _, ns, name, pod in self.snapshot("pods")
                if not pod["metadata"].get("deletionTimestamp")}
        for uid in [uid for uid in self.runs if uid not in pods]:
            self.terminate(self.runs.pop(uid))
        self.reap_dying()
        for uid, (ns, name, pod) in pods.items():
            run = self.runs.get(uid)
            if run is None:
                if pod.get("status", {}).get("phase", "Pending") != "Pending":
                    continue
                run = self.runs[uid] = self.start(ns, name, uid, pod, services)
                log.info("pod %s/%s: started %s", ns, name, [c.argv for c in run.containers])
            status = await self.pod_status(run, pod)
            if status != run.last_status:
                if run.last_status is None or status["phase"] != run.last_status["phase"] or \
                        status["conditions"] != run.last_status["conditions"]:
                    log.info("pod %s/%s: %s, ready=%s", ns, name, status["phase"], status["conditions"][-1]["status"])
                await self._request("PATCH", self._url(kmock.resource("", "v1", "pods"), ns, name, "status"),
                                    {"status": status})
                run.last_status = status

    # -- kube-proxy
    def route(self, namespace: str, service: str, port_name: str) -> tuple[str, int]:
        """Where a connection to one named port of a Service lands: a Ready Pod behind its selector.

        All Pods share 127.0.0.1, so a Pod whose declared port was taken by some other process listens elsewhere:
        the endpoint is the port its processes really listen on. A Service without Ready Pods gives its own port,
        where the connection is refused, as a Service without endpoints refuses it.
        """
        svc = next((obj for _, ns, name, obj in self.snapshot("services") if ns == namespace and name == service),
                   None)
        if svc is None:
            raise LookupError(f"no Service {namespace}/{service}")
        spec = svc.get("spec") or {}
        # The operator's own rule (networking._get_port): the port named like the Service or like port_name.
        matching = [p for p in spec.get("ports") or [] if p.get("name") in (service, port_name)]
        if len(matching) != 1:
            raise LookupError(f"Service {namespace}/{service} has no single port named {port_name!r}")
        target = matching[0].get("targetPort", matching[0]["port"])
        selector = spec.get("selector") or {}
        for _, ns, _, pod in self.snapshot("pods"):
            meta = pod["metadata"]
            labels = meta.get("labels") or {}
            if ns != namespace or meta.get("deletionTimestamp") or not _condition(pod, "Ready") or \
                    any(labels.get(k) != v for k, v in selector.items()):
                continue
            run = self.runs.get(meta["uid"])
            for container in pod.get("spec", {}).get("containers") or []:
                declared = {p.get("name"): int(p["containerPort"]) for p in container.get("ports") or []}
                port = declared.get(target) if isinstance(target, str) else int(target)
                if port is None:
                    continue
                running = next((c for c in run.containers if c.name == container["name"]), None) if run else None
                return LOOPBACK, self._listening(running, port, set(declared.values())) if running else port
        return LOOPBACK, int(matching[0]["port"])

    @staticmethod
    def _listening(container: ContainerRun, port: int, declared: set[int]) -> int:
        own = _listening_ports(_group_pids(container.proc.pid))
        if port in own:
            return port
        moved = own - declared  # the one port it listens on instead (a Dask server moves to a free port)
        return moved.pop() if len(moved) == 1 else port

    def _loopback(self, text: str, services: list[str]) -> str:
        """What the Pod network gives: cluster DNS names and 0.0.0.0 become 127.0.0.1 on this machine."""
        text = text.replace("0.0.0.0", LOOPBACK)
        text = re.sub(r"(?<![\w.-])[a-z0-9]([-a-z0-9.]*[a-z0-9])?\.svc(\.cluster\.local)?(?![\w.-])", LOOPBACK,
                      text)
        for svc in services:
            text = re.sub(rf"(?<=//){re.escape(svc)}(?=[:/]|$)", LOOPBACK, text)
        return text

    def _argv(self, container: dict, env: dict[str, str], services: list[str]) -> list[str]:
        # No image ENTRYPOINT here (as in docker/Dockerfile): command + args is the whole command line.
        argv = [self._loopback(_expand(a, env), services)
                for a in (container.get("command") or []) + (container.get("args") or [])]
        if argv[:2] in (["dask", "worker"], ["dask", "scheduler"]):
            # A Pod has its own network namespace; here every Pod shares the loopback, so bind there.
            for i in range(1, len(argv)):
                if argv[i - 1] == "--dashboard-address" and re.fullmatch(r":?\d+", argv[i]):
                    argv[i] = f"{LOOPBACK}:{argv[i].lstrip(':')}"
            if argv[1] == "worker" and "--host" not in argv:
                argv += ["--host", LOOPBACK]
        return argv

    def _env(self, pod: dict, container: dict, services: list[str]) -> tuple[dict[str, str], dict[str, str]]:
        own: dict[str, str] = {}
        for item in container.get("env") or []:
            if "value" in item:
                own[item["name"]] = self._loopback(_expand(str(item["value"]), own), services)
            elif ref := (item.get("valueFrom") or {}).get("fieldRef"):
                value = _path(pod, ref["fieldPath"])
                own[item["name"]] = LOOPBACK if ref["fieldPath"] == "status.podIP" else str(value or "")
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env["PYTHONPATH"] = os.pathsep.join(self.pythonpath + [p for p in [env.get("PYTHONPATH")] if p])
        env["HOSTNAME"] = pod["metadata"]["name"]
        env.update(own)
        return env, own

    def start(self, namespace: str, name: str, uid: str, pod: dict, services: list[str]) -> PodRun:
        run = PodRun(namespace, name, uid, [])
        spec = pod.get("spec", {})
        claims = {v["name"] for v in spec.get("volumes") or [] if "persistentVolumeClaim" in v}
        cwd = self.workdir / "pods" / f"{namespace}_{name}"
        cwd.mkdir(parents=True, exist_ok=True)
        for container in spec.get("containers", []):
            if container.get("image") in self.unpullable:  # the kubelet never gets the image: nothing starts
                run.unpulled[container["name"]] = container["image"]
                continue
            # A claim is "mounted" where it already is: tests pass a local directory as the mount path.
            for mount in container.get("volumeMounts") or []:
                if mount["name"] in claims and not Path(mount["mountPath"]).is_dir():
                    run.error = f"volume {mount['name']!r}: {mount['mountPath']} is not a local directory"
            env, own = self._env(pod, container, services)
            argv = self._argv(container, own, services)
            if run.error or not argv:
                run.error = run.error or f"container {container['name']!r} has no command"
                continue
            logf = open(self.api.logs_dir / f"{namespace}_{name}.log", "ab")  # noqa: SIM115 - closed on reap
            run.containers.append(ContainerRun(container["name"], container.get("image", ""), argv, env, cwd, logf))
            run.containers[-1].spawn()
        return run

    async def _probe(self, container: ContainerRun, spec_container: dict) -> bool:
        """The readiness probe, against the container's own listening socket.

        All Pods share this machine's network, so a port can be taken by some other process (any LocalCluster
        holds 8787 for its dashboard) and the container's server moves elsewhere. Such a probe is never sent
        to the stranger: the container counts as ready once it listens on its other declared ports.
        """
        probe = spec_container.get("readinessProbe")
        if not probe:
            return True
        ports = {p.get("name"): p["containerPort"] for p in spec_container.get("ports") or []}
        action = probe.get("httpGet") or probe.get("tcpSocket")
        if not action:
            return True  # exec probes: not emulated
        port = int(ports.get(action["port"], action["port"]))
        own = _listening_ports(_group_pids(container.proc.pid))
        if port not in own:
            if not _someone_listens(port):
                return False  # still starting
            others = set(ports.values()) - {port}
            if not own or not others <= own:
                return False
            log.warning("port %s is taken on this machine: probing %s by its other ports", port, container.name)
            return True
        if "tcpSocket" in probe:
            return True
        with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError, OSError):
            async with self._http.get(f"http://{LOOPBACK}:{port}{action.get('path', '/')}",
                                      timeout=aiohttp.ClientTimeout(total=1)) as resp:
                return 200 <= resp.status < 400
        return False

    async def pod_status(self, run: PodRun, pod: dict) -> dict:
        spec = pod.get("spec", {})
        by_name = {c["name"]: c for c in spec.get("containers", [])}
        restart = spec.get("restartPolicy", "Always")
        statuses = []
        for c in run.containers:
            code = c.proc.poll()
            if code is not None and c.restarts < 5 and (
                    restart == "Always" or (restart == "OnFailure" and code != 0)):
                log.warning("pod %s: container %s exited with %s, restarting it", run.name, c.name, code)
                _ALL_INITS.discard(c.proc)
                c.restarts += 1
                c.spawn()
                code = None
            if code is None:
                c.ready = c.ready or await self._probe(c, by_name.get(c.name, {}))
                state = {"running": {"startedAt": c.started}}
            elif restart == "Always":  # out of restarts: what KubeCluster looks for to report a failed start
                c.ready = False
                state = {"waiting": {"reason": "CrashLoopBackOff"}}
            else:
                c.ready = False
                state = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}}
            statuses.append({"name": c.name, "image": c.image, "imageID": "", "ready": c.ready,
                             "started": code is None, "restartCount": c.restarts, "state": state})
        for cname, image in run.unpulled.items():
            statuses.append({"name": cname, "image": image, "imageID": "", "ready": False, "started": False,
                             "restartCount": 0, "state": {"waiting": {
                                 "reason": "ImagePullBackOff",
                                 "message": f'Back-off pulling image "{image}": not found in the registry'}}})
        codes = [c.proc.poll() for c in run.containers]
        if run.error:
            phase = "Failed"
        elif run.unpulled:
            phase = "Pending"
        elif codes and all(code is not None for code in codes) and restart != "Always":
            phase = "Succeeded" if all(code == 0 for code in codes) else "Failed"
        else:
            phase = "Running"
        ready = phase == "Running" and bool(run.containers) and all(c.ready for c in run.containers)
        conditions = [{"type": t, "status": "True"} for t in ("PodScheduled", "Initialized")]
        conditions += [{"type": t, "status": str(ready)} for t in ("ContainersReady", "Ready")]
        status = {"phase": phase, "podIP": LOOPBACK, "hostIP": LOOPBACK, "startTime": run.started,
                  "conditions": conditions, "containerStatuses": statuses}
        if run.error:
            status["message"] = run.error
        return status

    def terminate(self, run: PodRun) -> None:
        """Pod deleted: SIGTERM to each container's main process now, SIGKILL after the grace period."""
        log.info("pod %s/%s: deleted, terminating its processes", run.namespace, run.name)
        for c in run.containers:
            with contextlib.suppress(ProcessLookupError):
                c.proc.send_signal(signal.SIGTERM)
        run.kill_at = time.monotonic() + self.grace
        self.dying.append(run)

    def reap_dying(self) -> None:
        for run in list(self.dying):
            if all(c.proc.poll() is not None for c in run.containers):
                self._close(run)
            elif time.monotonic() >= (run.kill_at or 0):
                for c in run.containers:
                    _kill_group_now(c.proc)
                self._close(run)

    def _close(self, run: PodRun) -> None:
        for c in run.containers:
            _ALL_INITS.discard(c.proc)
            c.log.close()
        with contextlib.suppress(ValueError):
            self.dying.remove(run)

    def kill_everything(self) -> None:
        for run in list(self.runs.values()) + list(self.dying):
            for c in run.containers:
                _kill_group_now(c.proc)
            self._close(run)
        self.runs.clear()
        self.dying.clear()

    def running_pods(self) -> list[str]:
        """Names of Pods that still have processes, deleted ones in their grace period included."""
        return [run.name for run in list(self.runs.values()) + list(self.dying)
                if any(c.proc is not None and c.proc.poll() is None for c in run.containers)]

    def pids(self, pod_name: str) -> list[int]:
        """Every live process of a running Pod (its init, the command and the command's children)."""
        for run in list(self.runs.values()) + list(self.dying):
            if run.name == pod_name:
                return [pid for c in run.containers for pid in _group_pids(c.proc.pid)]
        return []


def _condition(pod: dict, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


# -------------------------------------------------------------------------------------------- harness
class EmulatedKubernetes:
    """API server + node in one background event loop, the Dask operator in another thread.

    >>> with EmulatedKubernetes(tmp_path) as kube, kubeconfig_env(kube.kubeconfig):  # doctest: +SKIP
    ...     cluster = KubeCluster(custom_cluster_spec=cluster_spec(..., scheduler_service_type="LoadBalancer"))
    """

    def __init__(self, workdir: Path, *, pythonpath: list[str] | None = None, namespace: str = "default",
                 dask_crds: bool = True, operator: bool = True) -> None:
        self.workdir = Path(workdir)
        self.namespace = namespace
        self.dask_crds = dask_crds
        self.run_operator = operator and dask_crds  # without its CRDs the operator has nothing to watch
        self.unpullable_images: set[str] = set()  # add an image here and its Pods stay in ImagePullBackOff
        self.routed: list[tuple[str, str, str]] = []  # the operator's lookups of Services: (namespace, name, port)
        self.pythonpath = [str(p) for p in pythonpath or []]
        self.logs_dir = self.workdir / "logs"
        self.shared_dir = self.workdir / "shared"  # what a PersistentVolumeClaim mounted in tests points at
        self.kubeconfig = self.workdir / "kubeconfig.yaml"
        self.url: str = ""
        self.api: DaskKubernetesEmulator | None = None
        self.node: EmulatedNode | None = None
        self.operator: OperatorThread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="kube-emulator", daemon=True)

    # -- lifecycle
    def __enter__(self) -> EmulatedKubernetes:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 30) -> None:
        # Only the comm port must be free: when 8787 is taken (any LocalCluster's dashboard), the emulated
        # scheduler's dashboard moves to another port, which nothing here depends on.
        with socket.socket() as sock:
            if self.run_operator and sock.connect_ex((LOOPBACK, SCHEDULER_PORTS[0])) == 0:
                raise RuntimeError(f"port {SCHEDULER_PORTS[0]} on {LOOPBACK} is in use: the emulated Dask "
                                   f"scheduler Pod needs it (stop the other Dask scheduler)")
        for folder in (self.logs_dir, self.shared_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        if not self._started.wait(timeout) or self._error is not None:
            raise RuntimeError(f"the Kubernetes API emulator did not start: {self._error!r}")
        self.kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "emulated",
            "clusters": [{"name": "emulated", "cluster": {"server": self.url}}],
            # The kubeconfig's user is the driver's identity, the one deny() restricts.
            "users": [{"name": "tester", "user": {"token": DRIVER_TOKEN}}],
            "contexts": [{"name": "emulated", "context": {"cluster": "emulated", "user": "tester",
                                                          "namespace": self.namespace}}]}))
        if self.run_operator:
            operator_config = self.workdir / "operator-kubeconfig.yaml"
            operator_config.write_text(yaml.safe_dump({
                "apiVersion": "v1", "kind": "Config", "current-context": "operator",
                "clusters": [{"name": "emulated", "cluster": {"server": self.url}}],
                "users": [{"name": "operator", "user": {"token": OPERATOR_TOKEN}}],
                "contexts": [{"name": "operator", "context": {"cluster": "emulated", "user": "operator",
                                                              "namespace": self.namespace}}]}))
            self.operator = OperatorThread(self.url, self.route_async, operator_config)
            self.operator.start(timeout)

    def _serve(self) -> None:
        try:
            asyncio.run(self._amain())
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._error = exc
            self._started.set()

    async def _amain(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self.api = DaskKubernetesEmulator(logs_dir=self.logs_dir, dask_crds=self.dask_crds,
                                          users={DRIVER_TOKEN: DRIVER_USER})
        async with self.api, kmock.Server(self.api, host=LOOPBACK) as server:
            self.url = str(server.url).rstrip("/")
            self.node = EmulatedNode(self.api, self.url, self.workdir, self.pythonpath,
                                     unpullable=self.unpullable_images)
            node = asyncio.create_task(self.node.run())
            self._started.set()
            await self._stopping.wait()
            node.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await node

    def stop(self) -> None:
        if self.operator is not None:
            self.operator.stop()
        if self._loop is not None and self._stopping is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(30)
        if self.node is not None:
            self.node.kill_everything()

    @property
    def errors(self) -> list[str]:
        """Failures inside the node's controllers and requests the API server could not serve."""
        found = list(self.node.errors) if self.node else []
        with contextlib.suppress(RuntimeError):
            # Not-found and conflict answers are normal API traffic; anything else is an emulator bug.
            found += [repr(e) for e in self.api.errors if not isinstance(e, kmock.KubernetesError)] \
                if self.api else []
        return found

    @contextlib.contextmanager
    def deny(self, *rules: tuple[str, str]) -> Iterator[None]:
        """RBAC for the kubeconfig's user (the driver): refuse these (verb, resource) pairs with 403 meanwhile.

        >>> with kube.deny(("create", "daskclusters"), ("get", "pods/log")):  # doctest: +SKIP
        ...     KubernetesPool(...)  # -> the API server's 403 Forbidden
        """
        previous = self.api.denied
        self.api.denied = previous | frozenset(rules)
        try:
            yield
        finally:
            self.api.denied = previous

    async def route_async(self, namespace: str, service: str, port_name: str) -> tuple[str, int]:
        """:meth:`EmulatedNode.route` from any thread's event loop (the operator's); every lookup is recorded in
        ``routed`` as ``(namespace, service, port_name)``."""
        self.routed.append((namespace, service, port_name))

        async def on_loop() -> tuple[str, int]:
            return self.node.route(namespace, service, port_name)

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(on_loop(), self._loop))

    @contextlib.contextmanager
    def grant_only(self, rules: list[dict]) -> Iterator[None]:
        """RBAC for the kubeconfig's user (the driver): allow exactly what these Role rules grant meanwhile.

        >>> with kube.grant_only(gmat_sweep.kubernetes.DRIVER_RULES):  # doctest: +SKIP
        ...     KubernetesPool(...)  # anything the rendered Role does not grant -> the API server's 403
        """
        granted = frozenset((group, resource, verb) for rule in rules for group in rule["apiGroups"]
                            for resource in rule["resources"] for verb in rule["verbs"])
        previous = self.api.granted
        self.api.granted = granted
        try:
            yield
        finally:
            self.api.granted = previous

    # -- helpers for tests (thread-safe: they run on the emulator's loop)
    def call(self, fn: Callable[[], Any], timeout: float = 10) -> Any:
        async def wrapper() -> Any:
            result = fn()
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout)

    def objects(self, plural: str, namespace: str | None = None, label_selector: str | None = None) -> list[dict]:
        """Deep copies of the stored objects of one resource (e.g. ``"pods"``, ``"daskclusters"``)."""
        def read() -> list[dict]:
            return [copy.deepcopy(obj) for _, ns, _, obj in self.node.snapshot(plural)
                    if (namespace is None or ns == namespace)
                    and (not label_selector or label_selector_matches(label_selector,
                                                                      obj["metadata"].get("labels") or {}))]

        return self.call(read)

    def cluster_objects(self, cluster_name: str) -> dict[str, list[str]]:
        """Names of everything that belongs to one DaskCluster, by resource."""
        selector = f"dask.org/cluster-name={cluster_name}"
        found = {plural: [o["metadata"]["name"] for o in self.objects(plural, label_selector=selector)]
                 for plural in ("deployments", "pods", "services", "daskworkergroups")}
        found["daskclusters"] = [o["metadata"]["name"] for o in self.objects("daskclusters")
                                 if o["metadata"]["name"] == cluster_name]
        # KubeCluster.adapt() labels its DaskAutoscaler nowhere: it names the cluster in its spec.
        found["daskautoscalers"] = [o["metadata"]["name"] for o in self.objects("daskautoscalers")
                                    if (o.get("spec") or {}).get("cluster") == cluster_name]
        return found

    def worker_pods(self, cluster_name: str) -> list[dict]:
        return self.objects("pods", label_selector=f"dask.org/cluster-name={cluster_name},dask.org/component=worker")

    def pod_for_worker(self, worker_name: str) -> dict:
        """The Pod running the Dask worker called ``worker_name`` (the operator names workers after their
        Deployment; the manual manifests after the Pod)."""
        for pod in self.objects("pods"):
            owners = [o["name"] for o in pod["metadata"].get("ownerReferences") or []]
            if worker_name == pod["metadata"]["name"] or worker_name in owners:
                return pod
        raise LookupError(f"no Pod runs worker {worker_name!r}")

    def pod_pids(self, pod_name: str) -> list[int]:
        return self.call(lambda: self.node.pids(pod_name))

    def pod_log(self, pod_name: str, namespace: str | None = None) -> str:
        return self.api._pod_log(namespace or self.namespace, pod_name)

    def resource(self, plural: str) -> kmock.resource:
        """The served resource with this plural name (core and apps first, e.g. ``events`` is core/v1)."""
        found = sorted((r for r in self.api.resources if r.plural == plural),
                       key=lambda r: (r.group not in ("", "apps"), r.group, r.version))
        if not found:
            raise LookupError(f"the emulator serves no resource called {plural!r}")
        return found[0]

    def apply(self, objs: list[dict]) -> None:
        """Create objects through the API, as ``kubectl apply -f`` would for new ones."""
        for obj in objs:
            plural = next(r.plural for r, info in self.api.resources.items()
                          if info.kind == obj["kind"] and f"{r.group}/{r.version}".lstrip("/") == obj["apiVersion"])
            namespace = obj["metadata"].get("namespace", self.namespace)
            url = self.node._url(self.resource(plural), namespace)
            self.call(lambda url=url, obj=obj: self.node._request("POST", url, copy.deepcopy(obj)))

    def patch(self, plural: str, name: str, patch: dict, namespace: str | None = None) -> None:
        """Merge-patch one object (``kubectl scale deployment/x --replicas=1`` is ``{"spec": {"replicas": 1}}``)."""
        url = self.node._url(self.resource(plural), namespace or self.namespace, name)
        self.call(lambda: self.node._request("PATCH", url, patch))

    def delete(self, plural: str, name: str, namespace: str | None = None) -> None:
        """DELETE one object through the API, as ``kubectl delete`` would (a missing object is fine)."""
        res = self.resource(plural)
        self.call(lambda: self.node.delete(res, namespace or self.namespace, name))

    def delete_pod(self, name: str, namespace: str | None = None, wait: bool = True, timeout: float = 15) -> list[int]:
        """Delete a Pod as an eviction would; with ``wait``, return once all its processes are gone.

        Returns the pids the Pod had. Its Deployment (if any) then starts a replacement Pod.
        """
        pids = self.pod_pids(name)
        self.delete("pods", name, namespace)
        if wait:
            wait_for(lambda: not any(pid_alive(pid) for pid in pids), timeout, f"processes of Pod {name} to exit")
        return pids

    def wait_for_cluster_gone(self, cluster_name: str, timeout: float = 120) -> None:
        """Wait until the DaskCluster and its children are deleted and their Pods' processes have exited
        (the next cluster needs the scheduler ports back). The operator removes its finalizers between its timers'
        retries, which on a loaded machine takes tens of seconds: the wait is long, and says what was left."""
        try:
            wait_for(lambda: not any(self.cluster_objects(cluster_name).values()), timeout,
                     f"everything of DaskCluster {cluster_name} to be deleted")
        except TimeoutError as exc:
            left = {kind: names for kind, names in self.cluster_objects(cluster_name).items() if names}
            raise TimeoutError(f"{exc}; still there: {left}") from None
        prefix = f"{cluster_name}-"
        wait_for(lambda: not [p for p in self.call(self.node.running_pods) if p.startswith(prefix)], timeout,
                 f"the processes of DaskCluster {cluster_name} to exit")


def pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll until ``predicate()`` is truthy; TimeoutError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def reset_kr8s() -> None:
    """Forget kr8s' cached API clients, which remember the kubeconfig they were created with (not the operator's)."""
    with contextlib.suppress(ImportError, AttributeError):
        from kr8s._api import Api

        for key in [k for k in Api._instances if k not in _OPERATOR_CLIENTS]:
            del Api._instances[key]


@contextlib.contextmanager
def kubeconfig_env(path: Path) -> Iterator[None]:
    old = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(path)
    reset_kr8s()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = old
        reset_kr8s()

