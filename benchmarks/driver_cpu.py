"""The driver's CPU per run: how much of one core the sweeping process spends on each run it hands out and records.

    .venv/bin/python benchmarks/driver_cpu.py                      # 2 000 runs, LocalPool and DaskPool, 2 rounds each
    .venv/bin/python benchmarks/driver_cpu.py --runs 5000 --rounds 3 --backends local
    .venv/bin/python benchmarks/driver_cpu.py --fsync-every 100    # grouped manifest fsyncs, for comparison
    .venv/bin/python benchmarks/driver_cpu.py --profile local      # cProfile of one sweep (LocalPool: its dispatcher)

The mission is a 1-second propagation: almost all of a run is GMAT's fixed cost, so runs finish as fast as a worker
can do them and the driver's own work per run (handing out the spec, reading the result back, writing the run's
manifest line with its fsync, the progress bar) is the largest share it can ever be. The figures are the driver
process's user and system CPU (``getrusage(RUSAGE_SELF)``: every thread of it, the pool's dispatcher included) on a
pool whose workers are already started, divided by the number of runs: while the sweep feeds runs (from the first
run handed out to the last manifest line fsynced: what caps how many runs per second one driver can feed), and over
all of ``Sweep.run`` (also the preflight before, and reading the manifest back and compacting the per-run Parquet
files after: paid once per sweep, at its end). The workers' own CPU is in other processes and not counted.

DaskPool starts its own LocalCluster; its scheduler runs on a thread of the driver process, so its CPU is counted
too (it is part of what one driver process costs). With a remote scheduler it would be on another machine.

One driver process can feed at most ``1 / (CPU per run)`` runs per second; CPU time barely depends on how loaded the
machine is, unlike wall time, but each figure is still measured in several rounds, all printed.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import tempfile
import threading
import time

from common import ONE_SECOND_MISSION
from gmat_sweep import Sweep

MISSION = ONE_SECOND_MISSION


def cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def threads_cpu() -> dict[str, float]:
    """Seconds of CPU each thread of this process has used, by thread name (Linux; empty elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out: dict[str, float] = {}
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[f"{name}:{tid}"] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def one_sweep(pool, path: str, runs: int, root: str, progress: bool, profile: cProfile.Profile | None = None,
              fsync_every: int = 1, report: bool = True):
    grid = {"Sat.SMA": [7000.0 + 0.01 * i for i in range(runs)]}
    sweep = Sweep(path, grid=grid, out=tempfile.mkdtemp(dir=root), fsync_every=fsync_every)
    threads0 = threads_cpu()
    user0, sys0 = cpu()
    wall0 = time.perf_counter()
    feeding: dict[str, float] = {}
    execute = sweep._execute

    def timed_execute(*args, **kwargs):
        # The feeding phase alone: from the first run handed out to the last manifest line fsynced. What comes
        # before (preflight) and after (reading the manifest back, compacting the per-run files) is paid once per
        # sweep and caps no rate; it is printed apart.
        start = sum(cpu())
        try:
            return execute(*args, **kwargs)
        finally:
            feeding["cpu"] = sum(cpu()) - start

    sweep._execute = timed_execute
    if profile is not None:
        profile.enable()
    sweep.run(pool, progress=progress)
    if profile is not None:
        profile.disable()
    wall = time.perf_counter() - wall0
    user1, sys1 = cpu()
    threads1 = threads_cpu()
    spent = {k: v - threads0.get(k, 0.0) for k, v in threads1.items()}
    names = {str(t.native_id): t.name for t in threading.enumerate()}
    busy = sorted(((v, k) for k, v in spent.items() if v > 0), reverse=True)[:4]
    if report:
        print("    by thread (ms/run): " + ", ".join(f"{names.get(k.split(':')[1], k.split(':')[0])} {v / runs * 1e3:.3f}"
                                                    for v, k in busy))
    counts = sweep.counts()
    assert counts["ok"] == runs, counts
    return (user1 - user0) / runs * 1e3, (sys1 - sys0) / runs * 1e3, runs / wall, feeding["cpu"] / runs * 1e3


def make_pool(kind: str, workers: int):
    if kind == "local":
        from gmat_sweep.backends import LocalPool

        return LocalPool(max_workers=workers)
    from gmat_sweep.backends.dask import DaskPool

    return DaskPool(n_workers=workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backends", default="local,dask")
    parser.add_argument("--fsync-every", type=int, default=1, help="Sweep(fsync_every=...); default 1, a fsync per run")
    parser.add_argument("--progress", action="store_true", help="with the progress bar drawn (to stderr)")
    parser.add_argument("--profile", choices=["local", "dask"], help="profile one sweep on this backend instead")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}, "
          f"{os.cpu_count()} cores; {args.runs} runs of a 1-second mission on {args.workers} workers, "
          f"progress bar {'on' if args.progress else 'off'}, fsync_every={args.fsync_every}")
    with tempfile.TemporaryDirectory(prefix="gmat-sweep-driver-") as root:
        path = os.path.join(root, "one_second.script")
        with open(path, "w") as handle:
            handle.write(MISSION)
        kinds = [args.profile] if args.profile else args.backends.split(",")
        for kind in kinds:
            thread_profile = cProfile.Profile() if args.profile else None
            if thread_profile is not None and kind == "local":
                # The pool's dispatcher thread reads results and records runs: profile it for its whole life.
                from gmat_sweep.backends.local.pool import LocalPool

                serve = LocalPool._serve

                def profiled(self) -> None:
                    thread_profile.runcall(serve, self)

                LocalPool._serve = profiled
            with make_pool(kind, args.workers) as pool:
                one_sweep(pool, path, 2 * args.workers, root, False, report=False)  # workers started, engines warm
                if args.profile:
                    # One profiler at a time per process (Python >= 3.12): the dispatcher's, when there is one.
                    profile = None if thread_profile is not None and kind == "local" else cProfile.Profile()
                    one_sweep(pool, path, args.runs, root, args.progress, profile)
                    pool.close()
                    stats = pstats.Stats(profile or thread_profile)
                    stats.sort_stats("tottime").print_stats(30)
                    continue
                for round_ in range(args.rounds):
                    user, system, rate, fed = one_sweep(pool, path, args.runs, root, args.progress,
                                                   fsync_every=args.fsync_every)
                    print(f"{kind:5s} round {round_ + 1}: driver CPU {fed:.3f} ms/run while feeding runs (one "
                          f"driver could feed {1e3 / fed:.0f} runs/s); {user + system:.3f} ms/run over all of "
                          f"Sweep.run (user {user:.3f}, sys {system:.3f}: the preflight, reading the manifest back "
                          f"and compacting included); {rate:.0f} runs/s" + ("; the LocalCluster's scheduler runs in this process and is counted"
                                       if kind == "dask" else ""), flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
