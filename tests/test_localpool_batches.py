"""LocalPool's batches (backends/local/batches.py): several runs to a message, each still claimed, timed, answered
and recorded on its own; with real worker processes, and real GMAT runs for a sweep's time limit."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from gmat_sweep import Sweep
from gmat_sweep.backends import LocalPool, WorkerLost
from pool_tasks import hold_or_sleep, wait_started

LONG = 86400 * 1000  # minutes of GMAT work: any limit below cuts it short


class Settled:
    """Collects ``settle(item, value, error)`` calls from the pool's dispatcher thread."""

    def __init__(self) -> None:
        self.got: dict[object, tuple[object, BaseException | None]] = {}
        self.changed = threading.Condition()

    def __call__(self, item, value, error) -> None:
        with self.changed:
            self.got[item] = (value, error)
            self.changed.notify_all()

    def wait_for(self, items, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not all(item in self.got for item in items):
                left = deadline - time.monotonic()
                assert left > 0, f"still waiting for {[i for i in items if i not in self.got]}"
                self.changed.wait(left)


def _warm(pool: LocalPool) -> set[int]:
    """Both workers up, their last tasks short (so they are sent batches and work ahead)."""
    pids: set[int] = set()
    while len(pids) < pool.max_workers:
        pids |= {f.result(timeout=60) for f in [pool.submit(hold_or_sleep, 0.0) for _ in range(4)]}
    return pids


def test_a_finished_run_is_settled_while_its_batch_mates_still_run(tmp_path):
    held = (str(tmp_path / "started"), str(tmp_path / "release"))
    settled = Settled()
    with LocalPool(max_workers=1) as pool:
        _warm(pool)
        pool.submit_runs(hold_or_sleep, [0.0, held], settled)
        settled.wait_for([0.0])  # the first run's result, read while the second one runs in the same process
        assert wait_started(held[0]) == settled.got[0.0][0] and held not in settled.got
        (tmp_path / "release").touch()
        settled.wait_for([held])
    assert settled.got[held] == (settled.got[0.0][0], None)


def test_a_worker_killed_mid_batch_fails_only_the_run_it_was_running(tmp_path):
    held = (str(tmp_path / "started"), str(tmp_path / "never"))
    rest = [0.01 * i for i in range(1, 6)]
    settled = Settled()
    with LocalPool(max_workers=1) as pool:
        _warm(pool)
        messages = pool.messages
        pool.submit_runs(hold_or_sleep, [held] + rest, settled)
        victim = wait_started(held[0])
        assert pool.messages == messages + 1 and pool.tasks_per_worker() == {victim: 6}  # one message, six runs
        os.kill(victim, signal.SIGKILL)
        settled.wait_for([held] + rest)
    value, error = settled.got[held]
    assert value is None and isinstance(error, WorkerLost) and "signal 9" in str(error)
    # The runs it had not started ran once each, on the process that replaced it.
    assert {settled.got[item][1] for item in rest} == {None}
    replacement = settled.got[rest[0]][0]
    assert {settled.got[item][0] for item in rest} == {replacement} and replacement != victim
    assert pool.replaced == 1


def test_a_worker_running_out_of_work_takes_unstarted_runs_back_from_a_batch(tmp_path):
    # Worker X runs a long task at the head of a batch of 9; Y, idle, takes back half of X's unstarted runs each
    # time it runs out of work, until every short run is done while the long one still runs.
    held = (str(tmp_path / "started"), str(tmp_path / "release"))
    rest = [0.05 + 0.001 * i for i in range(8)]
    settled = Settled()
    with LocalPool(max_workers=2) as pool:
        _warm(pool)
        pool.submit_runs(hold_or_sleep, [held] + rest, settled)
        x = wait_started(held[0])
        settled.wait_for(rest)
        assert held not in settled.got
        y = settled.got[rest[0]][0]
        assert {settled.got[item] for item in rest} == {(y, None)} and y != x
        (tmp_path / "release").touch()
        settled.wait_for([held])
        assert settled.got[held] == (x, None)
        # X skipped the runs taken back from it and takes work again.
        more = [0.001 + 0.002 * i for i in range(8)]
        pool.submit_runs(hold_or_sleep, more, settled)
        settled.wait_for(more)
        assert {settled.got[item][1] for item in more} == {None}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_run_that_times_out_in_a_batch_fails_alone(leo, tmp_path, workers):
    # Real GMAT runs: after the first window, runs go several to a message; the long one is stopped at the sweep's
    # limit and every other run, before and after it in its batch, is recorded ok. The limit leaves room for the
    # replacement worker's first run, which also starts its GMAT engine (seconds on a loaded machine).
    grid = {"TOF": [600] * 14 + [LONG] + [600] * 9}
    with LocalPool(max_workers=workers) as pool:
        s = Sweep(leo, grid=grid, out=tmp_path / "out", timeout=8).run(pool, progress=False)
        sent = pool.messages
    assert s.counts() == {"ok": 23, "failed": 1, "missing": 0}, s.summary()
    entry = s.manifest.entries[14]
    assert entry["failure"] == "timeout" and "timed out after 8 s" in entry["error"] and entry["duration"] >= 8
    assert sent < 24 + workers  # (the preflight's tasks included): runs went several to a message
