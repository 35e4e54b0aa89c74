"""LocalPool with real spawned processes: crash isolation, replacement, timeouts, the sliding window."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from gmat_sweep.backends import LocalPool, Pool, WorkerLost
from pool_tasks import crash, hold, hold_or_sleep, pid_after, temp_folders, unreadable, wait_started


def test_results_come_back_from_separate_processes():
    with LocalPool(max_workers=2) as pool:
        pids = {value for _, value, error in pool.imap(pid_after, [0.2] * 6) if error is None}
    assert len(pids) == 2 and os.getpid() not in pids


@pytest.mark.parametrize("kind, message", [("segfault", "signal 11"), ("exit", "exited (3)"),
                                           ("error", "ValueError: a plain error")])
def test_a_dying_worker_fails_only_its_task_and_is_replaced(kind, message):
    with LocalPool(max_workers=2) as pool:
        items = [("ok", 0.1), ("crash", kind), ("ok", 0.1), ("ok", 0.1)]
        futures = [pool.submit(pid_after, arg) if what == "ok" else pool.submit(crash, arg) for what, arg in items]
        outcomes = []
        for future in futures:
            try:
                outcomes.append(("ok", pool.result(next(iter(pool.as_completed([future]))))))
            except Exception as exc:  # noqa: BLE001
                outcomes.append(("error", exc))
        assert [o[0] for o in outcomes] == ["ok", "error", "ok", "ok"]
        assert message in str(outcomes[1][1])
        if kind != "error":
            assert isinstance(outcomes[1][1], WorkerLost) and pool.replaced >= 1


def test_a_task_or_result_that_cannot_travel_fails_alone():
    with LocalPool(max_workers=1) as pool:
        lost = pool.submit(lambda: 1)  # a lambda cannot be pickled for the worker
        with pytest.raises(WorkerLost, match="could not send the task"):
            lost.result(timeout=20)
        with pytest.raises(WorkerLost, match="could not be read back.*cannot be unpickled"):
            pool.submit(unreadable).result(timeout=20)
        assert pool.submit(pid_after, 0).result(timeout=20) > 0 and pool.replaced == 0


def test_kill_9_of_a_busy_worker(tmp_path):
    with LocalPool(max_workers=2) as pool:
        long = pool.submit(hold, str(tmp_path / "started"), str(tmp_path / "never"))
        short = pool.submit(pid_after, 0)
        victim = wait_started(tmp_path / "started")  # the long task is running, in that process
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(WorkerLost, match="signal 9"):
            long.result(timeout=20)
        assert short.result(timeout=20) != victim
        assert pool.result(pool.submit(pid_after, 0)) != victim  # the replacement works


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped does not)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


DRIVER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from gmat_sweep.backends import LocalPool
from pool_tasks import hold

if __name__ == "__main__":
    pool = LocalPool(max_workers=2)
    futures = [pool.submit(hold, f"{sys.argv[2]}/started-{i}", f"{sys.argv[2]}/never") for i in range(2)]
    time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers die with the driver on Linux only")
def test_workers_die_when_the_driver_is_killed_with_kill_9(tmp_path):
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, os.path.dirname(__file__), str(tmp_path)])
    try:
        workers = [wait_started(tmp_path / f"started-{i}") for i in range(2)]
        assert driver.pid not in workers and all(running(pid) for pid in workers)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(running(pid) for pid in workers):
            assert time.monotonic() < deadline, f"workers outlived their driver: {workers}"
            time.sleep(0.05)
    finally:
        driver.kill()
        driver.wait()
        for pid in locals().get("workers", []):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_workers_temporary_files_are_removed_with_the_pool_even_after_a_kill_9():
    import tempfile

    with LocalPool(max_workers=1) as pool:
        tmp, gmat_runtime, scratch = pool.result(pool.submit(temp_folders))
        pool_tmp = os.path.dirname(tmp)  # each worker has a folder of its own inside the pool's
        assert os.path.dirname(pool_tmp) == tempfile.gettempdir() and pool_tmp != tempfile.gettempdir()
        assert gmat_runtime.startswith(tmp + os.sep) and scratch.startswith(tmp + os.sep)
        running = pool.submit(pid_after, 30)
        deadline = time.time() + 20
        while not pool.busy_pids() and time.time() < deadline:
            time.sleep(0.05)
        os.kill(pool.busy_pids()[0], signal.SIGKILL)  # no atexit handler of that process runs
        with pytest.raises(WorkerLost):
            running.result(timeout=20)
        assert os.path.isdir(gmat_runtime)
    assert not os.path.exists(pool_tmp)


def test_timeout_kills_the_run_and_the_pool_goes_on():
    with LocalPool(max_workers=1, timeout=0.5) as pool:
        slow = pool.submit(pid_after, 30)
        with pytest.raises(WorkerLost, match="timed out after 0.5 s"):
            slow.result(timeout=20)
        assert pool.submit(pid_after, 0).result(timeout=20) > 0


def _held(pool: LocalPool, count: int) -> None:
    """Wait until the pool's one worker has been sent ``count`` tasks (the running one and those sent ahead)."""
    deadline = time.time() + 20
    while time.time() < deadline:
        if list(pool.tasks_per_worker().values()) == [count]:
            return
        time.sleep(0.01)
    raise AssertionError(f"the worker never held {count} tasks")


def _short_then_long(pool: LocalPool) -> tuple:
    pool.submit(pid_after, 0).result(timeout=20)  # a short task: the worker may now be sent work ahead
    running, ahead = pool.submit(pid_after, 30), pool.submit(pid_after, 0)
    _held(pool, 2)
    return running, ahead


def test_a_task_sent_ahead_moves_to_another_worker_when_its_worker_dies():
    with LocalPool(max_workers=1) as pool:
        running, ahead = _short_then_long(pool)
        victim = pool.busy_pids()[0]
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(WorkerLost, match="signal 9"):
            running.result(timeout=20)
        assert ahead.result(timeout=20) not in (victim, None)  # it ran once, on the replacement


def test_a_task_sent_ahead_survives_a_timeout_of_the_one_before():
    with LocalPool(max_workers=1, timeout=1.0) as pool:
        running, ahead = _short_then_long(pool)
        with pytest.raises(WorkerLost, match="timed out after 1 s"):
            running.result(timeout=20)
        assert ahead.result(timeout=20) > 0


def test_closing_fails_the_running_task_and_the_one_sent_ahead():
    pool = LocalPool(max_workers=1)
    running, ahead = _short_then_long(pool)
    pool.close()
    with pytest.raises(WorkerLost, match="closed while this task ran"):
        running.result(timeout=20)
    with pytest.raises(WorkerLost, match="closed before this task started"):
        ahead.result(timeout=20)


def test_the_driver_sees_a_spawned_process_end_on_its_sentinel():
    # The driver must hold no copy of the child's end of the sentinel pipe, or the sentinel never becomes readable
    # when the child exits: every join then waited out its timeout (closing a pool took 5 s a worker).
    from multiprocessing.connection import wait

    from gmat_sweep.backends import spawn

    process = spawn.Process(target=pid_after, args=(0.0,))
    process.start()
    assert wait([process.sentinel], timeout=120) == [process.sentinel]
    process.join(timeout=1)
    assert process.exitcode == 0


def _sent_ahead(pool: LocalPool) -> bool:
    return 2 in pool.tasks_per_worker().values()


def test_a_task_sent_ahead_is_taken_back_for_a_worker_that_runs_out_of_work(tmp_path):
    from gmat_sweep.backends.local import process

    with LocalPool(max_workers=2) as pool:
        pids: set[int] = set()
        while len(pids) < 2:  # both workers up, their last tasks short
            pids |= {future.result(timeout=20) for future in [pool.submit(pid_after, 0) for _ in range(4)]}
        long = pool.submit(hold, str(tmp_path / "long"), str(tmp_path / "end-long"))  # on worker X
        slow = pool.submit(pid_after, process.PREFETCH_BELOW + 0.5)  # on worker Y: its last task is now long
        x, y = wait_started(tmp_path / "long"), slow.result(timeout=30)
        other = pool.submit(hold, str(tmp_path / "other"), str(tmp_path / "end-other"))  # Y, the idle one
        assert wait_started(tmp_path / "other") == y
        short = pool.submit(pid_after, 0)  # only X may be sent a task ahead: its last task was short
        deadline = time.monotonic() + 30
        while not _sent_ahead(pool):
            assert time.monotonic() < deadline, "no task was sent ahead"
            time.sleep(0.01)
        (tmp_path / "end-other").touch()
        # Y runs out of work first and gets the short task back from X, which is still running the long one.
        assert other.result(timeout=30) == y and short.result(timeout=30) == y
        assert not long.done()
        (tmp_path / "end-long").touch()
        assert long.result(timeout=30) == x != y


def test_no_task_is_sent_ahead_to_a_worker_whose_runs_are_long(tmp_path, monkeypatch):
    from gmat_sweep.backends.local import process

    monkeypatch.setattr(process, "PREFETCH_BELOW", 0.2)
    pool = LocalPool(max_workers=1)
    pool.submit(pid_after, 0.3).result(timeout=20)  # the worker's last task took longer than PREFETCH_BELOW
    running = pool.submit(hold, str(tmp_path / "started"), str(tmp_path / "never"))
    wait_started(tmp_path / "started")
    queued = pool.submit(pid_after, 0)
    # Closing gives the dispatcher one more pass, then fails what the worker holds: the running task and any task
    # sent ahead ("closed before this task started"). A task never sent is cancelled instead.
    pool.close()
    with pytest.raises(WorkerLost, match="closed while this task ran"):
        running.result(timeout=20)
    assert queued.cancelled()


def test_sliding_window_keeps_workers_busy_without_barriers(tmp_path):
    # One long task must not hold back the others: with 2 workers, the 9 short tasks all come back while it runs.
    # It runs until the test has seen them all (or, if they never come, for 120 s and then comes back early).
    long = (str(tmp_path / "started"), str(tmp_path / "release"))
    order = []
    with LocalPool(max_workers=2) as pool:
        for item, _, error in pool.imap(hold_or_sleep, [long] + [0.05] * 9):
            assert error is None, error
            order.append(item)
            if len(order) == 9:
                (tmp_path / "release").touch()
    assert order[-1] == long


def test_for_each_consumes_every_result_once_on_the_dispatcher_thread():
    seen, threads = [], set()

    def consume(item, value, error):
        seen.append((item, value is not None and value != os.getpid(), error))
        threads.add(threading.current_thread().name)

    with LocalPool(max_workers=2) as pool:
        pool.for_each(pid_after, [0.05] * 7 + [0.0] * 5, consume)
    assert len(seen) == 12 and all(ok and error is None for _, ok, error in seen)
    assert threads == {"gmat-sweep-localpool"}


def test_for_each_passes_task_errors_and_stops_when_consume_raises():
    errors = []
    with LocalPool(max_workers=1) as pool:
        pool.for_each(lambda x: x, [1, 2, 3], lambda item, value, error: errors.append(error))  # lambdas cannot travel
        assert len(errors) == 3 and all(isinstance(e, WorkerLost) for e in errors)

        consumed = []

        def consume(item, value, error):
            consumed.append(item)
            if len(consumed) == 2:
                raise OSError("disk full")

        with pytest.raises(OSError, match="disk full"):
            pool.for_each(pid_after, [0.1] * 6, consume, window=2)
        # The one worker runs tasks in order and the dispatcher reads their results in order: when this task's
        # result is back, so are those of the tasks still running when consume raised. None was consumed.
        pool.submit(pid_after, 0).result(timeout=20)
        assert len(consumed) == 2


def test_a_custom_pool_gets_for_each_from_imap():
    with ThreadPool(2) as pool:
        seen = []
        pool.for_each(lambda x: x * 2, range(5), lambda item, value, error: seen.append((item, value)))
    assert sorted(seen) == [(x, x * 2) for x in range(5)]


def test_bad_arguments():
    with pytest.raises(ValueError, match="positive whole number"):
        LocalPool(max_workers=0)
    with pytest.raises(ValueError, match="positive number of seconds"):
        LocalPool(timeout=-1)
    pool = LocalPool(max_workers=1)
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(pid_after, 0)


class ThreadPool(Pool):
    """The custom-backend example from the Pool docstring, exercised for real."""

    def __init__(self, n: int = 2, name: str = "custom-pool") -> None:
        import concurrent.futures

        self._ex = concurrent.futures.ThreadPoolExecutor(n, thread_name_prefix=name)  # its threads are named name...
        self._n = n

    @property
    def max_workers(self) -> int:
        return self._n

    def submit(self, fn, *args):
        return self._ex.submit(fn, *args)

    def wait_any(self, futures, timeout=None):
        import concurrent.futures

        return concurrent.futures.wait(futures, timeout, return_when="FIRST_COMPLETED").done

    def result(self, future):
        return future.result()

    def close(self):
        self._ex.shutdown()


def test_a_custom_pool_needs_only_four_methods():
    with ThreadPool(3, name="the-custom-pool") as pool:
        results = sorted(value for _, value, _ in pool.imap(lambda x: (x * 2, threading.current_thread()),
                                                            range(10)))
    assert [value for value, _ in results] == [x * 2 for x in range(10)]
    threads = {thread for _, thread in results}
    assert threading.main_thread() not in threads
    # Ran on the pool's own threads: the executor names them after the pool.
    assert threads and all(thread.name.startswith("the-custom-pool") for thread in threads), threads
    assert not any(thread.is_alive() for thread in threads)  # and leaving the with-block closed the pool


def _threads_while_running(pool: LocalPool, spec) -> tuple[list[int], object]:
    """The run's worker's thread counts (from /proc, outside the worker), sampled while it runs ``spec``."""
    from gmat_sweep import run_one

    future = pool.submit(run_one, spec)
    counts = []
    while not future.done():
        for pid in pool.busy_pids():
            try:
                counts.append(len(os.listdir(f"/proc/{pid}/task")))
            except FileNotFoundError:
                pass
        time.sleep(0.02)
    return counts, future.result()


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc")
@pytest.mark.parametrize("single", [True, False], ids=["as-shipped", "control-without-the-environment"])
def test_a_worker_stays_single_threaded_while_gmat_runs(tmp_path, monkeypatch, single):
    import pathlib

    from gmat_sweep import RunSpec, load_script
    from gmat_sweep.backends import spawn

    if not single:  # the control: the same worker without its environment has numpy's and pyarrow's threads
        monkeypatch.setattr(spawn, "SINGLE_THREADED", {})
    script = load_script(pathlib.Path(__file__).parents[1] / "examples" / "leo_drag.script")
    before = dict(os.environ)
    with LocalPool(max_workers=1) as pool:
        # Long by construction: ~300 orbits with drag, so the worker is sampled many times inside RunScript.
        counts, outcome = _threads_while_running(pool, RunSpec(0, script, {"TOF": 1.6e6}, str(tmp_path / "run")))
    assert outcome.status == "ok", outcome.error
    assert len(counts) >= 10, counts
    if single:
        assert set(counts) == {1}, counts
    else:
        assert min(counts) >= 2, counts
    assert dict(os.environ) == before  # the driver's own environment is left alone
