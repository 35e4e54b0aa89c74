"""DaskPool on real LocalClusters and real worker processes: the same tables as LocalPool, workers that die or
join late, and every wrong set-up failing fast with a message that names the worker and the fix.

Odd workers are real ``dask worker`` processes started the way the mistake happens in life: GMAT_ROOT naming no
install, an environment without gmat-sweep (``python -S``: the editable install's .pth is never read), another
installed gmat-sweep version earlier on PYTHONPATH, and a worker in its own mount namespace whose ``out=`` path is
a different (empty) folder than the driver's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import warnings

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from gmat_sweep import Sweep  # noqa: E402
from gmat_sweep.backends import LocalPool  # noqa: E402
from gmat_sweep.backends.dask import DaskPool, DaskPoolError  # noqa: E402
from gmat_sweep.backends.dask import deadline  # noqa: E402
from gmat_sweep.backends.dask.cluster import scheduler_workers  # noqa: E402
from gmat_sweep.distribution import DISTRIBUTION  # noqa: E402
from gmat_sweep.manifest import read_manifest  # noqa: E402

from conftest import result_of, run_in_thread  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
TIMING = ["start", "end", "duration", "host", "pid", "worker"]
SITE_PACKAGES = sysconfig.get_paths()["purelib"]  # on PYTHONPATH with python -S: everything but gmat-sweep


def local_cluster(n_workers: int, threads: int = 1) -> distributed.LocalCluster:
    return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=threads, processes=True,
                                    dashboard_address=":0")


@pytest.fixture(scope="module")
def client():
    with local_cluster(2) as cluster, distributed.Client(cluster, set_as_default=False) as c:
        c.cluster_handle = cluster
        yield c


def workers(c) -> set[str]:
    return set(scheduler_workers(c))


@contextlib.contextmanager
def extra_worker(c, tmp_path, env=None, python_flags=(), prefix=()):
    """A ``dask worker`` process (no nanny) joined to ``c``'s scheduler; killed on exit."""
    before = workers(c)
    command = [*prefix, sys.executable, *python_flags, "-m", "distributed.cli.dask_worker", c.scheduler.address,
               "--nthreads", "1", "--no-nanny", "--no-dashboard", "--local-directory", str(tmp_path / "dask-worker")]
    process = subprocess.Popen(command, env={**os.environ, **(env or {})}, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = None
    try:
        deadline = time.monotonic() + 60
        while not workers(c) - before:
            assert process.poll() is None, f"the extra worker exited ({process.returncode})"
            assert time.monotonic() < deadline, "the extra worker did not join"
            time.sleep(0.1)
        (address,) = workers(c) - before
        yield address
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 30
        while address in workers(c) and time.monotonic() < deadline:
            time.sleep(0.1)


def wait_for_entries(out, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if len(read_manifest(out).entries) >= n:
                return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} runs finished within {timeout} s")


def running(pid: int) -> bool:
    """Whether ``pid`` still runs. A killed worker whose nanny closed before reaping it stays a zombie until init
    reaps it; that is not running."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        if os.path.isdir("/proc"):
            return False
    try:  # no /proc (macOS): a zombie counts as running here
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def entries(sweep: Sweep) -> list[dict]:
    return list(sweep.refresh().manifest.entries.values())


# Evaluated on each worker by ``client.run(eval, ...)``: its GMAT runtime folder (None before GMAT started there)
# and its working folder.
WHERE_GMAT_WRITES = ("(getattr(getattr(__import__('gmatpy._runtime', fromlist=['_']), '_directory', None), 'name', "
                     "None), __import__('os').getcwd())")


# ------------------------------------------------------------------------------------------- results


def test_same_tables_on_local_dask_return_and_dask_shared(leo, tmp_path, client):
    grid = {"Sat.SMA": [7000.0, 7200.0], "TOI.Element1": [0.0, 0.05, 0.1]}
    collect = ["Sat.Earth.SMA", "Sat.Id"]
    runs = {}
    report_name = "leo.txt"  # the script's ReportFile, a relative name: GMAT alone would write it where it runs
    watched = [leo.parent, pathlib.Path.cwd()]
    with LocalPool(2) as pool:
        runs["local"] = Sweep(leo, grid=grid, collect=collect, out=tmp_path / "local").run(pool, progress=False)
    with DaskPool(client) as pool:
        runs["return"] = Sweep(leo, grid=grid, collect=collect, out=tmp_path / "return").run(pool, progress=False)
    with DaskPool(client, shared_storage=True) as pool:
        runs["shared"] = Sweep(leo, grid=grid, collect=collect, out=tmp_path / "shared").run(pool, progress=False)
        assert any(p.name.startswith(".gmat-sweep-storage") for p in (tmp_path / "shared").iterdir())
    assert not any(p.name.startswith(".gmat-sweep-storage") for p in (tmp_path / "shared").iterdir())

    expected = runs["local"].results()
    assert len(expected) > 6 and (expected["status"] == "ok").all()
    summary = runs["local"].summary().drop(columns=TIMING)
    for mode in ("return", "shared"):
        pd.testing.assert_frame_equal(runs[mode].results(), expected)
        pd.testing.assert_frame_equal(runs[mode].summary().drop(columns=TIMING), summary)
        for entry in entries(runs[mode]):
            assert entry["worker"] in workers(client)
            assert entry["fingerprint"]["engine"] == "embedded"
            assert entry["fingerprint"]["versions"]["gmat-sweep"] == runs[mode].manifest.header["versions"][
                "gmat-sweep"]
            run_dir = tmp_path / mode / "runs" / str(entry["run_id"])
            assert sorted(os.listdir(run_dir)) == ["RF.parquet", "gmat.log"]
    # Nothing was written outside out=: not where GMAT puts a relative output name (each worker's GMAT runtime
    # folder), not in the workers' or this process's working folder, not beside the script.
    for runtime, cwd in client.run(eval, WHERE_GMAT_WRITES).values():
        assert runtime is not None  # the worker ran GMAT
        watched += [pathlib.Path(runtime), pathlib.Path(cwd)]
    # Its engine process's GMAT runtime folder is inside the worker's local directory.
    watched += [pathlib.Path(d) for d in client.run(lambda dask_worker: dask_worker.local_directory).values()]
    assert [p for folder in watched for p in folder.rglob(report_name)] == []


def test_short_runs_travel_in_batches_with_one_result_each(leo, tmp_path, client):
    grid = {"Sat.SMA": [7000.0 + 10 * i for i in range(40)]}
    with DaskPool(client) as pool:
        sweep = Sweep(leo, grid=grid, out=tmp_path / "out").run(pool, progress=False)
        assert pool.runs_per_task() > 1  # tens of ms per run: several runs per task
    assert sweep.counts() == {"ok": 40, "failed": 0, "missing": 0}
    assert len({e["worker"] for e in entries(sweep)}) == 2
    # A fixed batch size is honoured, and imap still yields one (item, outcome, error) per run.
    with DaskPool(client, batch_size=7) as pool:
        again = Sweep(leo, grid=grid, out=tmp_path / "fixed").run(pool, progress=False)
    pd.testing.assert_frame_equal(again.results(), sweep.results())

    # Return mode ran every mission in one private folder per worker, left empty: nothing piles up on the workers.
    def private_folders(dask_worker):
        return [sorted(os.listdir(p)) for p in pathlib.Path(dask_worker.local_directory).glob("gmat-sweep-runs-*")]

    assert list(client.run(private_folders).values()) == [[[]], [[]]]


# ------------------------------------------------------------------------------------------- lost workers


def test_own_local_cluster_is_shaped_for_gmat():
    import dask

    from gmat_sweep import dask_config

    with DaskPool(n_workers=2) as pool:
        assert [w["nthreads"] for w in scheduler_workers(pool.client).values()] == [1, 1]
        assert pool.client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.worker_ttl) is None
        seen = pool.client.run(lambda: {key: dask.config.get(key) for key in dask_config.QUIET})
        assert list(seen.values()) == [dask_config.QUIET] * 2
    assert dask.config.get("distributed.worker.profile.enabled") is True  # this process's config is left alone


def test_worker_killed_mid_sweep_is_survived_and_resume_finishes(leo, tmp_path):
    grid = {"TOF": [86400 * 2 + i for i in range(14)]}  # ~0.4 s runs: a kill lands inside one
    out = tmp_path / "out"
    with DaskPool(n_workers=2) as pool:
        pids = pool.client.run(os.getpid)
        tmp = set(pool.client.run(tempfile.gettempdir).values())  # where the workers' temporary files go
        assert len(tmp) == 1 and os.path.basename(next(iter(tmp))).startswith("gmat-sweep-cluster-"), tmp
        sweep = Sweep(leo, grid=grid, out=out)
        thread, box = run_in_thread(sweep, pool)
        wait_for_entries(out, 2)
        victim = sorted(pids.values())[0]
        os.kill(victim, signal.SIGKILL)
        thread.join(120)
        assert not thread.is_alive(), "the sweep hung after a worker was killed"
        assert "error" not in box, box.get("error")
        assert os.listdir(next(iter(tmp)))  # the killed worker's among them
    assert not running(victim)
    assert not os.path.exists(next(iter(tmp)))  # gone with the cluster, the killed worker's files too
    counts = sweep.refresh().counts()
    assert counts["missing"] == 0 and counts["ok"] + counts["failed"] == 14
    for entry in entries(sweep):  # whatever Dask could not reschedule says why
        assert entry["status"] == "ok" or "worker" in entry["error"].lower()
    with LocalPool(1) as local:
        Sweep.from_manifest(out).resume(backend=local, progress=False)
    assert Sweep.from_manifest(out).counts() == {"ok": 14, "failed": 0, "missing": 0}


def test_batch_on_a_killed_worker_is_split_so_only_runs_that_crash_fail(leo, tmp_path):
    """With allowed-failures=0 a worker death fails its tasks at once (KilledWorker): the pool reruns the runs of
    a failed batch one by one instead of recording the whole batch as lost."""
    import dask

    # Batches of 10 ~40 ms runs, 20 of them: with 30 runs recorded, each worker is running one (a sized batch of
    # ~2 s could leave the victim idle, its last batch done, and nothing to split).
    grid = {"Sat.SMA": [7000.0 + i for i in range(200)]}
    out = tmp_path / "out"
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), local_cluster(2) as cluster, \
            distributed.Client(cluster, set_as_default=False) as c, DaskPool(c, batch_size=10) as pool:
        sweep = Sweep(leo, grid=grid, out=out)
        thread, box = run_in_thread(sweep, pool)
        wait_for_entries(out, 30)
        batch = pool.runs_per_task()
        busy = [w for w, keys in c.processing().items() if keys]  # the scheduler's view: a batch runs there
        assert busy, "no worker was running a batch"
        victim = c.run(os.getpid, workers=busy[:1])[busy[0]]
        os.kill(victim, signal.SIGKILL)
        thread.join(120)
        assert not thread.is_alive() and "error" not in box, box
        assert pool.split_batches >= 1
    assert batch > 1
    counts = sweep.refresh().counts()
    assert counts["missing"] == 0 and counts["failed"] < batch, counts  # never a whole batch lost
    for entry in entries(sweep):
        assert entry["status"] == "ok" or "worker" in entry["error"].lower()


def test_cluster_without_workers_mid_sweep_stops_instead_of_hanging(leo, tmp_path):
    grid = {"TOF": [86400 * 2 + i for i in range(10)]}
    out = tmp_path / "out"
    with local_cluster(0) as cluster, distributed.Client(cluster, set_as_default=False) as c:
        with extra_worker(c, tmp_path) as address, DaskPool(c, worker_wait=2) as pool:
            pid = c.run(os.getpid, workers=[address])[address]
            sweep = Sweep(leo, grid=grid, out=out)
            thread, box = run_in_thread(sweep, pool)
            wait_for_entries(out, 1)
            os.kill(pid, signal.SIGKILL)  # no nanny: this worker does not come back
            thread.join(60)
            assert not thread.is_alive(), "the sweep hung with no worker left"
    assert isinstance(box.get("error"), DaskPoolError), box
    assert "no usable worker for 2 s" in str(box["error"]) and "resume" in str(box["error"])
    done = Sweep.from_manifest(out)
    assert 1 <= done.counts()["ok"] < 10
    with LocalPool(2) as local:
        done.resume(backend=local, progress=False)
    assert Sweep.from_manifest(out).counts() == {"ok": 10, "failed": 0, "missing": 0}


def test_run_over_timeout_fails_and_the_others_finish(leo, tmp_path, client):
    # The second run would take minutes; the others take milliseconds, so a limit far above them (a busy machine
    # must not time a normal run out) still cuts the long one short.
    grid = {"TOF": [1800, 86400 * 2000, 1800, 3600]}
    pids = client.run(os.getpid)
    with DaskPool(client, timeout=8) as pool:
        sweep = Sweep(leo, grid=grid, out=tmp_path / "out").run(pool, progress=False)
    failed = sweep.failed()
    assert list(failed.index) == [1]
    assert "timed out after 8 s" in failed.loc[1, "error"] and "engine process" in failed.loc[1, "error"]
    assert "was killed" in failed.loc[1, "error"]
    assert sweep.counts()["ok"] == 3
    assert client.run(os.getpid) == pids  # only the run's engine process was killed: the workers went on


def test_timeout_holds_on_a_cluster_started_after_a_run_in_the_driver(leo, tmp_path):
    # validate() (or run_one) in the driver moves the driver's TMPDIR into gmat-sweep's scratch folder; a
    # LocalCluster started afterwards has its nannies in the driver and its workers in processes that inherit that
    # TMPDIR. The timeout must still be enforced. In a process of its own: this one's environment stays as it is.
    program = f"""
import json
import distributed
from gmat_sweep import Sweep, validate
from gmat_sweep.backends.dask import DaskPool

if __name__ == "__main__":
    validate({str(leo)!r}, {{"TOF": 60}})
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \\
            distributed.Client(cluster) as client, DaskPool(client, timeout=8) as pool:
        sweep = Sweep({str(leo)!r}, grid={{"TOF": [1800, 86400 * 2000, 1800]}}, out={str(tmp_path / "out")!r})
        sweep.run(pool, progress=False)
    failed = sweep.failed()
    print("RESULT", json.dumps({{"failed": list(map(int, failed.index)), "error": failed["error"].tolist()}}))
"""
    path = tmp_path / "after_validate.py"
    path.write_text(program)
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=240, cwd=tmp_path)
    found = result_of(done)
    assert found["failed"] == [1], found
    assert "timed out after 8 s" in found["error"][0]


def test_workers_joining_later_are_checked_before_they_get_runs(leo, tmp_path, caplog):
    # Each run propagates 3 days in steps of at most 30 s: 8640 steps, a second or more. 20 of them keep one
    # worker busy long after the newcomers have started.
    grid = {"TOF": [3 * 86400 + i for i in range(20)], "Prop.MaxStep": [30]}
    out = tmp_path / "out"
    with local_cluster(1) as cluster, distributed.Client(cluster, set_as_default=False) as c:
        with DaskPool(c) as pool:
            first = workers(c)
            assert pool.max_workers == 1
            sweep = Sweep(leo, grid=grid, out=out)
            thread, box = run_in_thread(sweep, pool)
            wait_for_entries(out, 2)
            with extra_worker(c, tmp_path, env={"GMAT_ROOT": str(tmp_path / "no-gmat")}) as odd, \
                    extra_worker(c, tmp_path, env={"PYTHONPATH": SITE_PACKAGES}, python_flags=("-S",)) as bare:
                cluster.scale(2)
                c.wait_for_workers(4, timeout=60)
                deadline = time.monotonic() + 30
                while pool.max_workers < 2 and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert pool.max_workers == 2  # the good newcomer counts, the odd one does not
                thread.join(120)
            assert not thread.is_alive() and "error" not in box, box
    used = {e["worker"] for e in entries(sweep)}
    assert sweep.counts()["ok"] == 20, sweep.failed()["error"].tolist()[:3]
    assert odd not in used and bare not in used
    assert used - first, "the worker that joined mid-sweep got no runs"
    said = [r.getMessage() for r in caplog.records]
    assert any(odd in m and "GMAT install not found" in m for m in said)
    assert any(bare in m and "gmat-sweep cannot be imported there" in m for m in said)


def test_a_worker_that_leaves_while_it_is_checked_does_not_stop_the_sweep(leo, tmp_path, client, caplog):
    # An autoscaler retiring a worker, or a Pod evicted, while the sweep's preflight asks every worker what it runs:
    # that worker is gone, not odd, and the sweep runs on the others. The leaving worker is stopped (SIGSTOP) so it
    # cannot answer, then killed once the preflight has asked it.
    caplog.set_level(logging.DEBUG, logger="gmat_sweep.dask")
    out = tmp_path / "out"
    with extra_worker(client, tmp_path) as leaving:
        pid = client.run(os.getpid, workers=[leaving])[leaving]
        os.kill(pid, signal.SIGSTOP)
        try:
            with DaskPool(client) as pool:
                sweep = Sweep(leo, grid={"Sat.SMA": [7000, 7100, 7200, 7300]}, out=out)
                thread, box = run_in_thread(sweep, pool)
                deadline = time.monotonic() + 120
                while not any("asking" in r.getMessage() and "Dask workers" in r.getMessage()
                              for r in caplog.records):
                    assert time.monotonic() < deadline and thread.is_alive(), box
                    time.sleep(0.05)
                time.sleep(0.5)  # the question is on its way to the stopped worker
                os.kill(pid, signal.SIGKILL)
                thread.join(180)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert not thread.is_alive() and "error" not in box, box
    assert sweep.counts()["ok"] == 4
    assert leaving not in {e["worker"] for e in entries(sweep)}
    assert any(leaving in r.getMessage() and "left the cluster while it was asked" in r.getMessage()
               for r in caplog.records)


def test_a_worker_that_leaves_while_the_gate_is_handed_out_does_not_stop_the_sweep(leo, tmp_path, client, caplog,
                                                                                   monkeypatch):
    # The scheduler hands a plugin to every worker and drops the caller's connection when one of them leaves
    # meanwhile. The leaving worker is stopped (SIGSTOP) just before the gate is registered, so the scheduler's
    # hand-out waits on it, and killed once the scheduler holds the plugin: it always leaves mid-hand-out.
    caplog.set_level(logging.INFO, logger="gmat_sweep.dask")
    real = distributed.Client.register_plugin
    out = tmp_path / "out"
    with extra_worker(client, tmp_path) as leaving:
        pid = client.run(os.getpid, workers=[leaving])[leaving]
        killers: list[threading.Thread] = []

        def register_while_one_leaves(self, plugin, name=None, **kwargs):
            if not killers:
                def kill_once_held():
                    while not self.run_on_scheduler(lambda dask_scheduler: name in dask_scheduler.worker_plugins):
                        time.sleep(0.05)
                    os.kill(pid, signal.SIGKILL)

                os.kill(pid, signal.SIGSTOP)
                killers.append(threading.Thread(target=kill_once_held, daemon=True))
                killers[0].start()
            return real(self, plugin, name=name, **kwargs)

        monkeypatch.setattr(distributed.Client, "register_plugin", register_while_one_leaves)
        try:
            with DaskPool(client) as pool:
                sweep = Sweep(leo, grid={"Sat.SMA": [7000, 7100, 7200, 7300]}, out=out).run(pool, progress=False)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert killers and sweep.counts()["ok"] == 4
    assert leaving not in {e["worker"] for e in entries(sweep)}
    assert any("left while the gmat-sweep-gate plugin was handed out" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------------------------- fail fast


def test_unreachable_scheduler_fails_within_seconds():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(DaskPoolError, match=f"tcp://127.0.0.1:{port}.*Check the address"):
        DaskPool(address=f"tcp://127.0.0.1:{port}", connect_timeout=2)
    assert time.monotonic() - start < 30  # a hang guard, not a speed target: the connect timeout is 2 s


def test_cluster_with_no_workers_fails_after_worker_wait(leo, tmp_path, caplog):
    with local_cluster(0) as cluster, distributed.Client(cluster, set_as_default=False) as c:
        start = time.monotonic()
        with DaskPool(c, worker_wait=1.5) as pool, pytest.raises(DaskPoolError, match="no Dask worker connected"):
            Sweep(leo, grid={"Sat.SMA": [7000]}, out=tmp_path / "out").run(pool, progress=False)
        assert time.monotonic() - start < 30  # a hang guard: worker_wait is 1.5 s
    assert any("waiting up to 1.5 s for Dask workers" in r.getMessage() for r in caplog.records)


def other_gmat_sweep(tmp_path) -> str:
    """A second, real installation of gmat-sweep that says it is version 0.0.9."""
    root = tmp_path / "other-install"
    shutil.copytree(ROOT / "src" / "gmat_sweep", root / "gmat_sweep")
    info = root / "gmat_param_sweep-0.0.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DISTRIBUTION}\nVersion: 0.0.9\n")
    return str(root)


@pytest.mark.parametrize("case", ["no-engine", "no-gmat-sweep", "other-version"])
def test_odd_worker_refuses_the_sweep_naming_it(case, leo, tmp_path, client):
    setups = {
        "no-engine": ({"GMAT_ROOT": str(tmp_path / "no-gmat")}, (), "GMAT install not found"),
        "no-gmat-sweep": ({"PYTHONPATH": SITE_PACKAGES}, ("-S",), "gmat-sweep cannot be imported there"),
        "other-version": ({"PYTHONPATH": other_gmat_sweep(tmp_path)}, (), r"gmat-sweep 0\.0\.9 \(driver: "),
    }
    env, flags, message = setups[case]
    with extra_worker(client, tmp_path, env=env, python_flags=flags) as odd:
        start = time.monotonic()
        with DaskPool(client) as pool, pytest.raises(DaskPoolError, match=message) as info:
            Sweep(leo, grid={"Sat.SMA": [7000]}, out=tmp_path / "out").run(pool, progress=False)
        assert time.monotonic() - start < 60  # a hang guard: nothing waits for worker_wait here
    text = str(info.value)
    assert "1 of 3 Dask workers" in text and odd in text
    assert not any(w in text for w in workers(client))  # the good workers are not blamed


def test_shared_storage_that_a_worker_does_not_see_is_refused(leo, tmp_path, client):
    shared = tmp_path / "shared"
    shared.mkdir()
    # The worker lives in its own mount namespace with an empty tmpfs at the shared path: the same path, another
    # folder, as on a node where the shared volume is not mounted.
    prefix = ("unshare", "-m", "--propagation", "private", "sh", "-c", 'mount -t tmpfs gmat-sweep-test "$0" && '
              'exec "$@"', str(shared))
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace here: {probe.stderr.decode().strip()}")
    with extra_worker(client, tmp_path, prefix=prefix) as blind:
        with DaskPool(client, shared_storage=True) as pool, pytest.raises(DaskPoolError) as info:
            Sweep(leo, grid={"Sat.SMA": [7000]}, out=shared / "out").run(pool, progress=False)
        # The default return mode does not need shared storage, so the same cluster runs the sweep.
        with DaskPool(client) as pool:
            sweep = Sweep(leo, grid={"Sat.SMA": [7000, 7100, 7200]}, out=shared / "ok").run(pool, progress=False)
    text = str(info.value)
    assert blind in text and "is not the same folder" in text and "cannot read the driver's check file" in text
    assert not any(w in text for w in workers(client))
    assert not [p for p in (shared / "out").iterdir() if p.name.startswith(".gmat-sweep-storage")]
    assert sweep.counts()["ok"] == 3


def test_multithreaded_workers_warn_once_and_still_run(leo, tmp_path):
    with local_cluster(1, threads=2) as cluster, distributed.Client(cluster, set_as_default=False) as c:
        with DaskPool(c) as pool:
            with pytest.warns(RuntimeWarning, match="several threads"):
                sweep = Sweep(leo, grid={"Sat.SMA": [7000, 7100, 7200, 7300]}, out=tmp_path / "out").run(
                    pool, progress=False)
            assert pool.max_workers == 2
    assert sweep.counts()["ok"] == 4


# ------------------------------------------------------------------------------------------- CLI


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gmat_sweep.cli", *args], capture_output=True, text=True,
                          timeout=180)


def test_cli_runs_on_its_own_local_cluster_and_on_a_scheduler(leo, tmp_path, client):
    own = cli("run", str(leo), "--grid", "Sat.SMA=7000:7200:3", "--out", str(tmp_path / "own"), "--backend", "dask",
              "--workers", "2", "--no-progress")
    assert own.returncode == 0, own.stderr
    assert "3 runs: 3 ok, 0 failed" in own.stdout
    remote = cli("run", str(leo), "--grid", "Sat.SMA=7000:7200:3", "--out", str(tmp_path / "remote"), "--backend",
                 "dask", "--scheduler", client.scheduler.address, "--no-progress")
    assert remote.returncode == 0, remote.stderr
    used = {e["worker"] for e in read_manifest(tmp_path / "remote").entries.values()}
    assert used <= workers(client)
    pd.testing.assert_frame_equal(Sweep.from_manifest(tmp_path / "remote").results(),
                                  Sweep.from_manifest(tmp_path / "own").results())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = cli("run", str(leo), "--grid", "Sat.SMA=7000", "--out", str(tmp_path / "down"), "--backend", "dask",
               "--scheduler", f"tcp://127.0.0.1:{port}", "--no-progress")
    assert down.returncode == 2
    assert f"error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in down.stderr


@contextlib.contextmanager
def stopped(c, address):
    """The worker at ``address`` stopped (SIGSTOP): connected, never answering; let go on exit."""
    pid = c.run(os.getpid, workers=[address])[address]
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_worker_that_never_answers_is_left_out_instead_of_hanging_the_sweep(leo, tmp_path, client, monkeypatch):
    monkeypatch.setattr(deadline, "ANSWER_WAIT", 5.0)
    monkeypatch.setattr(deadline, "CLOSE_WAIT", 2.0)
    with extra_worker(client, tmp_path) as stuck:
        with DaskPool(client) as pool:  # the scheduler has spoken to the worker before it stops, as in a real cluster
            Sweep(leo, grid={"Sat.SMA": [7000]}, out=tmp_path / "before").run(pool, progress=False)
        with stopped(client, stuck), warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            pool = DaskPool(client)
            sweep = Sweep(leo, grid={"Sat.SMA": [7000, 7100, 7200, 7300]}, out=tmp_path / "out")
            thread, box = run_in_thread(sweep, pool)
            thread.join(120)
            assert not thread.is_alive(), "the sweep waited for a worker that never answers"
            pool.close()
    assert "error" not in box, box
    said = [str(w.message) for w in seen if issubclass(w.category, RuntimeWarning)]
    assert any(f"{stuck} did not answer gmat-sweep's check within 5 s" in s and "runs without them" in s
               for s in said), said
    assert sweep.refresh().counts() == {"ok": 4, "failed": 0, "missing": 0}
    ran_on = {entry["worker"] for entry in entries(sweep)}
    assert stuck not in ran_on and ran_on <= workers(client)


def test_no_worker_answering_is_a_clear_error_not_a_hang(leo, tmp_path, monkeypatch):
    monkeypatch.setattr(deadline, "ANSWER_WAIT", 3.0)
    with local_cluster(0) as cluster, distributed.Client(cluster, set_as_default=False) as c:
        with extra_worker(c, tmp_path) as stuck, stopped(c, stuck):
            start = time.monotonic()
            with DaskPool(c, worker_wait=2) as pool, pytest.raises(DaskPoolError) as info:
                Sweep(leo, grid={"Sat.SMA": [7000]}, out=tmp_path / "out").run(pool, progress=False)
            assert time.monotonic() - start < 60  # a hang guard: asking once takes the 3 s deadline
    text = str(info.value)
    assert text.startswith(f"no Dask worker answered gmat-sweep's check within 3 s ({stuck})") and "Restart" in text
    assert not (tmp_path / "out" / "manifest.jsonl").exists()  # refused before any run
