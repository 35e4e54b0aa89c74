"""The DaskCluster's life on Kubernetes: starting it (and saying why a Pod does not start), resizing it, deleting
it even on Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from ...distribution import install_hint
from ...kubernetes import DASK_GROUP
from .permissions import (KubernetesPoolError, api_status, can_i, can_i_command, check_access, explain, grant_advice,
                          qualified)

logger = logging.getLogger("gmat_sweep.kubernetes")

#: Seconds a cluster may take to start (scheduler Pod running and reachable). Pulling a fresh image can take minutes.
DEFAULT_WAIT = 600.0
# The scheduler's guess for a task it has not timed yet (distributed.scheduler.unknown-task-duration), and a floor
# that bounds how many tasks an adaptive sweep keeps submitted.
UNKNOWN_RUN = 0.5
SHORTEST_TASK = 0.25
# Waiting reasons after which a container never starts by itself (a plain ErrImagePull may be a registry hiccup).
_PULL_FAILURES = frozenset({"ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"})
CLEANUP_WAIT = 60.0


# -------------------------------------------------------------------------------------------- starting


def mount_of(spec: dict) -> str | None:
    [container] = spec["spec"]["worker"]["spec"]["containers"]
    mounts = container.get("volumeMounts") or []
    return mounts[0]["mountPath"] if mounts else None


def start_cluster(spec: dict, namespace: str | None, wait_timeout: float, port_forward: bool) -> Any:
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


def connect(cluster: Any, wait_timeout: float) -> Any:
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
                with sigint_held(lambda why: logger.error(
                        "a DaskCluster %s may be left behind (%s): kubectl delete daskcluster %s", self.name, why,
                        self.name)):
                    if self._gmat_started:
                        self._gmat_done.wait(CLEANUP_WAIT)
                    self._gmat_discard()
                raise

        def _gmat_discard(self) -> None:
            KubeCluster._instances.discard(self)  # nothing for its atexit reaper to close
            self.status = Status.closed
            stop_loop(self)

        async def _start(self) -> None:
            self._gmat_started = True
            try:
                await self._gmat_start()
            except KubernetesPoolError:
                raise
            except Exception as exc:
                explained = explain(exc, self.namespace, self.name)
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
            await check_access(api, self.namespace, self.name, self._gmat_port_forward)
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
                await _delete_daskcluster(api, self.name, self.namespace, CLEANUP_WAIT)
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


def delete_cluster(cluster: Any, timeout: float, leftover: Any) -> bool:
    """Delete the DaskCluster and wait until it is gone; True when it is. Failures are logged, not raised: the
    sweep's own outcome (or Ctrl-C) matters more, and the log says how to finish the job."""
    try:
        cluster.close(timeout=timeout)
        cluster.sync(_delete_worker_groups, cluster.name, cluster.namespace)
    except Exception as exc:  # noqa: BLE001
        leftover(f"{type(exc).__name__}: {exc}")
        return False
    return True


def stop_loop(cluster: Any) -> None:
    """Stop the event-loop thread KubeCluster started for itself (its close() leaves it running)."""
    runner = getattr(cluster, "_loop_runner", None)
    if runner is not None:
        with contextlib.suppress(Exception):
            runner.stop()


@contextlib.contextmanager
def sigint_held(give_up: Any) -> Iterator[None]:
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


def check_bounds(minimum: int, maximum: int) -> None:
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


async def check_resize(namespace: str, wanted: tuple[tuple[str, str, str], ...], what: str) -> None:
    """Before changing anything: may this identity do every request of the resize?"""
    import kr8s

    api = await kr8s.asyncio.api()
    answers = await asyncio.gather(*(can_i(api, namespace, *permission) for permission in wanted))
    missing = [permission for permission, allowed in zip(wanted, answers) if allowed is False]
    if missing:
        listed = ", ".join(f"{verb} {qualified(resource, group)}" for verb, group, resource in missing)
        raise KubernetesPoolError(
            f"your Kubernetes identity may not {listed} in namespace {namespace!r}, which {what} needs, so nothing "
            f"was changed. {grant_advice(namespace)}. Check with: {can_i_command(*missing[0], namespace)}")


async def end_adaptivity(name: str, namespace: str, timeout: float) -> None:
    """Delete the cluster's DaskAutoscaler, if any, and wait until it is gone.

    The operator's timer holds a finalizer on it and releases it once the timer has stopped, so after this no
    autoscaler step can overwrite the worker count that follows. An operator that never releases it (not running)
    cannot patch anything either: then this gives up waiting after ``timeout`` seconds."""
    import kr8s

    api = await kr8s.asyncio.api()

    async def gone(method: str) -> bool:
        async with api.call_api(method, version=f"{DASK_GROUP}/v1", url=f"daskautoscalers/{name}",
                                namespace=namespace, raise_for_status=False) as resp:
            if resp.status_code >= 400 and resp.status_code != 404:  # explained by explain, like KubeCluster's
                raise kr8s.ServerError(resp.text, status=api_status(resp.text), response=resp)
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
