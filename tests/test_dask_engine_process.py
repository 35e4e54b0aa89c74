"""A Dask worker runs GMAT in a single-threaded engine process of its own, on real LocalClusters.

While a long mission runs, the process that runs it has one thread (read from /proc outside it) and the Dask worker
answers its scheduler; a timeout or a crash kills only the engine process, the run fails saying so, and the same
worker process takes the next runs, so a worker without a nanny times runs out too. With
``GMAT_SWEEP_ENGINE_PROCESS=0`` the worker runs GMAT itself and its nanny's watchdog still enforces timeouts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest

distributed = pytest.importorskip("distributed")

from gmat_sweep import Sweep  # noqa: E402
from gmat_sweep.backends.dask import DaskPool  # noqa: E402
from gmat_sweep.backends.dask import engine_process  # noqa: E402
from gmat_sweep.manifest import read_manifest  # noqa: E402

from conftest import run_in_thread  # noqa: E402

LONG = 86400 * 1000  # over a minute of GMAT work here: the timeouts below cut it short
needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc")


@contextlib.contextmanager
def one_worker(**env: str):
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  env=env) as cluster, distributed.Client(cluster, set_as_default=False) as c:
        yield c


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def finished(out) -> int:
    with contextlib.suppress(Exception):
        return len(read_manifest(out).entries)
    return 0


def busy_engine(c, out, deadline: float) -> int:
    """The pid of the worker's engine process once it runs the sweep's first mission."""
    while True:
        pids = [p for found in c.run(engine_process.pids).values() for p in found]
        if pids:
            return pids[0]
        assert time.monotonic() < deadline, "no engine process started"
        assert finished(out) == 0, "the first run finished before its engine process was seen"
        time.sleep(0.05)


@needs_proc
def test_gmat_runs_in_a_one_thread_process_while_the_worker_answers_and_a_timeout_kills_only_it(leo, tmp_path):
    out = tmp_path / "out"
    with one_worker() as c, DaskPool(c, timeout=8) as pool:
        (worker_pid,) = c.run(os.getpid).values()
        sweep = Sweep(leo, grid={"TOF": [LONG, 1800, 3600]}, out=out)
        thread, box = run_in_thread(sweep, pool)
        child = busy_engine(c, out, time.monotonic() + 120)
        counts, answers = [], 0
        while finished(out) == 0 and thread.is_alive():
            # The worker answers while its mission runs: GMAT holds the GIL of the engine process, not the worker's.
            assert list(c.run(os.getpid).values()) == [worker_pid]
            with contextlib.suppress(FileNotFoundError):
                if finished(out) == 0:
                    counts.append(threads(child))
                    answers += 1
            time.sleep(0.02)
        worker_threads = threads(worker_pid)
        thread.join(120)
        assert not thread.is_alive() and "error" not in box, box
        assert list(c.run(os.getpid).values()) == [worker_pid]  # the worker went on
    assert answers >= 10, answers
    assert set(counts) == {1}, counts
    assert worker_threads > 1  # the control: the Dask worker process itself is multi-threaded
    entries = read_manifest(out).entries
    assert entries[0]["status"] == "failed" and entries[0]["failure"] == "timeout"
    assert "timed out after 8 s" in entries[0]["error"] and f"engine process {child}" in entries[0]["error"]
    assert [entries[i]["status"] for i in (1, 2)] == ["ok", "ok"]
    # The next runs went to a fresh engine process of the same worker.
    assert entries[1]["pid"] == entries[2]["pid"] not in (child, worker_pid)


@needs_proc
def test_a_crashed_engine_process_fails_only_its_run_and_the_worker_goes_on(leo, tmp_path):
    out = tmp_path / "out"
    with one_worker() as c, DaskPool(c) as pool:
        (worker_pid,) = c.run(os.getpid).values()
        sweep = Sweep(leo, grid={"TOF": [LONG, 1800, 3600, 5400]}, out=out)
        thread, box = run_in_thread(sweep, pool)
        child = busy_engine(c, out, time.monotonic() + 120)
        os.kill(child, signal.SIGSEGV)  # as GMAT crashing on a bad script
        thread.join(120)
        assert not thread.is_alive() and "error" not in box, box
        assert list(c.run(os.getpid).values()) == [worker_pid]
    entries = read_manifest(out).entries
    assert entries[0]["status"] == "failed" and entries[0]["failure"] == "lost"
    assert f"engine process {child} was killed by signal 11 (SIGSEGV)" in entries[0]["error"]
    assert "the worker goes on" in entries[0]["error"]
    assert all(entries[i]["status"] == "ok" and entries[i]["pid"] != child for i in (1, 2, 3))


def test_with_the_engine_process_turned_off_the_nanny_still_enforces_timeouts(leo, tmp_path):
    with one_worker(**{engine_process.SWITCH: "0"}) as c, DaskPool(c, timeout=6) as pool:
        (worker_pid,) = c.run(os.getpid).values()
        assert list(c.run(engine_process.enabled).values()) == [False]
        sweep = Sweep(leo, grid={"TOF": [1800, LONG, 3600]}, out=tmp_path / "out").run(pool, progress=False)
        c.wait_for_workers(1, timeout=60)
        assert list(c.run(os.getpid).values()) != [worker_pid]  # the watchdog killed the worker itself
        # The worker ran its missions itself: it never started an engine process. (Which incarnation of the worker
        # ran run 0 depends on the batch it shared with the long run, whose timeout killed them both.)
        assert list(c.run(engine_process.pids).values()) == [[]]
    entries = read_manifest(tmp_path / "out").entries
    assert entries[1]["failure"] == "timeout" and "timed out after 6 s" in entries[1]["error"]
    assert "was killed" in entries[1]["error"]
    assert [entries[i]["status"] for i in (0, 2)] == ["ok", "ok"]


def test_a_worker_without_a_nanny_times_runs_out_itself(leo, tmp_path):
    import subprocess
    import sys
    import warnings

    with distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as c:
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", c.scheduler.address,
                                   "--nthreads", "1", "--no-nanny", "--no-dashboard", "--local-directory",
                                   str(tmp_path / "dask-worker")], start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            c.wait_for_workers(1, timeout=120)
            with DaskPool(c, timeout=6) as pool, warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)  # no "cannot be enforced without a nanny"
                sweep = Sweep(leo, grid={"TOF": [1800, LONG, 3600]}, out=tmp_path / "out").run(pool, progress=False)
            assert list(c.run(os.getpid).values()) == [worker.pid]  # no nanny, and none needed: it went on
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    entries = read_manifest(tmp_path / "out").entries
    assert entries[1]["failure"] == "timeout" and "timed out after 6 s" in entries[1]["error"]
    assert [entries[i]["status"] for i in (0, 2)] == ["ok", "ok"]
