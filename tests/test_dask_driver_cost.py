"""What DaskPool does to keep the driver's work per run small, on real LocalClusters running the real engine: the
pool's own LocalCluster writes run folders in place, short runs travel in big batches that shrink towards the end
of the sweep, and a batch's outcomes come back as one buffer (same tables as LocalPool's)."""

from __future__ import annotations

import os
import pathlib

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from gmat_sweep import Sweep  # noqa: E402
from gmat_sweep.backends import LocalPool  # noqa: E402
from gmat_sweep.backends.dask import DaskPool  # noqa: E402
from gmat_sweep.backends.dask.batching import Lookahead, tail_size  # noqa: E402

TIMING = ["start", "end", "duration", "host", "pid", "worker"]


def private_folders(dask_worker) -> list[str]:
    """The worker's return-mode folders (created on its first return-mode run)."""
    return [p.name for p in pathlib.Path(dask_worker.local_directory).glob("gmat-sweep-runs-*")]


def storage_tokens(out: pathlib.Path) -> list[str]:
    return [p.name for p in out.iterdir() if p.name.startswith(".gmat-sweep-storage")]


def test_own_local_cluster_writes_runs_in_place_and_return_mode_still_works_after_it(leo, tmp_path):
    grid = {"Sat.SMA": [7000.0, 7100.0, 7200.0], "TOI.Element1": [0.0, 0.05]}
    with LocalPool(2) as local:
        expected = Sweep(leo, grid=grid, out=tmp_path / "local").run(local, progress=False)
    with DaskPool(n_workers=2) as pool:
        assert pool.shared_storage  # the default on its own LocalCluster
        shared = Sweep(leo, grid=grid, out=tmp_path / "shared").run(pool, progress=False)
        assert storage_tokens(tmp_path / "shared")  # the workers proved they see out= before writing there
        assert list(pool.client.run(private_folders).values()) == [[], []]  # no run went through return mode
        # The same pool in return mode next (the shared-storage sweep's token must not keep workers out).
        pool.shared_storage = False
        returned = Sweep(leo, grid=grid, out=tmp_path / "return").run(pool, progress=False)
        assert all(folders for folders in pool.client.run(private_folders).values())
    summary = expected.summary().drop(columns=TIMING)
    for sweep in (shared, returned):
        pd.testing.assert_frame_equal(sweep.results(), expected.results())
        pd.testing.assert_frame_equal(sweep.summary().drop(columns=TIMING), summary)
        for run_id in range(len(grid["Sat.SMA"]) * len(grid["TOI.Element1"])):
            assert sorted(os.listdir(pathlib.Path(sweep.out) / "runs" / str(run_id))) == ["RF.parquet", "gmat.log"]


def test_a_scheduler_address_keeps_return_mode_by_default(leo, tmp_path):
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as c, \
            DaskPool(address=c.scheduler_address) as pool:
        assert not pool.shared_storage  # its workers may be other machines: files come back to the driver
        sweep = Sweep(leo, grid={"Sat.SMA": [7000.0, 7100.0]}, out=tmp_path / "out").run(pool, progress=False)
        assert sweep.counts()["ok"] == 2 and not storage_tokens(tmp_path / "out")


def test_short_runs_go_in_big_batches_that_shrink_towards_the_end(leo, tmp_path):
    runs = 240
    grid = {"Sat.SMA": [7000.0 + 0.5 * i for i in range(runs)]}
    with DaskPool(n_workers=2) as pool, distributed.get_task_stream(client=pool.client) as stream:
        sweep = Sweep(leo, grid=grid, out=tmp_path / "out").run(pool, progress=False)
    assert sweep.counts() == {"ok": runs, "failed": 0, "missing": 0}
    # Each task's key starts with its first run id: the batches' sizes, in the order the runs were handed out.
    firsts = sorted(int(t["key"].split("-")[3]) for t in stream.data if t["key"].startswith("gmat-sweep-runs-"))
    sizes = [b - a for a, b in zip(firsts, firsts[1:] + [runs])]
    assert sum(sizes) == runs and sizes[0] == 1  # one run per task until the runs prove short
    peak = max(sizes)
    assert peak > 10, str(sizes)
    # The last tasks carry a share of the runs left, not a full batch: no worker is left with one long tail.
    assert all(size < peak for size in sizes[-3:]), str(sizes)


def test_lookahead_knows_how_many_are_left_only_once_the_source_ends():
    ahead = Lookahead(iter(range(10)))
    ahead.fill(4)
    assert ahead.left() is None and ahead.take(3) == [0, 1, 2]
    ahead.fill(100)
    assert ahead.left() == 7 and ahead.take(100) == [3, 4, 5, 6, 7, 8, 9]
    assert not ahead and ahead.take(1) == []


@pytest.mark.parametrize(("batch", "left", "workers", "mean", "expected"), [
    (100, 10_000, 4, 0.02, 100),  # far from the end: the full batch
    (100, 200, 2, 0.02, 50),      # 1 / (2 * workers) of what is left
    (100, 10, 2, 0.02, 10),       # never below a quarter second of work, never above what is left
    (100, 3, 2, 0.02, 3),
    (100, 7, 2, None, 2),
])
def test_tail_size(batch, left, workers, mean, expected):
    assert tail_size(batch, left, workers, mean) == expected


def test_usable_workers_are_counted_even_while_the_client_refreshes_its_cached_info():
    """Client.scheduler_info() could return the client's periodic refresh (totals, no workers) instead of what it
    just fetched: a sweep then saw no usable worker for a second. A fast refresh makes that race frequent."""
    import dask

    with dask.config.set({"distributed.client.scheduler-info-interval": "5ms"}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c, \
            distributed.Client(c, set_as_default=False) as client, DaskPool(client) as pool:
        counts = [pool._gated_threads(fresh=True) for _ in range(1000)]
    assert set(counts) == {2}, f"{counts.count(0)} of 1000 counts saw no worker"
