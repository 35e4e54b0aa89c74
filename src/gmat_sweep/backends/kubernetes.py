"""KubernetesPool: a sweep on its own Dask cluster on Kubernetes, made through the Dask operator and deleted after.

>>> with KubernetesPool("ghcr.io/acme/gmat-sweep:0.1.0", 8, claim="gmat-shared") as pool:
...     df = sweep("/shared/missions/mission.script", grid={"Sat.SMA": [7000, 7100]}, backend=pool,
...                out="/shared/sweeps/sma")

It is ``DaskPool(client=Client(KubeCluster(custom_cluster_spec=cluster_spec(...))))`` plus what a sweep needs
around that, and why:

* **The cluster lives exactly as long as the pool.** ``close()`` (the end of the ``with`` block, an error, Ctrl-C)
  closes the pool and its client, then deletes the ``DaskCluster``; the operator's objects and Pods go with it.
  A Ctrl-C while the cluster is being deleted is held back until it is gone (a second one gives up, and the log
  says which ``kubectl delete`` finishes the job). A Ctrl-C or an error while the cluster starts deletes whatever
  was created.
* **Checks before anything is created.** The operator's CRDs must be served (else: how to install the operator),
  the driver's identity must be allowed to create, read and delete what a DaskCluster needs (else: which verb on
  which resource is missing, and the Role that ``gmat-sweep k8s render`` prints), and the name must be free.
* **A start-up deadline.** ``KubeCluster`` waits for its scheduler Pod without limit; here the start fails after
  ``wait_timeout`` seconds with the state of every Pod, and at once when the nodes cannot pull the image.
* **Shared storage when there is a claim.** Workers write run folders straight into the claim (``out=`` must be
  under ``mount_path``, on a driver that mounts the same claim there, e.g. a driver Pod); without a claim the
  files come back to the driver (return mode), which needs no storage at all.
* **Long missions.** GMAT holds the GIL for a whole mission, so a worker cannot heartbeat meanwhile: the
  scheduler Pod gets ``DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL=None`` so that it never drops a busy worker.

``scale(n)`` and ``adapt(minimum, maximum)`` resize the cluster mid-sweep; DaskPool follows the worker count.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import os
import re
import secrets
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .. import kubernetes as manifests
from ..distribution import install_hint
from .dask import DaskPool, DaskPoolError

logger = logging.getLogger("gmat_sweep.kubernetes")

DASK_GROUP = "kubernetes.dask.org"
OPERATOR_INSTALL = ("helm install --repo https://helm.dask.org --create-namespace -n dask-operator "
                    "--generate-name dask-kubernetes-operator")
#: Seconds a cluster may take to start (scheduler Pod running and reachable). Pulling a fresh image can take minutes.
DEFAULT_WAIT = 600.0
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
# The scheduler's guess for a task it has not timed yet (distributed.scheduler.unknown-task-duration), and a floor
# that bounds how many tasks an adaptive sweep keeps submitted.
_UNKNOWN_RUN = 0.5
_SHORTEST_TASK = 0.25
# Waiting reasons after which a container never starts by itself (a plain ErrImagePull may be a registry hiccup).
_PULL_FAILURES = frozenset({"ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"})
_CLEANUP_WAIT = 60.0
_FORBIDDEN = re.compile(r'cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)" in API group "(?P<group>[^"]*)"'
                        r'(?: in the namespace "(?P<namespace>[^"]+)")?')


class KubernetesPoolError(DaskPoolError):
    """The Kubernetes cluster cannot run the sweep's Dask cluster as asked: no Dask operator, missing permissions,
    an image the nodes cannot pull, a start that takes too long. The message says what to do; nothing that the
    pool created is left running."""


def cluster_name() -> str:
    """A fresh DaskCluster name, ``gmat-sweep-`` and 6 random hex digits (a valid DNS-1123 label).

    >>> len(cluster_name()), cluster_name().startswith("gmat-sweep-")
    (17, True)
    """
    return f"gmat-sweep-{secrets.token_hex(3)}"


class KubernetesPool(DaskPool):
    """Runs a sweep on a Dask cluster that it creates on Kubernetes (through the Dask operator) and deletes.

    ``image``: the pinned gmat-sweep image every Pod runs (``REPO:VERSION`` or ``REPO@sha256:...``; see
    docker/README.md); ``n_workers``: single-threaded worker Pods. ``name``: the DaskCluster's name (default: a
    fresh ``gmat-sweep-xxxxxx``); ``namespace``: default the current one of your kubeconfig (or the driver Pod's).
    ``claim``: a PersistentVolumeClaim mounted at ``mount_path`` in every Pod; then ``shared_storage`` defaults to
    True and ``out=`` must be under ``mount_path`` on the driver too. ``scheduler_service_type``: ``ClusterIP``
    (a driver outside the cluster reaches it through a port-forward), ``LoadBalancer`` or ``NodePort``.
    ``wait_timeout``: seconds the cluster may take to start, and by default how long a sweep waits for a usable
    worker (``worker_wait``). ``resources``, ``env``, ``node_selector``, ``tolerations``, ``image_pull_secrets``:
    as in :func:`gmat_sweep.kubernetes.cluster_spec`; ``batch_size``, ``timeout``: as in :class:`DaskPool`.

    >>> with KubernetesPool("ghcr.io/acme/gmat-sweep:0.1.0", 8) as pool:  # doctest: +SKIP
    ...     Sweep("mission.script", grid={"Sat.SMA": [7000, 7100]}, out="sweeps/sma").run(pool)
    """

    def __init__(self, image: str, n_workers: int, *, name: str | None = None, claim: str | None = None,
                 mount_path: str | None = manifests.DEFAULT_MOUNT, namespace: str | None = None,
                 resources: Mapping[str, Any] | None = None,
                 env: Mapping[str, str] | Sequence[Mapping[str, Any]] | None = None,
                 scheduler_service_type: str = "ClusterIP", allow_unpinned: bool = False,
                 shared_storage: bool | None = None, wait_timeout: float = DEFAULT_WAIT,
                 node_selector: Mapping[str, str] | None = None,
                 tolerations: Sequence[Mapping[str, Any]] | None = None,
                 image_pull_secrets: Sequence[str] | None = None, batch_size: int | None = None,
                 timeout: float | None = None, worker_wait: float | None = None) -> None:
        self._kube_closed = True  # nothing to delete until the cluster exists
        self._adapting: tuple[int, int] | None = None  # (minimum, maximum) while the operator adapts the cluster
        name = cluster_name() if name is None else name
        if namespace is not None:
            manifests._check_label(namespace, "namespace")
        if shared_storage is None:
            shared_storage = claim is not None
        elif shared_storage and claim is None:
            raise ValueError("shared_storage=True needs a claim: workers can only write where the driver reads "
                             "through a PersistentVolumeClaim mounted in every Pod (claim=..., --claim), or leave "
                             "shared_storage out and the files come back to the driver")
        if not isinstance(wait_timeout, (int, float)) or wait_timeout <= 0:
            raise ValueError(f"wait_timeout must be a positive number of seconds, got {wait_timeout!r}")
        spec = manifests.cluster_spec(
            name, image, n_workers, resources=resources, claim=claim, mount_path=mount_path, env=env,
            node_selector=node_selector, tolerations=tolerations, image_pull_secrets=image_pull_secrets,
            scheduler_service_type=scheduler_service_type, allow_unpinned=allow_unpinned)
        self.name = name
        self.image = image
        self.claim = claim
        self.mount_path = _mount_of(spec)
        self.wait_timeout = float(wait_timeout)
        # From outside the cluster a ClusterIP scheduler is reached through a port-forward (KubeCluster's choice).
        port_forward = scheduler_service_type == "ClusterIP" and not os.environ.get("KUBERNETES_SERVICE_HOST")
        self.cluster = _start_cluster(spec, namespace, self.wait_timeout, port_forward)
        self.namespace: str = self.cluster.namespace
        self._kube_closed = False
        try:
            self._kube_client = _connect(self.cluster, self.wait_timeout)
            try:
                super().__init__(client=self._kube_client, shared_storage=shared_storage, batch_size=batch_size,
                                 timeout=timeout, worker_wait=self.wait_timeout if worker_wait is None else worker_wait)
            except BaseException:
                self._kube_client.close()
                raise
        except BaseException:
            self._kube_closed = True
            with _sigint_held(self._leftover):
                _delete_cluster(self.cluster, self.wait_timeout, self._leftover)
                _stop_loop(self.cluster)
            raise
        logger.info("DaskCluster %s is up in namespace %s (scheduler %s, %d worker Pods of %s); it is deleted when "
                    "the pool closes", self.name, self.namespace, self.address, n_workers, image)

    # ------------------------------------------------------------------------------ resizing

    def scale(self, n: int) -> None:
        """Ask for ``n`` worker Pods now and end adaptive scaling; a running sweep uses them as they join.

        >>> pool.scale(8)  # doctest: +SKIP
        """
        manifests._check_count(n, "number of workers")
        with _explained(self.namespace, self.name):
            self.cluster.sync(_check_resize, self.namespace, SCALE_PERMISSIONS, f"scale({n})")
            # The operator patches the worker count from its autoscaler's timer: let that stop before setting ours.
            self.cluster.sync(_end_adaptivity, self.name, self.namespace, min(self.wait_timeout, _CLEANUP_WAIT))
            self.cluster.scale(n)
        self._adapting = None

    def adapt(self, minimum: int, maximum: int) -> None:
        """Let the Dask operator grow and shrink the worker Pods between ``minimum`` and ``maximum`` with the load.

        The operator asks the scheduler every 5 s how many workers its tasks need, then patches the worker count
        (at most a quarter fewer per step, 15 s apart); while adapting, the pool keeps enough runs submitted for the
        scheduler to see the backlog. ``scale(n)`` ends it.

        >>> pool.adapt(minimum=1, maximum=16)  # doctest: +SKIP
        """
        _check_bounds(minimum, maximum)
        with _explained(self.namespace, self.name):
            self.cluster.sync(_check_resize, self.namespace, ADAPT_PERMISSIONS,
                              f"adapt(minimum={minimum}, maximum={maximum})")
            self.cluster.adapt(minimum=minimum, maximum=maximum)
        self._adapting = (minimum, maximum)

    def _in_flight(self) -> int:
        """While adapting: enough runs submitted for the scheduler to ask for ``maximum`` workers.

        The operator sizes the cluster by the scheduler's adaptive target, the workers that would finish the tasks
        the scheduler holds within ``distributed.adaptive.target-duration``, and never more than those tasks. A
        window of two tasks per worker hides the backlog, so the cluster would only double at each step."""
        window = super()._in_flight()
        if self._adapting is None:
            return window
        import dask
        from dask.utils import parse_timedelta

        maximum = self._adapting[1]
        target = parse_timedelta(dask.config.get("distributed.adaptive.target-duration"))
        per_task = max(_SHORTEST_TASK, (self._mean_run or _UNKNOWN_RUN) * self._batch_size())
        return max(window, math.ceil(self.window_per_worker * maximum), math.ceil(maximum * target / per_task))

    # ------------------------------------------------------------------------------ Pool interface

    def prepare(self, context: dict[str, Any]) -> None:
        out = context.get("out")
        if self.shared_storage and out and self.mount_path:
            out = os.path.abspath(out)
            if out != self.mount_path and not out.startswith(self.mount_path.rstrip("/") + "/"):
                raise KubernetesPoolError(
                    f"out={out} is not on the claim {self.claim!r}, which every Pod mounts at {self.mount_path}: "
                    f"workers write the runs under out=, so give an out= under {self.mount_path} (e.g. "
                    f"{self.mount_path.rstrip('/')}/sweeps/NAME) and run the driver where the claim is mounted at "
                    f"{self.mount_path} too (a driver Pod, see docs/kubernetes.md)")
        super().prepare(context)

    def close(self) -> None:
        """Close the pool and its client, then delete the DaskCluster (its Pods go with it)."""
        if self._kube_closed:
            return
        self._kube_closed = True
        with _sigint_held(self._leftover):
            try:
                super().close()
            finally:
                try:
                    with contextlib.suppress(Exception):
                        self._kube_client.close()
                finally:
                    if _delete_cluster(self.cluster, self.wait_timeout, self._leftover):
                        logger.info("deleted DaskCluster %s in namespace %s", self.name, self.namespace)
                    _stop_loop(self.cluster)

    def _leftover(self, why: str) -> None:
        logger.error("the DaskCluster %s in namespace %s may still be running (%s); delete it with: "
                     "kubectl delete daskcluster %s -n %s", self.name, self.namespace, why, self.name, self.namespace)

    def __repr__(self) -> str:
        return (f"KubernetesPool(name={self.name!r}, namespace={getattr(self, 'namespace', None)!r}, "
                f"image={self.image!r}, scheduler={getattr(self, 'address', None)!r})")


# -------------------------------------------------------------------------------------------- starting


def _mount_of(spec: dict) -> str | None:
    [container] = spec["spec"]["worker"]["spec"]["containers"]
    mounts = container.get("volumeMounts") or []
    return mounts[0]["mountPath"] if mounts else None


def _start_cluster(spec: dict, namespace: str | None, wait_timeout: float, port_forward: bool) -> Any:
    try:
        from dask_kubernetes.operator.kubecluster.kubecluster import CreateMode
    except ImportError as exc:
        raise ImportError(f"KubernetesPool needs dask-kubernetes ({exc}): {install_hint('kubernetes')}") \
            from None
    return _cluster_class()(
        custom_cluster_spec=spec, namespace=namespace, create_mode=CreateMode.CREATE_ONLY, shutdown_on_close=True,
        # KubeCluster's own deadline for the operator to act, shorter than ours so that its clearer error wins.
        resource_timeout=max(1, int(min(60.0, wait_timeout / 2))), quiet=True, gmat_wait=wait_timeout,
        gmat_port_forward=port_forward)


def _connect(cluster: Any, wait_timeout: float) -> Any:
    import distributed

    return distributed.Client(cluster, set_as_default=False, timeout=f"{min(wait_timeout, 60.0):g}s")


@functools.cache
def _cluster_class() -> type:
    """KubeCluster with the checks, the deadline and the clean-up of a failed start (built on first use: the
    [kubernetes] extra is optional)."""
    from distributed.core import Status
    from distributed.deploy import Cluster
    from dask_kubernetes.operator import KubeCluster

    class SweepKubeCluster(KubeCluster):
        def __init__(self, *, gmat_wait: float, gmat_port_forward: bool, **kwargs: Any) -> None:
            self._gmat_wait = gmat_wait
            self._gmat_port_forward = gmat_port_forward
            self._gmat_started = False
            self._gmat_done = threading.Event()
            try:
                super().__init__(**kwargs)
            except BaseException:
                # On Ctrl-C, distributed's sync() cancels _start and returns at once: the start's own clean-up
                # (deleting what it created) runs on the cluster's loop, so wait for it before letting go.
                with _sigint_held(lambda why: logger.error(
                        "a DaskCluster %s may be left behind (%s): kubectl delete daskcluster %s", self.name, why,
                        self.name)):
                    if self._gmat_started:
                        self._gmat_done.wait(_CLEANUP_WAIT)
                    self._gmat_discard()
                raise

        def _gmat_discard(self) -> None:
            KubeCluster._instances.discard(self)  # nothing for its atexit reaper to close
            self.status = Status.closed
            _stop_loop(self)

        async def _start(self) -> None:
            self._gmat_started = True
            try:
                await self._gmat_start()
            except KubernetesPoolError:
                raise
            except Exception as exc:
                explained = _explain(exc, self.namespace, self.name)
                if explained is None:
                    raise
                raise explained from exc
            finally:
                self._gmat_done.set()

        async def _gmat_start(self) -> None:
            import kr8s

            api = await kr8s.asyncio.api()
            if not self.namespace:
                self.namespace = api.namespace
            await _check_access(api, self.namespace, self.name, self._gmat_port_forward)
            logger.info("creating DaskCluster %s in namespace %s (up to %g s; Ctrl-C deletes it) ...", self.name,
                        self.namespace, self._gmat_wait)
            # From here on a DaskCluster with this name is this pool's: whatever goes wrong, delete it.
            try:
                await _first_of(KubeCluster._start(self), _watch_image_pulls(self.name, self.namespace),
                                self._gmat_wait, lambda: _late_message(self.name, self.namespace, self._gmat_wait))
            except BaseException:
                await self._gmat_clean_up(api)
                raise

        async def _gmat_clean_up(self, api: Any) -> None:
            with contextlib.suppress(Exception):
                await Cluster._close(self)  # comms the start may have opened
            try:
                await _delete_daskcluster(api, self.name, self.namespace, _CLEANUP_WAIT)
                await _delete_worker_groups(self.name, self.namespace)
            except Exception as exc:  # noqa: BLE001 - the start's own error is the one to report
                logger.error("the DaskCluster %s in namespace %s may still be there (%s: %s); delete it with: "
                             "kubectl delete daskcluster %s -n %s", self.name, self.namespace, type(exc).__name__,
                             exc, self.name, self.namespace)

    return SweepKubeCluster


async def _first_of(start: Any, watch: Any, timeout: float, late: Any) -> None:
    """Run ``start`` against a deadline while ``watch`` looks for a reason to give up early (it raises)."""
    start_task, watch_task = asyncio.ensure_future(start), asyncio.ensure_future(watch)
    try:
        done, _ = await asyncio.wait({start_task, watch_task}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if start_task in done:
            return start_task.result()
        if watch_task in done:
            watch_task.result()
        raise KubernetesPoolError(await late())
    finally:
        for task in (start_task, watch_task):
            task.cancel()
        await asyncio.wait({start_task, watch_task})


async def _pods(name: str, namespace: str) -> list[dict]:
    from kr8s.asyncio.objects import Pod

    return [pod.raw async for pod in Pod.list(namespace=namespace, label_selector=f"dask.org/cluster-name={name}")]


async def _watch_image_pulls(name: str, namespace: str) -> None:
    """Raise as soon as a Pod of the cluster waits on an image its node cannot pull."""
    while True:
        await asyncio.sleep(1.0)
        try:
            pods = await _pods(name, namespace)
        except Exception:  # noqa: BLE001 - watching is best effort; KubeCluster reports real API errors
            continue
        for pod in pods:
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                waiting = (status.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") in _PULL_FAILURES:
                    image = status.get("image") or "?"
                    raise KubernetesPoolError(
                        f"the nodes cannot pull the image {image!r} of Pod {pod['metadata']['name']} "
                        f"({waiting['reason']}: {waiting.get('message') or 'no message'}). Check the name and "
                        f"tag (docker pull {image}), push the image to a registry the cluster can reach, and for a "
                        "private registry give image_pull_secrets=[...] (a docker-registry Secret in the "
                        "namespace); the DaskCluster was deleted")


async def _late_message(name: str, namespace: str, waited: float) -> str:
    try:
        pods = await _pods(name, namespace)
    except Exception as exc:  # noqa: BLE001 - the message still helps without the Pods
        described = f"could not list its Pods ({exc})"
    else:
        described = "; ".join(_describe_pod(pod) for pod in pods) or "no Pods (is the Dask operator running? " \
                                                                      "kubectl get pods -n dask-operator)"
    return (f"the DaskCluster {name} in namespace {namespace} did not start within {waited:g} s: {described}. "
            "The DaskCluster was deleted. Fix what the Pods wait for (kubectl describe pod ... says more), or "
            "wait longer with wait_timeout=")


def _describe_pod(pod: dict) -> str:
    status = pod.get("status") or {}
    parts = [status.get("phase") or "Unknown"]
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            parts.append(f"unschedulable: {condition.get('message') or condition.get('reason')}")
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting")
        if waiting:
            parts.append(f"{container.get('name')} waiting: {waiting.get('reason')} {waiting.get('message') or ''}"
                         .rstrip())
        elif not container.get("ready"):
            parts.append(f"{container.get('name')} not ready")
    return f"{pod['metadata']['name']} {', '.join(parts)}"


# -------------------------------------------------------------------------------------------- deleting


async def _delete_daskcluster(api: Any, name: str, namespace: str, timeout: float) -> None:
    """Delete the DaskCluster ``name`` if it exists, and wait until it is gone. Keeps looking for a second after
    it seems absent: a create request cancelled in flight may still land."""
    start = time.monotonic()
    absent_since: float | None = None
    deleting = False
    while time.monotonic() - start < timeout:
        async with api.call_api("GET", version=f"{DASK_GROUP}/v1", url=f"daskclusters/{name}", namespace=namespace,
                                raise_for_status=False) as resp:
            code = resp.status_code
        if code == 404:
            absent_since = absent_since or time.monotonic()
            if time.monotonic() - absent_since >= 1.0:
                return
            deleting = False
        elif code == 200 and not deleting:
            absent_since = None
            async with api.call_api("DELETE", version=f"{DASK_GROUP}/v1", url=f"daskclusters/{name}",
                                    namespace=namespace, raise_for_status=False) as resp:
                deleting = resp.status_code < 300 or resp.status_code == 404
        await asyncio.sleep(0.25)
    raise TimeoutError(f"DaskCluster {name} was not deleted within {timeout:g} s")


async def _delete_worker_groups(name: str, namespace: str) -> None:
    """Delete the cluster's DaskWorkerGroups, which the garbage collector may miss.

    The operator creates the default DaskWorkerGroup without an owner and adopts it a moment later; a DaskCluster
    deleted in between (a start interrupted early) leaves it orphaned for good. Its worker Deployments are owned by
    it, so they go with it.
    """
    import kr8s

    api = await kr8s.asyncio.api()
    async with api.call_api("GET", version=f"{DASK_GROUP}/v1", url="daskworkergroups", namespace=namespace,
                            params={"labelSelector": f"dask.org/cluster-name={name}"},
                            raise_for_status=False) as resp:
        if resp.status_code != 200:
            raise RuntimeError(f"cannot list its DaskWorkerGroups: {resp.status_code} {resp.text[:200]}")
        groups = [item["metadata"]["name"] for item in resp.json().get("items") or []]
    for group in groups:
        async with api.call_api("DELETE", version=f"{DASK_GROUP}/v1", url=f"daskworkergroups/{group}",
                                namespace=namespace, raise_for_status=False) as resp:
            if resp.status_code >= 300 and resp.status_code != 404:
                raise RuntimeError(f"cannot delete DaskWorkerGroup {group}: {resp.status_code} {resp.text[:200]}")


def _delete_cluster(cluster: Any, timeout: float, leftover: Any) -> bool:
    """Delete the DaskCluster and wait until it is gone; True when it is. Failures are logged, not raised: the
    sweep's own outcome (or Ctrl-C) matters more, and the log says how to finish the job."""
    try:
        cluster.close(timeout=timeout)
        cluster.sync(_delete_worker_groups, cluster.name, cluster.namespace)
    except Exception as exc:  # noqa: BLE001
        leftover(f"{type(exc).__name__}: {exc}")
        return False
    return True


def _stop_loop(cluster: Any) -> None:
    """Stop the event-loop thread KubeCluster started for itself (its close() leaves it running)."""
    runner = getattr(cluster, "_loop_runner", None)
    if runner is not None:
        with contextlib.suppress(Exception):
            runner.stop()


@contextlib.contextmanager
def _sigint_held(give_up: Any) -> Iterator[None]:
    """Hold Ctrl-C back while the cluster is deleted (then raise it); a second Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        received.append(signum)
        if len(received) >= 2:
            raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main interpreter
        yield
        return
    try:
        yield
    except KeyboardInterrupt:
        if len(received) >= 2:
            give_up("interrupted twice while it was being deleted")
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    if len(received) == 1:
        if callable(previous):
            previous(signal.SIGINT, None)
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt


# -------------------------------------------------------------------------------------------- resizing


def _check_bounds(minimum: int, maximum: int) -> None:
    for what, value in (("minimum", minimum), ("maximum", maximum)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"adapt: {what}={value!r} is not a number of worker Pods: give a whole number >= 0, "
                             "e.g. adapt(minimum=1, maximum=16)")
    if maximum < 1:
        raise ValueError("adapt: maximum=0 leaves the sweep without a worker: give maximum >= 1 (minimum=0 lets "
                         "an idle cluster shrink to no worker Pods)")
    if minimum > maximum:
        raise ValueError(f"adapt: minimum={minimum} is above maximum={maximum}: give minimum <= maximum, e.g. "
                         f"adapt(minimum={maximum}, maximum={minimum})")


async def _check_resize(namespace: str, wanted: tuple[tuple[str, str, str], ...], what: str) -> None:
    """Before changing anything: may this identity do every request of the resize?"""
    import kr8s

    api = await kr8s.asyncio.api()
    answers = await asyncio.gather(*(_can_i(api, namespace, *permission) for permission in wanted))
    missing = [permission for permission, allowed in zip(wanted, answers) if allowed is False]
    if missing:
        listed = ", ".join(f"{verb} {_qualified(resource, group)}" for verb, group, resource in missing)
        raise KubernetesPoolError(
            f"your Kubernetes identity may not {listed} in namespace {namespace!r}, which {what} needs, so nothing "
            f"was changed. {_grant_advice(namespace)}. Check with: {_can_i_command(*missing[0], namespace)}")


async def _end_adaptivity(name: str, namespace: str, timeout: float) -> None:
    """Delete the cluster's DaskAutoscaler, if any, and wait until it is gone.

    The operator's timer holds a finalizer on it and releases it once the timer has stopped, so after this no
    autoscaler step can overwrite the worker count that follows. An operator that never releases it (not running)
    cannot patch anything either: then this gives up waiting after ``timeout`` seconds."""
    import kr8s

    api = await kr8s.asyncio.api()

    async def gone(method: str) -> bool:
        async with api.call_api(method, version=f"{DASK_GROUP}/v1", url=f"daskautoscalers/{name}",
                                namespace=namespace, raise_for_status=False) as resp:
            if resp.status_code >= 400 and resp.status_code != 404:  # explained by _explain, like KubeCluster's
                raise kr8s.ServerError(resp.text, status=_status(resp.text), response=resp)
            return resp.status_code == 404

    if await gone("DELETE"):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await gone("GET"):
            return
        await asyncio.sleep(0.25)
    logger.warning("the DaskAutoscaler %s in namespace %s was not gone %g s after its deletion (is the Dask operator "
                   "running?); scaling anyway", name, namespace, timeout)


# -------------------------------------------------------------------------------------------- checks


async def _check_access(api: Any, namespace: str, name: str, port_forward: bool) -> None:
    """Before creating anything: the operator's CRDs are served, the name is free, and RBAC allows the rest."""
    async with api.call_api("GET", version=f"{DASK_GROUP}/v1", url="daskclusters", namespace=namespace,
                            params={"fieldSelector": f"metadata.name={name}"}, raise_for_status=False) as resp:
        code, text = resp.status_code, resp.text
    if code == 404:
        raise _no_operator()
    if code == 403:
        raise KubernetesPoolError(_forbidden_message(_status(text), "list", DASK_GROUP, "daskclusters", namespace))
    if code >= 400:
        raise KubernetesPoolError(f"the Kubernetes API answered {code} to listing DaskClusters in namespace "
                                  f"{namespace!r}: {_status(text).get('message') or text[:300]}")
    if json.loads(text).get("items"):
        raise KubernetesPoolError(
            f"a DaskCluster named {name!r} already exists in namespace {namespace!r}: give another name (or none, "
            f"for a fresh one), or delete it first with: kubectl delete daskcluster {name} -n {namespace}")
    wanted = START_PERMISSIONS + (PORT_FORWARD_PERMISSIONS if port_forward else ())
    answers = await asyncio.gather(*(_can_i(api, namespace, *permission) for permission in wanted))
    missing = [permission for permission, allowed in zip(wanted, answers) if allowed is False]
    if missing:
        raise KubernetesPoolError(_rbac_message(missing, namespace))


async def _can_i(api: Any, namespace: str, verb: str, group: str, resource: str) -> bool | None:
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


def _status(text: str) -> dict[str, Any]:
    try:
        status = json.loads(text)
    except ValueError:
        return {}
    return status if isinstance(status, dict) else {}


def _qualified(resource: str, group: str) -> str:
    plural, _, sub = resource.partition("/")
    name = f"{plural}.{group}" if group else plural
    return f"{name}/{sub}" if sub else name


def _can_i_command(verb: str, group: str, resource: str, namespace: str | None) -> str:
    plural, _, sub = resource.partition("/")
    what = _qualified(plural, group) + (f" --subresource={sub}" if sub else "")
    return f"kubectl auth can-i {verb} {what}" + (f" -n {namespace}" if namespace else "")


def _grant_advice(namespace: str | None) -> str:
    where = f" -n {namespace}" if namespace else ""
    return ("Grant it the Role that 'gmat-sweep k8s render --image IMAGE --driver-command ...' prints (a namespaced "
            "Role named NAME-driver with exactly the verbs a sweep uses, gmat_sweep.kubernetes.DRIVER_RULES): apply "
            "it and bind it to your user or the driver Pod's ServiceAccount (kubectl create rolebinding "
            f"gmat-sweep --role=NAME-driver --user=YOU{where}), or ask a cluster admin")


def _rbac_message(missing: list[tuple[str, str, str]], namespace: str) -> str:
    listed = ", ".join(f"{verb} {_qualified(resource, group)}" for verb, group, resource in missing)
    return (f"your Kubernetes identity may not {listed} in namespace {namespace!r}: a sweep needs that to start, "
            f"watch and delete its Dask cluster, so nothing was created. {_grant_advice(namespace)}. Check with: "
            f"{_can_i_command(*missing[0], namespace)}")


def _forbidden_message(status: dict[str, Any], verb: str, group: str, resource: str, namespace: str | None) -> str:
    """What a 403 from the API server means and what to do, from the server's own Status message."""
    message = str(status.get("message") or "")
    if m := _FORBIDDEN.search(message):
        verb, resource, group = m["verb"], m["resource"], m["group"]
        namespace = m["namespace"] or namespace
    where = f" in namespace {namespace!r}" if namespace else " at the cluster scope"
    return (f"the Kubernetes API refused to let you {verb} {_qualified(resource, group)}{where} (403 Forbidden"
            f"{': ' + message if message else ''}). {_grant_advice(namespace)}. Check with: "
            f"{_can_i_command(verb, group, resource, namespace)}")


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


def _explain(exc: BaseException, namespace: str | None, name: str) -> KubernetesPoolError | None:
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
        status = exc.status if isinstance(exc.status, dict) else _status(response.text)
        if response.status_code == 403:
            return KubernetesPoolError(_forbidden_message(status, verb, group, resource, ns or namespace))
        if response.status_code == 404 and group == DASK_GROUP and verb in ("create", "list"):
            return _no_operator()
        return KubernetesPoolError(
            f"the Kubernetes API answered {response.status_code} to '{verb} {_qualified(resource, group)}' for the "
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
def _explained(namespace: str | None, name: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        explained = _explain(exc, namespace, name)
        if explained is None or explained is exc:
            raise
        raise explained from exc


__all__ = ["KubernetesPool", "KubernetesPoolError", "cluster_name"]
