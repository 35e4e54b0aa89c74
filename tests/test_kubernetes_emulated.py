"""The Kubernetes path end to end, against an emulated cluster (tests/k8s): the real Dask operator and the real
``KubeCluster(custom_cluster_spec=cluster_spec(...))``, with Pods running as local processes on 127.0.0.1.
"""

from __future__ import annotations

import time

import pytest

for _module in ("kmock", "kopf", "dask_kubernetes", "psutil"):
    pytest.importorskip(_module)

try:  # tests/ on sys.path (pytest's rootdir-relative import of a test folder without __init__.py)
    from k8s.conftest import (CLUSTER_NAME, IMAGE, N_WORKERS, _kube_clusters, k8s_client, k8s_emulator,  # noqa: F401
                              kube_cluster)
    from k8s.emulator import field_selector_matches, label_selector_matches, pid_alive, wait_for
    from k8s.tasks import gmat_sweep_version, pid_after, shared_dir
except ImportError:  # tests/ became a package
    from tests.k8s.conftest import (CLUSTER_NAME, IMAGE, N_WORKERS, _kube_clusters, k8s_client,  # noqa: F401
                                    k8s_emulator, kube_cluster)
    from tests.k8s.emulator import field_selector_matches, label_selector_matches, pid_alive, wait_for
    from tests.k8s.tasks import gmat_sweep_version, pid_after, shared_dir

pytestmark = pytest.mark.timeout(120)

# The operator tests share one emulated DaskCluster (starting one takes ~8 s) until the closing test closes it.
# Put tests that need it (k8s_client / kube_cluster) above that one; below it they still work, on a freshly
# started cluster. A GMAT sweep through DaskPool is a few lines:
#     def test_sweep_on_kubernetes(k8s_client, k8s_emulator):
#         with DaskPool(client=k8s_client) as pool:
#             df = sweep(script, grid=..., backend=pool, out=k8s_emulator.shared_dir / "sweep")


def test_work_spreads_over_worker_pods_and_survives_an_eviction(k8s_client, k8s_emulator):
    workers = k8s_client.scheduler_info()["workers"]
    assert len(workers) == N_WORKERS
    pods = k8s_emulator.worker_pods(CLUSTER_NAME)
    assert len(pods) == N_WORKERS and all(p["status"]["phase"] == "Running" for p in pods)
    # Every worker sees the claim at its mount path, as GMAT_SWEEP_SHARED.
    assert set(k8s_client.run(shared_dir).values()) == {str(k8s_emulator.shared_dir)}
    # ... and imports the same gmat-sweep as the driver (the image's; here the venv's).
    import gmat_sweep

    assert set(k8s_client.run(gmat_sweep_version).values()) == {gmat_sweep.__version__}

    # One single-threaded worker process per Pod: a small map lands on 2 distinct processes.
    results = k8s_client.gather(k8s_client.map(pid_after, range(20), delay=0.05, pure=False))
    assert [square for _, square in results] == [x * x for x in range(20)]
    pids = {pid for pid, _ in results}
    assert len(pids) == N_WORKERS

    # Evict one worker Pod mid-computation: its process dies, Dask reschedules its tasks, results stay whole.
    futures = k8s_client.map(pid_after, range(100, 160), delay=0.1, pure=False)
    wait_for(lambda: sum(f.done() for f in futures) >= 6, 30, "the computation to get going")
    victim_name = next(iter(k8s_client.scheduler_info()["workers"].values()))["name"]
    victim = k8s_emulator.pod_for_worker(victim_name)
    victim_pids = k8s_emulator.delete_pod(victim["metadata"]["name"], wait=True)
    assert victim_pids and not any(pid_alive(pid) for pid in victim_pids)
    results = k8s_client.gather(futures)
    assert [square for _, square in results] == [x * x for x in range(100, 160)]

    # The worker Deployment replaces the evicted Pod, as on a real cluster.
    wait_for(lambda: len([p for p in k8s_emulator.worker_pods(CLUSTER_NAME)
                          if p.get("status", {}).get("phase") == "Running"]) == N_WORKERS, 30,
             "a replacement worker Pod")
    assert victim["metadata"]["name"] not in {p["metadata"]["name"] for p in k8s_emulator.worker_pods(CLUSTER_NAME)}
    assert not k8s_emulator.errors


DRIVER = """
import os, pathlib
from distributed import Client
with Client(timeout="30s") as client:  # DASK_SCHEDULER_ADDRESS, set by the manifest
    total = client.submit(sum, [1, 2, 3]).result(timeout=30)
out = pathlib.Path(os.environ["GMAT_SWEEP_SHARED"], "driver.txt")
out.write_text(f"{total} {os.environ['GMAT_SWEEP_CLUSTER']}")
"""


def test_rendered_driver_pod_reaches_the_scheduler_and_the_shared_volume(kube_cluster, k8s_emulator):
    from gmat_sweep.kubernetes import render_all

    objs = render_all(CLUSTER_NAME, IMAGE, N_WORKERS, namespace=k8s_emulator.namespace, claim="emulated-shared",
                      mount_path=str(k8s_emulator.shared_dir), driver_command=["python", "-c", DRIVER])
    [driver] = [o for o in objs if o["kind"] == "Pod"]
    name = driver["metadata"]["name"]
    k8s_emulator.apply([driver])
    try:
        def finished():
            [pod] = [p for p in k8s_emulator.objects("pods") if p["metadata"]["name"] == name]
            return pod.get("status", {}).get("phase") in ("Succeeded", "Failed") and pod["status"]["phase"]

        assert wait_for(finished, 60, "the driver Pod to finish") == "Succeeded", k8s_emulator.pod_log(name)
        assert (k8s_emulator.shared_dir / "driver.txt").read_text() == f"6 {CLUSTER_NAME}"
    finally:
        k8s_emulator.delete("pods", name)


def test_closing_the_cluster_removes_everything(kube_cluster, k8s_emulator):
    made = k8s_emulator.cluster_objects(CLUSTER_NAME)
    assert made["daskclusters"] == [CLUSTER_NAME]
    assert f"{CLUSTER_NAME}-scheduler" in made["deployments"] and f"{CLUSTER_NAME}-scheduler" in made["services"]
    assert made["daskworkergroups"] == [f"{CLUSTER_NAME}-default"]
    assert len(made["pods"]) == 1 + N_WORKERS
    pids = [pid for pod in made["pods"] for pid in k8s_emulator.pod_pids(pod)]
    assert len(pids) >= 1 + N_WORKERS

    start = time.monotonic()
    kube_cluster.close(timeout=30)
    assert not k8s_emulator.cluster_objects(CLUSTER_NAME)["daskclusters"]  # close() waits for this
    k8s_emulator.wait_for_cluster_gone(CLUSTER_NAME, timeout=30)  # the operator's children, by GC
    wait_for(lambda: not any(pid_alive(pid) for pid in pids), 15, "every Pod process to exit")
    assert time.monotonic() - start < 30
    assert not k8s_emulator.errors


def test_manual_manifests_run_without_the_operator(_kube_clusters, k8s_emulator):
    """The --no-operator path: plain Deployments + Service, workers named after their Pods, kubectl scale."""
    from distributed import Client

    from gmat_sweep.kubernetes import manual_manifests

    _kube_clusters.close()  # one scheduler at a time: the emulated Pods share 127.0.0.1:8786
    objs = manual_manifests("manual", IMAGE, N_WORKERS, namespace=k8s_emulator.namespace, claim="emulated-shared",
                            mount_path=str(k8s_emulator.shared_dir), scheduler_service_type="LoadBalancer",
                            resources={"requests": {"memory": "512Mi"}})
    k8s_emulator.apply(objs)
    try:
        with Client("tcp://127.0.0.1:8786", timeout="30s") as client:
            client.wait_for_workers(N_WORKERS, timeout=60)
            names = {w["name"] for w in client.scheduler_info()["workers"].values()}
            assert names == {p["metadata"]["name"] for p in k8s_emulator.worker_pods("manual")}
            results = client.gather(client.map(pid_after, range(20), delay=0.05, pure=False))
            assert len({pid for pid, _ in results}) == N_WORKERS
            k8s_emulator.patch("deployments", "manual-worker", {"spec": {"replicas": 1}})
            wait_for(lambda: len(client.scheduler_info()["workers"]) == 1, 30, "the scale-down to one worker")
            assert client.submit(pid_after, 7, pure=False).result(timeout=30)[1] == 49
    finally:
        for obj in objs:
            k8s_emulator.delete(obj["kind"].lower() + "s", obj["metadata"]["name"])
        k8s_emulator.wait_for_cluster_gone("manual", timeout=30)


def test_selectors_of_the_emulated_api_server():
    labels = {"dask.org/component": "worker", "dask.org/cluster-name": "a"}
    assert label_selector_matches("dask.org/component=worker,dask.org/cluster-name==a", labels)
    assert not label_selector_matches("dask.org/component=worker,dask.org/cluster-name=b", labels)
    assert label_selector_matches("dask.org/component in (worker, scheduler),!missing", labels)
    assert label_selector_matches("dask.org/cluster-name notin (b),dask.org/component", labels)
    assert not label_selector_matches("dask.org/component!=worker", labels)
    pod = {"metadata": {"name": "p"}, "status": {"phase": "Running"}}
    assert field_selector_matches("metadata.name=p,status.phase=Running", pod)
    assert not field_selector_matches("status.phase!=Running", pod)
    assert field_selector_matches("metadata.name=p,", pod)
