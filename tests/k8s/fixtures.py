"""Fixtures for tests that need a Kubernetes cluster: an emulated one on 127.0.0.1 (see emulator.py).

A plugin of the whole suite (``pytest_plugins`` in tests/conftest.py), so any test module can ask for them::

    def test_something(k8s_client, k8s_emulator):
        futures = k8s_client.map(...)                      # 2 single-threaded workers, one per Pod
        pod = k8s_emulator.pod_for_worker(name)            # Dask worker name -> its Pod
        k8s_emulator.delete_pod(pod["metadata"]["name"])   # eviction: its processes die, the Deployment
                                                           # starts a replacement Pod
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    from .emulator import EmulatedKubernetes, kubeconfig_env
except ImportError as exc:  # the [test] and [kubernetes] extras are not installed: the fixtures skip
    EmulatedKubernetes = None  # type: ignore[assignment,misc]
    _MISSING = str(exc)

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_NAME = "emulated"
IMAGE = "gmat-sweep:emulated"  # a pinned tag; the emulated kubelet runs the local venv instead of an image
N_WORKERS = 2


@pytest.fixture(scope="module")
def k8s_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedKubernetes]:
    """An API server with the Dask CRDs, the real Dask operator and a node; KUBECONFIG points at it.

    Module-scoped (about 1.5 s to start): nothing of it runs, and KUBECONFIG is restored, outside the module.

    ``k8s_emulator.shared_dir`` is the local folder the emulated claim mounts (pass it as ``mount_path``).
    """
    if EmulatedKubernetes is None:
        pytest.skip(f"the emulated Kubernetes cluster needs the test extras: {_MISSING}")
    workdir = tmp_path_factory.mktemp("k8s")
    with EmulatedKubernetes(workdir, pythonpath=[ROOT / "tests", ROOT / "src", ROOT]) as kube, \
            kubeconfig_env(kube.kubeconfig):
        yield kube


class ClusterPool:
    """At most one live ``KubeCluster`` (the scheduler ports are fixed), shared by the tests of a module and
    started again when a test closed it."""

    def __init__(self, kube: EmulatedKubernetes) -> None:
        self.kube = kube
        self.cluster = None

    def get(self):
        from distributed.core import Status

        if self.cluster is not None and self.cluster.status not in (Status.closing, Status.closed):
            return self.cluster
        self.close()
        self.cluster = self._start()
        return self.cluster

    def _start(self):
        from dask_kubernetes.operator import KubeCluster

        from gmat_sweep.kubernetes import cluster_spec

        spec = cluster_spec(CLUSTER_NAME, IMAGE, N_WORKERS, claim="emulated-shared",
                            mount_path=str(self.kube.shared_dir), scheduler_service_type="LoadBalancer",
                            resources={"requests": {"memory": "512Mi"}})
        return KubeCluster(custom_cluster_spec=spec, namespace=self.kube.namespace, quiet=True,
                           resource_timeout=60, shutdown_on_close=True)

    def close(self) -> None:
        """Close the cluster, then wait until the operator and the node removed everything it had."""
        cluster, self.cluster = self.cluster, None
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=30)
        if self.kube.cluster_objects(CLUSTER_NAME)["daskclusters"]:  # a failed start leaves it behind
            self.kube.delete("daskclusters", CLUSTER_NAME)
        self.kube.wait_for_cluster_gone(CLUSTER_NAME, timeout=30)


@pytest.fixture(scope="module")
def _kube_clusters(k8s_emulator: EmulatedKubernetes) -> Iterator[ClusterPool]:
    pool = ClusterPool(k8s_emulator)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture()
def kube_cluster(_kube_clusters: ClusterPool):
    """A real ``KubeCluster`` from :func:`gmat_sweep.kubernetes.cluster_spec`: 2 worker Pods, the emulated
    claim mounted at ``k8s_emulator.shared_dir``, a LoadBalancer scheduler Service on 127.0.0.1:8786.

    Shared by the tests of a module (starting one takes ~8 s); a test may close it, and the next test that
    asks gets a new one. At the end of the module everything the operator made for it must be gone.
    """
    return _kube_clusters.get()


@pytest.fixture()
def k8s_client(kube_cluster):
    """A ``distributed.Client`` connected to :func:`kube_cluster`, with both workers up."""
    from distributed import Client

    with Client(kube_cluster, timeout="30s") as client:
        client.wait_for_workers(N_WORKERS, timeout=60)
        yield client
