"""LocalPool with real spawned processes: crash isolation, replacement, timeouts, the sliding window."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from gmat_sweep.backends import LocalPool, Pool, WorkerLost
from pool_tasks import crash, pid_after, temp_folders, unreadable


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


def test_kill_9_of_a_busy_worker():
    with LocalPool(max_workers=2) as pool:
        futures = [pool.submit(pid_after, 3.0), pool.submit(pid_after, 0.2)]
        deadline = time.time() + 20
        while len(pool.busy_pids()) < 2 and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the short task is done; the long one is still running
        victim = pool.busy_pids()[0]
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(WorkerLost, match="signal 9"):
            pool.result(futures[0]) if futures[0].exception(timeout=20) else None
        assert futures[1].result(timeout=20) != victim
        assert pool.result(pool.submit(pid_after, 0)) != victim  # the replacement works


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
        with pool._lock:
            if pool._workers and len(pool._workers[0].tasks) == count:
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


def test_a_task_sent_ahead_is_taken_back_for_a_worker_that_runs_out_of_work():
    with LocalPool(max_workers=2) as pool:
        pids: set[int] = set()
        while len(pids) < 2:  # both workers up, each with a short task behind it
            pids |= {future.result(timeout=20) for future in [pool.submit(pid_after, 0.05) for _ in range(4)]}
        long, other = pool.submit(pid_after, 3.0), pool.submit(pid_after, 0.3)
        short = pool.submit(pid_after, 0)  # sent ahead to a busy worker: the one running the long task
        deadline = time.time() + 2
        while time.time() < deadline:
            with pool._lock:
                if any(len(w.tasks) == 2 for w in pool._workers):
                    break
            time.sleep(0.01)
        else:
            raise AssertionError("no task was sent ahead")
        # The worker of the 0.3 s task runs out of work first and gets the short task back from the long one's.
        assert short.result(timeout=2.5) == other.result(timeout=20)
        assert not long.done() and long.result(timeout=20) != short.result()


def test_no_task_is_sent_ahead_to_a_worker_whose_runs_are_long(monkeypatch):
    from gmat_sweep.backends import local

    monkeypatch.setattr(local, "PREFETCH_BELOW", 0.2)
    with LocalPool(max_workers=1) as pool:
        pool.submit(pid_after, 0.3).result(timeout=20)
        running, queued = pool.submit(pid_after, 1.0), pool.submit(pid_after, 0)
        _held(pool, 1)
        time.sleep(0.5)
        with pool._lock:
            assert len(pool._workers[0].tasks) == 1 and len(pool._queue) == 1
        assert running.result(timeout=20) == queued.result(timeout=20)


def test_sliding_window_keeps_workers_busy_without_barriers():
    # One slow task must not hold back the others: with 2 workers, the 9 short tasks all finish before the long one.
    with LocalPool(max_workers=2) as pool:
        order = [item for item, _, _ in pool.imap(pid_after, [2.0] + [0.05] * 9)]
    assert order[-1] == 2.0


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
        time.sleep(0.5)  # the task still running when consume raised finishes, and is not consumed
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

    def __init__(self, n: int = 2) -> None:
        import concurrent.futures

        self._ex = concurrent.futures.ThreadPoolExecutor(n)
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
    with ThreadPool(3) as pool:
        results = sorted(value for _, value, _ in pool.imap(lambda x: x * 2, range(10)))
    assert results == [x * 2 for x in range(10)]
    assert threading.active_count() >= 1
