"""The Kubernetes path end to end, against an emulated cluster (tests/k8s): the real Dask operator and the real
``KubeCluster(custom_cluster_spec=cluster_spec(...))``, with Pods running as local processes on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

for _module in ("kmock", "kopf", "dask_kubernetes", "psutil"):
    pytest.importorskip(_module)

from conftest import run_in_thread  # tests/ is on sys.path (pytest's rootdir-relative import of test modules)
from gmat_sweep.backends.dask.cluster import scheduler_workers
from k8s.emulator import (EmulatedKubernetes, field_selector_matches, kubeconfig_env, label_selector_matches,
                          pid_alive, wait_for)
from k8s.fixtures import CLUSTER_NAME, IMAGE, N_WORKERS
from k8s.tasks import gmat_sweep_version, pid_after, shared_dir

pytestmark = pytest.mark.timeout(120)

# The operator tests share one emulated DaskCluster (starting one takes ~8 s) until the closing test closes it.
# Put tests that need it (k8s_client / kube_cluster) above that one; below it they still work, on a freshly
# started cluster. A GMAT sweep through DaskPool is a few lines:
#     def test_sweep_on_kubernetes(k8s_client, k8s_emulator):
#         with DaskPool(client=k8s_client) as pool:
#             df = sweep(script, grid=..., backend=pool, out=k8s_emulator.shared_dir / "sweep")


def test_work_spreads_over_worker_pods_and_survives_an_eviction(k8s_client, k8s_emulator):
    workers = scheduler_workers(k8s_client)
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
    victim_name = next(iter(scheduler_workers(k8s_client).values()))["name"]
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
    k8s_emulator.wait_for_cluster_gone(CLUSTER_NAME)  # the operator's children, by GC
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
            names = {w["name"] for w in scheduler_workers(client).values()}
            assert names == {p["metadata"]["name"] for p in k8s_emulator.worker_pods("manual")}
            results = client.gather(client.map(pid_after, range(20), delay=0.05, pure=False))
            assert len({pid for pid, _ in results}) == N_WORKERS
            # No operator, no autoscaler: a pool on this scheduler cannot adapt, says so, and changes nothing.
            from gmat_sweep.backends.dask import DaskPool, DaskPoolError

            pool = DaskPool(client=client)
            with pytest.raises(DaskPoolError, match=r"cannot adapt the Dask cluster at tcp://127\.0\.0\.1:8786.*"
                                                    r"kubectl scale deployment/NAME-worker --replicas=N$"):
                pool.adapt(1, 4)
            pool.close()
            assert not k8s_emulator.objects("daskautoscalers")
            [worker_deployment] = [d for d in k8s_emulator.objects("deployments")
                                   if d["metadata"]["name"] == "manual-worker"]
            assert worker_deployment["spec"]["replicas"] == N_WORKERS
            assert len(scheduler_workers(client)) == N_WORKERS
            k8s_emulator.patch("deployments", "manual-worker", {"spec": {"replicas": 1}})
            wait_for(lambda: len(scheduler_workers(client)) == 1, 30, "the scale-down to one worker")
            assert client.submit(pid_after, 7, pure=False).result(timeout=30)[1] == 49
    finally:
        for obj in objs:
            k8s_emulator.delete(obj["kind"].lower() + "s", obj["metadata"]["name"])
        k8s_emulator.wait_for_cluster_gone("manual")


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


# ------------------------------------------------------------------------------ KubernetesPool: its own cluster
# These start their own DaskCluster (KubernetesPool / gmat-sweep run --backend kubernetes), so they close the
# shared one first: the emulated scheduler Pods share 127.0.0.1:8786.

CLI = [sys.executable, "-m", "gmat_sweep.cli"]
LONG_RUNS = [86400 * 2 + i for i in range(16)]  # TOF values: missions of ~0.25 s, so a signal lands inside one


def kube_pool(n_workers: int, image: str = IMAGE, **options):
    from gmat_sweep.backends.kubernetes import KubernetesPool

    options.setdefault("wait_timeout", 60)
    return KubernetesPool(image, n_workers, scheduler_service_type="LoadBalancer",
                          resources={"requests": {"memory": "512Mi"}}, **options)


def busy_workers(pool) -> list[str]:
    """The workers running a task now; none while the client is between connections to the scheduler (on a loaded
    machine it can lose one and reconnect, and ``processing()`` then has no scheduler to ask)."""
    if pool.client.status != "running":
        return []
    try:
        return [address for address, keys in pool.client.processing().items() if keys]
    except (AttributeError, OSError):  # AttributeError: the connection dropped between the check and the call
        return []


def finished_runs(out) -> int:
    from gmat_sweep.manifest import read_manifest

    with contextlib.suppress(Exception):
        return len(read_manifest(out).entries)
    return 0


def test_sweep_on_its_own_cluster_scales_survives_an_eviction_resumes_and_deletes_it(leo, _kube_clusters,
                                                                                     k8s_emulator):
    from gmat_sweep import Sweep
    from gmat_sweep.backends.kubernetes import KubernetesPoolError

    _kube_clusters.close()
    out = k8s_emulator.shared_dir / "sweeps" / "evicted"
    # Each run propagates 3 days in steps of at most 30 s (8640 steps, a second or more): a worker that joins
    # later still finds work, and an eviction finds a run to interrupt.
    runs = [86400 * 3 + i for i in range(20)]
    with kube_pool(1, claim="emulated-shared", mount_path=str(k8s_emulator.shared_dir)) as pool:
        name = pool.name
        assert name.startswith("gmat-sweep-") and pool.shared_storage  # a claim: workers write into it
        assert k8s_emulator.cluster_objects(name)["daskclusters"] == [name]
        sweep = Sweep(leo, grid={"TOF": runs, "Prop.MaxStep": [30]}, out=out)
        thread, box = run_in_thread(sweep, pool)

        pool.scale(2)  # mid-sweep: the pool's window follows once the new worker passes the gate
        wait_for(lambda: pool.max_workers == 2, 60, "the second worker Pod to join")
        assert finished_runs(out) < len(runs)
        busy = wait_for(lambda: busy_workers(pool), 30, "a busy worker")
        victim = k8s_emulator.pod_for_worker(scheduler_workers(pool.client)[busy[0]]["name"])
        k8s_emulator.delete_pod(victim["metadata"]["name"], wait=True)  # eviction, mid-run

        thread.join(120)
        assert not thread.is_alive() and "error" not in box, box
        counts = sweep.refresh().counts()
        assert counts["missing"] == 0 and counts["ok"] + counts["failed"] == len(runs), counts
        workers = {entry.get("worker") for entry in sweep.manifest.entries.values() if entry["status"] == "ok"}
        assert len(workers) >= 2, workers  # the scaled-up worker took runs

        Sweep.from_manifest(out).resume(backend=pool, progress=False)
        assert Sweep.from_manifest(out).counts() == {"ok": len(runs), "failed": 0, "missing": 0}

        # A permission missing mid-sweep is named, as the API server's 403 says it.
        with k8s_emulator.deny(("patch", "daskworkergroups")), \
                pytest.raises(KubernetesPoolError, match=r"patch daskworkergroups\.kubernetes\.dask\.org in "
                                                         r"namespace 'default'.*k8s render"):
            pool.scale(3)
    assert not k8s_emulator.cluster_objects(name)["daskclusters"]  # close() waits until it is deleted
    k8s_emulator.wait_for_cluster_gone(name)  # and the operator's Pods go with it
    assert not k8s_emulator.errors


def test_cli_ctrl_c_mid_sweep_deletes_the_cluster_and_resume_finishes(leo, tmp_path, _kube_clusters, k8s_emulator):
    from gmat_sweep.manifest import read_manifest

    _kube_clusters.close()
    out = tmp_path / "out"  # no claim: return mode, the driver writes every file
    backend = ["--backend", "kubernetes", "--image", IMAGE, "--scheduler-service-type", "LoadBalancer",
               "--no-progress"]
    grid = f"TOF={LONG_RUNS[0]}:{LONG_RUNS[-1]}:{len(LONG_RUNS)}"
    proc = subprocess.Popen(CLI + ["run", str(leo), "--grid", grid, "--out", str(out), "--workers", "1", *backend],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        [name] = wait_for(lambda: [c["metadata"]["name"] for c in k8s_emulator.objects("daskclusters")], 60,
                          "the CLI's DaskCluster")
        wait_for(lambda: finished_runs(out) >= 1 or proc.poll() is not None, 90, "the sweep to get going")
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert f"DaskCluster {name} is up" in stderr and f"resume with: gmat-sweep resume {out}" in stderr
    assert not k8s_emulator.cluster_objects(name)["daskclusters"]  # deleted before the CLI exited
    k8s_emulator.wait_for_cluster_gone(name)
    assert 0 < len(read_manifest(out).entries) < len(LONG_RUNS)

    done = subprocess.run(CLI + ["resume", str(out), "--workers", "2", *backend], capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr
    assert f"{len(LONG_RUNS)} runs: {len(LONG_RUNS)} ok, 0 failed, 0 missing" in done.stdout
    [second] = re.findall(r"DaskCluster (\S+) is up", done.stderr)
    assert second != name and not k8s_emulator.cluster_objects(second)["daskclusters"]
    k8s_emulator.wait_for_cluster_gone(second)
    assert not k8s_emulator.errors


def test_ctrl_c_while_the_cluster_starts_deletes_what_was_created(_kube_clusters, k8s_emulator):
    _kube_clusters.close()
    created: list[str] = []
    armed = threading.Event()
    armed.set()

    def on_sigint(signum, frame):
        if armed.is_set():  # only while the pool starts: a late signal must not abort the test session
            raise KeyboardInterrupt

    def interrupt_once_created():
        with contextlib.suppress(TimeoutError):
            created.extend(wait_for(lambda: [c["metadata"]["name"] for c in k8s_emulator.objects("daskclusters")],
                                    30, "the DaskCluster"))
            if armed.is_set():
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    previous = signal.signal(signal.SIGINT, on_sigint)
    interrupter = threading.Thread(target=interrupt_once_created, daemon=True)
    try:
        interrupter.start()
        with pytest.raises(KeyboardInterrupt):
            kube_pool(1).close()  # its Pods take seconds to start: the signal lands while it waits for them
    finally:
        armed.clear()
        signal.signal(signal.SIGINT, previous)
        interrupter.join(10)
    [name] = created
    assert not k8s_emulator.cluster_objects(name)["daskclusters"]  # deleted before the KeyboardInterrupt got out
    k8s_emulator.wait_for_cluster_gone(name)  # the operator's worker group too, adopted or not
    assert not k8s_emulator.errors


@pytest.mark.parametrize("rule, named", [
    (("create", "daskclusters"), "create daskclusters.kubernetes.dask.org"),
    (("delete", "daskclusters"), "delete daskclusters.kubernetes.dask.org"),
    (("list", "daskclusters"), "list daskclusters.kubernetes.dask.org"),
    (("list", "pods"), "list pods"),
])
def test_missing_permissions_are_named_before_anything_is_created(rule, named, k8s_emulator):
    from gmat_sweep.backends.kubernetes import KubernetesPoolError

    before = k8s_emulator.objects("daskclusters")
    with k8s_emulator.deny(rule), pytest.raises(KubernetesPoolError) as info:
        kube_pool(1)
    message = str(info.value)
    assert named in message and "namespace 'default'" in message, message
    assert "gmat-sweep k8s render" in message and f"kubectl auth can-i {rule[0]} " in message, message
    assert k8s_emulator.objects("daskclusters") == before  # refused before creating anything


def test_an_image_the_nodes_cannot_pull_fails_fast_and_leaves_nothing(_kube_clusters, k8s_emulator):
    from gmat_sweep.backends.kubernetes import KubernetesPoolError

    _kube_clusters.close()
    image = "gmat-sweep:no-such-tag"
    k8s_emulator.unpullable_images.add(image)
    try:
        # wait_timeout is 60 s: only the pull check can say this within it.
        with pytest.raises(KubernetesPoolError, match=r"cannot pull the image 'gmat-sweep:no-such-tag' of Pod "
                                                      r"(gmat-sweep-\w+)-scheduler-.*ImagePullBackOff") as info:
            kube_pool(1, image=image)
    finally:
        k8s_emulator.unpullable_images.discard(image)
    assert "image_pull_secrets" in str(info.value)
    name = re.search(r"of Pod (gmat-sweep-[0-9a-f]+)-scheduler", str(info.value))[1]
    assert not k8s_emulator.cluster_objects(name)["daskclusters"]
    k8s_emulator.wait_for_cluster_gone(name)


def test_a_cluster_without_the_dask_operator_says_how_to_install_it(tmp_path, k8s_emulator):
    from gmat_sweep.backends.kubernetes import OPERATOR_INSTALL, KubernetesPoolError

    with EmulatedKubernetes(tmp_path / "bare", dask_crds=False) as bare, kubeconfig_env(bare.kubeconfig):
        with pytest.raises(KubernetesPoolError, match="no Dask operator") as info:
            kube_pool(1)
        assert OPERATOR_INSTALL in str(info.value) and "--no-operator" in str(info.value)
    # The CRDs without a running operator: KubeCluster's own check, said plainly, and nothing left behind.
    with EmulatedKubernetes(tmp_path / "crds", operator=False) as crds, kubeconfig_env(crds.kubeconfig):
        with pytest.raises(KubernetesPoolError, match="operator is not running"):
            kube_pool(1, wait_timeout=3)
        assert not crds.objects("daskclusters") and not crds.objects("daskworkergroups")


# ------------------------------------------------------------------------------ adaptive scaling (the operator's)
# The Dask operator's autoscaler runs for real: its 5 s timer asks the scheduler Pod's HTTP API for the adaptive
# target through the scheduler Service (routed by the emulated node), patches the worker group, and the operator turns
# that into worker Deployments and Pods, retiring workers through the same API before it deletes their Pods.

DOCS = Path(__file__).resolve().parents[1] / "docs" / "kubernetes.md"
EMULATED = {"scheduler_service_type": "LoadBalancer", "resources": {"requests": {"memory": "512Mi"}},
            "wait_timeout": 60}
ADAPT_RUNS = 48


def tofs_lasting(leo, tmp_path, seconds: float, n: int) -> list[int]:
    """``n`` propagation durations (TOF overrides, a minute apart) whose runs take about ``seconds`` each here.

    The operator's clock is fixed (a 5 s timer, 15 s between steps), so the backlog must be long in time, whatever
    this machine's speed: one run of two simulated days on a LocalPool says how long a simulated day takes now."""
    from gmat_sweep import Sweep
    from gmat_sweep.backends.local import LocalPool

    probe = Sweep(leo, grid={"TOF": [2 * 86400]}, out=tmp_path / "calibration")
    with LocalPool(1) as pool:
        probe.run(pool, progress=False)
    [entry] = probe.manifest.entries.values()
    per_day = max(entry["duration"] / 2, 1e-3)
    days = max(1.0, seconds / per_day)
    return [round(86400 * days) + 60 * i for i in range(n)]


def run_in_thread_target(fn):
    """Call ``fn`` in a thread; its error lands in ``box``."""
    box: dict = {}

    def target():
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def docs_adapt_example() -> str:
    """The adapt example of docs/kubernetes.md, section 9: the test runs exactly this."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    [block] = [b for b in blocks if "pool.adapt(minimum=1, maximum=4)" in b]
    return block


def ready_worker_pods(kube: EmulatedKubernetes, name: str) -> list[str]:
    return [p["metadata"]["name"] for p in kube.worker_pods(name)
            if p.get("status", {}).get("phase") == "Running"
            and any(c.get("type") == "Ready" and c.get("status") == "True" for c in p["status"].get("conditions", []))]


def worker_replicas(kube: EmulatedKubernetes, name: str) -> int | None:
    """The worker count the DaskWorkerGroup asks for (None once the cluster is deleted)."""
    groups = kube.objects("daskworkergroups", label_selector=f"dask.org/cluster-name={name}")
    return groups[0]["spec"]["worker"]["replicas"] if groups else None


def runs_moved_by_retirement(dask_scheduler) -> int:
    """Runs the scheduler took back from a worker it retired (to start them again on another)."""
    return len({t[0] for t in dask_scheduler.transition_log
                if str(t[0]).startswith("gmat-sweep-runs") and t[1] == "processing" and "retire-workers" in t[4]})


def check_trajectories(df, tofs: list[int]) -> None:
    """The table a correct sweep gives: every run propagates the same orbit from the same state, so all its report
    rows but the last lie on the longest run's trajectory (same steps, same numbers) and the last is at TOF."""
    import pandas as pd

    columns = ["Sat.ElapsedSecs", "Sat.Earth.SMA", "Sat.Earth.ECC"]
    assert set(df["status"]) == {"ok"}
    runs = {run_id: frame.droplevel(0) for run_id, frame in df.groupby(level="run_id")}
    assert sorted(runs) == list(range(len(tofs)))
    reference = runs[max(runs, key=lambda r: tofs[r])][columns]
    for run_id, frame in runs.items():
        assert (frame["TOF"] == tofs[run_id]).all()
        assert frame["Sat.ElapsedSecs"].iloc[-1] == pytest.approx(tofs[run_id], abs=1e-5)
        body = frame[columns].iloc[:-1]
        assert len(body) > 100
        pd.testing.assert_frame_equal(body, reference.iloc[:len(body)])


@pytest.mark.timeout(400)
def test_adapt_grows_with_the_backlog_and_shrinking_loses_no_run(leo, tmp_path, _kube_clusters, k8s_emulator):
    _kube_clusters.close()
    # Runs of about a second: a Pod is busy when the autoscaler retires it, the backlog outlasts the growth.
    tofs = tofs_lasting(leo, tmp_path, 1.0, ADAPT_RUNS)
    out = tmp_path / "adapt"
    ns = {"IMAGE": IMAGE, "options": dict(EMULATED), "script": str(leo), "grid": {"TOF": tofs}, "out": str(out)}
    looked_up = len(k8s_emulator.routed)
    thread, box = run_in_thread_target(lambda: exec(docs_adapt_example(), ns))
    pool = wait_for(lambda: ns.get("pool") or "error" in box, 90, "the example's KubernetesPool")
    assert "error" not in box, box
    name = pool.name

    # One worker Pod becomes 4 while the backlog lasts, and the sweep's runs spread over them as they join.
    wait_for(lambda: len(ready_worker_pods(k8s_emulator, name)) == 4 or not thread.is_alive(), 120,
             "the autoscaler to grow the cluster to 4 worker Pods")
    assert worker_replicas(k8s_emulator, name) == 4
    wait_for(lambda: pool.max_workers == 4, 60, "the pool to let the 4 workers in")
    wait_for(lambda: len(busy_workers(pool)) == 4, 60, "runs on 4 workers")
    assert finished_runs(out) < len(tofs), "the backlog drained before the cluster grew: use longer runs"
    # The operator asked the scheduler over its HTTP API, through the Service's dashboard port: never by Dask RPC.
    lookups = k8s_emulator.routed[looked_up:]
    assert (k8s_emulator.namespace, f"{name}-scheduler", "http-dashboard") in lookups
    assert not [lookup for lookup in lookups if lookup[2] != "http-dashboard"], lookups

    # A lower maximum while every Pod is busy: the operator retires busy workers and deletes their Pods.
    pool.adapt(minimum=1, maximum=2)
    wait_for(lambda: (worker_replicas(k8s_emulator, name) or 4) < 4, 60, "the autoscaler's first step down")
    assert finished_runs(out) < len(tofs), "the backlog drained before the scale-down: use longer runs"
    wait_for(lambda: len(ready_worker_pods(k8s_emulator, name)) <= 3 and len(
        k8s_emulator.worker_pods(name)) <= 3, 60, "a worker Pod to be removed")
    # Whether a retired worker was in the middle of a run at that instant is timing (on a loaded machine it may be
    # between two); when it was, its runs ran again elsewhere. Either way the table below must be whole and right.
    moved = pool.client.run_on_scheduler(runs_moved_by_retirement)
    print(f"runs moved off retired workers: {moved}")

    thread.join(300)
    assert not thread.is_alive() and "error" not in box, box
    check_trajectories(ns["df"], tofs)  # nothing lost, nothing wrong, after Pods were removed mid-run
    assert not k8s_emulator.cluster_objects(name)["daskclusters"]
    k8s_emulator.wait_for_cluster_gone(name)  # the DaskAutoscaler too (adopted by the cluster)
    assert not k8s_emulator.errors


@pytest.mark.timeout(300)
def test_adapt_shrinks_an_idle_cluster_to_its_minimum_and_scale_ends_it(leo, tmp_path, _kube_clusters, k8s_emulator):
    from gmat_sweep import Sweep
    from gmat_sweep.backends.kubernetes import KubernetesPoolError
    from gmat_sweep.kubernetes import DRIVER_RULES

    _kube_clusters.close()
    tofs = tofs_lasting(leo, tmp_path, 1.0, 20)  # 20 runs of about a second: 10 s or so on 2 workers
    # The driver may do exactly what the Role of 'gmat-sweep k8s render' grants, nothing more.
    with k8s_emulator.grant_only(DRIVER_RULES), kube_pool(3) as pool:
        name = pool.name
        wait_for(lambda: len(ready_worker_pods(k8s_emulator, name)) == 3, 60, "3 worker Pods")

        # Bad bounds: one line, before anything is asked of the cluster; nothing created, nothing resized.
        for bounds, message in [((3, 1), r"adapt: minimum=3 is above maximum=1: give minimum <= maximum"),
                                ((-1, 2), r"adapt: minimum=-1 is not a number of worker Pods"),
                                ((1, -2), r"adapt: maximum=-2 is not a number of worker Pods"),
                                ((0, 0), r"adapt: maximum=0 leaves the sweep without a worker"),
                                ((1.5, 4), r"adapt: minimum=1\.5 is not a number of worker Pods")]:
            with pytest.raises(ValueError, match=message) as info:
                pool.adapt(*bounds)
            assert "\n" not in str(info.value)
        with pytest.raises(ValueError, match="invalid number of workers -1"):
            pool.scale(-1)
        # A permission missing: named before anything is created.
        with k8s_emulator.deny(("create", "daskautoscalers")), \
                pytest.raises(KubernetesPoolError, match=r"may not create daskautoscalers\.kubernetes\.dask\.org in "
                                                         r"namespace 'default', which adapt\(minimum=1, maximum=3\) "
                                                         r"needs, so nothing was changed.*k8s render"):
            pool.adapt(minimum=1, maximum=3)
        assert not k8s_emulator.cluster_objects(name)["daskautoscalers"]
        assert worker_replicas(k8s_emulator, name) == 3 and len(k8s_emulator.worker_pods(name)) == 3

        # After a sweep the cluster shrinks, a quarter at most per step, to its minimum.
        pool.adapt(minimum=1, maximum=3)
        assert k8s_emulator.cluster_objects(name)["daskautoscalers"] == [name]
        Sweep(leo, grid={"TOF": [86400 + 60 * i for i in range(6)]}, out=tmp_path / "first").run(pool, progress=False)
        wait_for(lambda: worker_replicas(k8s_emulator, name) == 1 and len(k8s_emulator.worker_pods(name)) == 1, 90,
                 "the autoscaler to shrink the idle cluster to its minimum")

        # scale(n) ends adaptivity: the DaskAutoscaler is gone, and a backlog no longer grows the cluster.
        pool.scale(2)
        assert not k8s_emulator.cluster_objects(name)["daskautoscalers"]
        wait_for(lambda: len(ready_worker_pods(k8s_emulator, name)) == 2, 60, "the second worker Pod")
        sweep = Sweep(leo, grid={"TOF": tofs}, out=tmp_path / "second")
        thread, box = run_in_thread(sweep, pool)
        seen, start = set(), time.monotonic()
        while thread.is_alive():
            seen |= {worker_replicas(k8s_emulator, name), len(k8s_emulator.worker_pods(name))}
            thread.join(0.5)
        assert "error" not in box, box
        assert seen == {2}
        # The check means something only if an autoscaler would have acted meanwhile (its timer runs every 5 s).
        assert time.monotonic() - start > 6, "the backlog was too short to show anything: use longer runs"
        assert sweep.refresh().counts() == {"ok": len(tofs), "failed": 0, "missing": 0}
    assert not k8s_emulator.cluster_objects(name)["daskclusters"]
    k8s_emulator.wait_for_cluster_gone(name)
    assert not k8s_emulator.errors
