"""KubernetesPool: a DaskPool on a DaskCluster it creates through the Dask Operator, and deletes when done."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from ... import kubernetes as manifests
from ..dask import DaskPool

from .cluster import (CLEANUP_WAIT, DEFAULT_WAIT, SHORTEST_TASK, UNKNOWN_RUN, check_bounds, check_resize, connect,
                      delete_cluster, end_adaptivity, mount_of, sigint_held, start_cluster, stop_loop)
from .permissions import KubernetesPoolError, explained

logger = logging.getLogger("gmat_sweep.kubernetes")



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
            manifests.check_label(namespace, "namespace")
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
        self.mount_path = mount_of(spec)
        self.wait_timeout = float(wait_timeout)
        # From outside the cluster a ClusterIP scheduler is reached through a port-forward (KubeCluster's choice).
        port_forward = scheduler_service_type == "ClusterIP" and not os.environ.get("KUBERNETES_SERVICE_HOST")
        self.cluster = start_cluster(spec, namespace, self.wait_timeout, port_forward)
        self.namespace: str = self.cluster.namespace
        self._kube_closed = False
        try:
            self._kube_client = connect(self.cluster, self.wait_timeout)
            try:
                super().__init__(client=self._kube_client, shared_storage=shared_storage, batch_size=batch_size,
                                 timeout=timeout, worker_wait=self.wait_timeout if worker_wait is None else worker_wait)
            except BaseException:
                self._kube_client.close()
                raise
        except BaseException:
            self._kube_closed = True
            with sigint_held(self._leftover):
                delete_cluster(self.cluster, self.wait_timeout, self._leftover)
                stop_loop(self.cluster)
            raise
        logger.info("DaskCluster %s is up in namespace %s (scheduler %s, %d worker Pods of %s); it is deleted when "
                    "the pool closes", self.name, self.namespace, self.address, n_workers, image)

    # ------------------------------------------------------------------------------ resizing

    def scale(self, n: int) -> None:
        """Ask for ``n`` worker Pods now and end adaptive scaling; a running sweep uses them as they join.

        >>> pool.scale(8)  # doctest: +SKIP
        """
        manifests.check_count(n, "number of workers")
        with explained(self.namespace, self.name):
            self.cluster.sync(check_resize, self.namespace, manifests.SCALE_PERMISSIONS, f"scale({n})")
            # The operator patches the worker count from its autoscaler's timer: let that stop before setting ours.
            self.cluster.sync(end_adaptivity, self.name, self.namespace, min(self.wait_timeout, CLEANUP_WAIT))
            self.cluster.scale(n)
        self._adapting = None

    def adapt(self, minimum: int, maximum: int) -> None:
        """Let the Dask operator grow and shrink the worker Pods between ``minimum`` and ``maximum`` with the load.

        The operator asks the scheduler every 5 s how many workers its tasks need, then patches the worker count
        (at most a quarter fewer per step, 15 s apart); while adapting, the pool keeps enough runs submitted for the
        scheduler to see the backlog. ``scale(n)`` ends it.

        >>> pool.adapt(minimum=1, maximum=16)  # doctest: +SKIP
        """
        check_bounds(minimum, maximum)
        with explained(self.namespace, self.name):
            self.cluster.sync(check_resize, self.namespace, manifests.ADAPT_PERMISSIONS,
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
        per_task = max(SHORTEST_TASK, (self._mean_run or UNKNOWN_RUN) * self.runs_per_task())
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
        with sigint_held(self._leftover):
            try:
                super().close()
            finally:
                try:
                    with contextlib.suppress(Exception):
                        self._kube_client.close()
                finally:
                    if delete_cluster(self.cluster, self.wait_timeout, self._leftover):
                        logger.info("deleted DaskCluster %s in namespace %s", self.name, self.namespace)
                    stop_loop(self.cluster)

    def _leftover(self, why: str) -> None:
        logger.error("the DaskCluster %s in namespace %s may still be running (%s); delete it with: "
                     "kubectl delete daskcluster %s -n %s", self.name, self.namespace, why, self.name, self.namespace)

    def __repr__(self) -> str:
        return (f"KubernetesPool(name={self.name!r}, namespace={getattr(self, 'namespace', None)!r}, "
                f"image={self.image!r}, scheduler={getattr(self, 'address', None)!r})")
