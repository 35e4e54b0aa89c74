"""LocalPool throughput against the raw engine limit, and driver memory over a long sweep.

    .venv/bin/python benchmarks/local_throughput.py            # 200 short LEO runs + a 20 000-run RSS sweep
    .venv/bin/python benchmarks/local_throughput.py --rss-runs 2000

Raw engine limit = cores / (seconds per run when one process calls LoadScript + RunScript in a loop on the same
mission, measured here in a fresh process, before and after the sweep). The bare loop is also run in as many
processes as there are workers at once, which shows what the cores give GMAT when all of them are busy. gmat-sweep's figure is the wall time of Sweep.run for the whole
sweep (preflight, dispatch, report parsing to Parquet, manifest fsyncs included) on a LocalPool whose workers are
already started; the cold start of a pool is reported on its own line. Target: >= 90 % of the limit.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time

import psutil

from gmat_sweep import Sweep
from gmat_sweep.backends import LocalPool

HERE = pathlib.Path(__file__).resolve().parent
MISSION = HERE.parent / "examples" / "leo_drag.script"

RAW = """
import sys, time, gmatpy
from gmatpy import _runtime
path, report, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with _runtime.lock:
    api = _runtime.engine()
def once(i):
    api.LoadScript(path)
    api.GetObject("Sat").SetField("SMA", 6878.137 + i * 0.01)
    api.GetObject("OrbitReport").SetField("Filename", report)
    assert api.RunScript()
once(0)
start = time.perf_counter()
for i in range(n):
    once(i)
print((time.perf_counter() - start) / n)
"""

TINY = """Create Spacecraft Sat;
GMAT Sat.SMA = 7000;
Create Propagator Prop;
Create ReportFile RF;
GMAT RF.Add = {Sat.ElapsedSecs, Sat.Earth.SMA};
BeginMissionSequence;
Propagate Prop(Sat) {Sat.ElapsedSecs = 60};
"""


def raw_seconds_per_run(mission: pathlib.Path, n: int, processes: int = 1) -> list[float]:
    """Seconds per run of the bare engine loop, in ``processes`` processes running at the same time."""
    with tempfile.TemporaryDirectory() as tmp:
        procs = [subprocess.Popen([sys.executable, "-c", RAW, str(mission), os.path.join(tmp, f"r{i}.txt"), str(n)],
                                  stdout=subprocess.PIPE, text=True) for i in range(processes)]
        outs = [p.communicate()[0] for p in procs]
    return [float(out.strip().splitlines()[-1]) for out in outs]


def throughput(runs: int, workers: int) -> None:
    # The VM's speed drifts: measure the bare engine before and after the sweep and use the mean.
    before = raw_seconds_per_run(MISSION, 40)[0]
    grid = {"Sat.SMA": [6878.137 + i * 0.5 for i in range(runs)]}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        pool = LocalPool(max_workers=workers)
        Sweep(MISSION, grid={"Sat.SMA": [6878.137]}, out=os.path.join(tmp, "warm")).run(pool, progress=False)
        cold = time.perf_counter() - started
        with pool:
            started = time.perf_counter()
            sweep = Sweep(MISSION, grid=grid, out=os.path.join(tmp, "bench")).run(pool, progress=False)
            wall = time.perf_counter() - started
        assert sweep.counts()["ok"] == runs
        rate = runs / wall
        inside = sweep.summary()["duration"].mean()
    per_run = (before + raw_seconds_per_run(MISSION, 40)[0]) / 2
    limit = workers / per_run
    parallel = sum(1 / t for t in raw_seconds_per_run(MISSION, 40, processes=workers))
    print(f"mission: {MISSION.name}, {runs} runs, {workers} workers on {os.cpu_count()} cores")
    print(f"raw engine: {per_run * 1000:.1f} ms per run in one process -> limit {limit:.1f} runs/s "
          f"({workers} / per-run time)")
    print(f"raw engine in {workers} processes at once (what the cores really give GMAT): {parallel:.1f} runs/s")
    print(f"gmat-sweep LocalPool: {wall:.2f} s -> {rate:.1f} runs/s = {100 * rate / limit:.0f} % of the limit, "
          f"{100 * rate / parallel:.0f} % of the parallel raw engine")
    print(f"mean time of one run inside a worker (engine + outputs): {inside * 1000:.1f} ms; the workers were busy "
          f"{100 * runs * inside / (workers * wall):.0f} % of the wall time")
    print(f"(pool cold start, spawn + engine start + a 1-run sweep: {cold:.2f} s)")


def driver_rss(runs: int, workers: int) -> None:
    me = psutil.Process()
    samples: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        mission = pathlib.Path(tmp) / "tiny.script"
        mission.write_text(TINY)
        out = pathlib.Path(tmp) / "rss"
        stop = threading.Event()

        def sample() -> None:
            manifest = out / "manifest.jsonl"
            while not stop.wait(0.5):
                done = max(0, sum(1 for _ in open(manifest, "rb")) - 1) if manifest.exists() else 0
                samples.append((done, me.memory_info().rss / 2**20))

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        started = time.perf_counter()
        with LocalPool(max_workers=workers) as pool:
            sweep = Sweep(mission, grid={"Sat.SMA": [7000 + i * 0.001 for i in range(runs)]}, out=out,
                          fsync_every=64).run(pool, progress=False)
        wall = time.perf_counter() - started
        stop.set()
        thread.join()
        assert sweep.counts()["ok"] == runs
        started = time.perf_counter()
        rows = len(sweep.results())
        aggregate = time.perf_counter() - started
        after = me.memory_info().rss / 2**20
    print(f"\n{runs}-run sweep of a tiny mission: {wall:.1f} s ({runs / wall:.0f} runs/s); "
          f"results() of {rows} rows in {aggregate:.1f} s")
    print("driver RSS while running (runs done -> MiB):")
    marks = [runs * f // 10 for f in range(1, 11)]
    for mark in marks:
        near = min(samples, key=lambda s: abs(s[0] - mark), default=None)
        if near:
            print(f"  {near[0]:>7} runs: {near[1]:7.1f} MiB")
    print(f"peak during the run: {max(s[1] for s in samples):.1f} MiB; after loading the full table: {after:.1f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rss-runs", type=int, default=20000, help="0 skips the memory sweep")
    args = parser.parse_args()
    throughput(args.runs, args.workers)
    if args.rss_runs:
        driver_rss(args.rss_runs, args.workers)
