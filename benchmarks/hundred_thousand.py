"""100 000 runs on LocalPool: runs/s against a 1 000-run sweep, the driver's RSS, and reading the result back.

    .venv/bin/python benchmarks/hundred_thousand.py                        # ~7 min at ~250 runs/s
    .venv/bin/python benchmarks/hundred_thousand.py --keep /tmp/100k       # keep the 100 000-run folder
    .venv/bin/python benchmarks/hundred_thousand.py --reuse /tmp/100k      # only the read-side timings, on it
    .venv/bin/python benchmarks/hundred_thousand.py --runs 5000            # a shorter rehearsal

One LocalPool (default workers) runs a 1 000-run sweep, a ``--runs`` sweep and another 1 000-run sweep of
``common.ONE_SECOND_MISSION`` (each run a 1-second propagation with a ReportFile), each through ``Sweep.run`` as a
user calls it. Printed:

- runs/s of each sweep over its whole ``Sweep.run`` (preflight, compaction and read-back included) and over its
  runs alone (the first to the last run's end time, from the manifest); the big sweep's against the 1 000-run
  sweeps' (the one before it, and the mean of both); and the big sweep's last 1 000 and 10 000 runs against its
  first 1 000 and 10 000 (a sweep that slows as ``runs/`` fills shows here; 10 000 runs last ~40 s, long enough
  for this VM's second-to-second drift to average out);
- the driver's RSS, read from ``/proc/self/status`` every second by a thread: min/max from 2 000 runs on, and the
  peak (``VmHWM``) once ``Sweep.run`` returned, compaction and the manifest's read-back included; the driver's CPU
  per run, and the wall/CPU of the compaction and read-back that end ``Sweep.run``;
- on a copy of the finished manifest with 1 % of its lines removed and 1 % marked failed (so that a resume has work
  to find), each in a fresh process as a user would start it (imports included), median of ``--repeats``:
  the resume scan (``Sweep.from_manifest`` and what ``resume`` does before its first run: the same-sweep check,
  the ids to run, the adaptive timeout's durations) and ``gmat-sweep show``, on the copy and on the finished folder.

Every figure is printed with the load average: the machine these figures come from is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from common import ONE_SECOND_MISSION

from gmat_sweep import Sweep
from gmat_sweep.backends import LocalPool

WINDOW = 1000  # runs compared at the start and the end of the big sweep
SPAN = 10_000  # ... and over longer stretches: a 1 000-run window is ~4 s, as long as this VM's drift
FROM = 2000  # RSS min/max is taken from this many runs on (the first ones warm caches and the pool up)

# What ``Sweep.resume`` does before it dispatches its first run, in a fresh process; the worker preflight excluded
# (it starts the pool, which is not reading the manifest). Prints wall and CPU seconds, imports included.
_RESUME_SCAN = r"""
import time
start, cpu = time.perf_counter(), time.process_time()
import sys
from gmat_sweep import Sweep
from gmat_sweep.records import OK
from gmat_sweep.timeouts import RunLimits

sweep = Sweep.from_manifest(sys.argv[1])
existing = sweep._open_out(False, resume=True)
todo = [i for i in range(len(sweep.design)) if existing.get(i, {}).get("status") != OK]
limits = RunLimits(sweep.timeout, [float(e["duration"]) for e in sweep.manifest.entries.values()
                                   if e.get("status") == OK and e.get("duration")])
print(len(todo), time.perf_counter() - start, time.process_time() - cpu)
"""


def load() -> str:
    return "load %.1f/%.1f/%.1f" % os.getloadavg()


def rss_mib(field: str = "VmRSS") -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Sampler(threading.Thread):
    """Samples (seconds, runs done, RSS MiB) every second; runs done are the manifest's lines, read as they come."""

    def __init__(self, manifest: pathlib.Path) -> None:
        super().__init__(daemon=True)
        self.manifest, self.samples = manifest, []
        self._stop_event = threading.Event()

    def run(self) -> None:
        handle, lines, start = None, 0, time.perf_counter()
        while not self._stop_event.wait(1.0):
            if handle is None and self.manifest.exists():
                handle = open(self.manifest, "rb")  # noqa: SIM115 (read incrementally while the sweep writes)
            if handle is not None:
                while chunk := handle.read(1 << 20):
                    lines += chunk.count(b"\n")
            self.samples.append((time.perf_counter() - start, max(0, lines - 1), rss_mib()))
        if handle is not None:
            handle.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def end_times(out: pathlib.Path) -> list[float]:
    with open(out / "manifest.jsonl", "rb") as handle:
        next(handle)
        return sorted(json.loads(line)["end"] for line in handle)


def sweep(pool: LocalPool, mission: pathlib.Path, out: pathlib.Path, runs: int) -> dict[str, float]:
    """Run a ``runs``-run sweep; its figures (walls, CPU, and the end phases' timings)."""
    import gmat_sweep.compact as compact

    sweep_module = sys.modules["gmat_sweep.sweep"]  # the package's name ``sweep`` is a function

    phases: dict[str, list[float]] = {}

    def timed(name: str, fn):  # noqa: ANN001, ANN202
        def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[name] = [time.perf_counter() - wall, time.process_time() - cpu]
        return wrapper

    auto, read = compact.auto, sweep_module.read_manifest
    compact.auto, sweep_module.read_manifest = timed("compaction", auto), timed("read-back", read)
    try:
        grid = {"Sat.SMA": [7000 + i * 0.001 for i in range(runs)]}
        cpu, wall = time.process_time(), time.perf_counter()
        done = Sweep(mission, grid=grid, out=out).run(pool, progress=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        compact.auto, sweep_module.read_manifest = auto, read
    counts = done.counts()
    if counts["ok"] != runs:
        raise SystemExit(f"the {runs}-run sweep finished with {counts}; see {out}")
    ends = end_times(out)
    window, span = min(WINDOW, runs // 2), min(SPAN, runs // 2)
    return {"wall": wall, "cpu": cpu, "runs_span": (runs - 1) / (ends[-1] - ends[0]),
            "first": (window - 1) / (ends[window - 1] - ends[0]), "last": (window - 1) / (ends[-1] - ends[-window]),
            "first_span": (span - 1) / (ends[span - 1] - ends[0]), "last_span": (span - 1) / (ends[-1] - ends[-span]),
            **{f"{k}_wall": v[0] for k, v in phases.items()}, **{f"{k}_cpu": v[1] for k, v in phases.items()}}


def report(name: str, runs: int, f: dict[str, float]) -> None:
    print(f"{name}: {runs / f['wall']:.1f} runs/s over Sweep.run ({f['wall']:.1f} s), {f['runs_span']:.1f} runs/s "
          f"first to last run end; first {WINDOW} runs {f['first']:.1f} runs/s, last {WINDOW} {f['last']:.1f} "
          f"runs/s; driver CPU {f['cpu'] / runs * 1e3:.2f} ms/run over Sweep.run  ({load()})", flush=True)
    for phase in ("read-back", "compaction"):
        if f"{phase}_wall" in f:
            print(f"  {phase} at the end: {f[phase + '_wall']:.2f} s wall, {f[phase + '_cpu']:.2f} s CPU "
                  f"({f[phase + '_cpu'] / runs * 1e3:.3f} ms/run)")


def prepare_resume_copy(out: pathlib.Path, copy: pathlib.Path) -> int:
    """A copy of the sweep's manifest with every 100th line removed and every 100th (offset 50) marked failed, and
    its saved script: what a resume of a sweep killed with failures would scan. Returns the ids to rerun."""
    if copy.exists():
        shutil.rmtree(copy)
    copy.mkdir(parents=True)
    shutil.copytree(out / "script", copy / "script")
    todo = 0
    with open(out / "manifest.jsonl", "rb") as src, open(copy / "manifest.jsonl", "wb") as dst:
        dst.write(next(src))
        for n, line in enumerate(src):
            if n % 100 == 0:
                todo += 1
                continue
            if n % 100 == 50:
                entry = json.loads(line)
                entry.update(status="failed", failure="lost", error="worker lost (benchmark)")
                line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
                todo += 1
            dst.write(line)
    return todo


def fresh(command: list[str]) -> tuple[float, float, str]:
    """(wall, CPU, stdout) of a command in a fresh process, imports included."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, done.stdout


def read_side(out: pathlib.Path, repeats: int) -> None:
    copy = out.parent / (out.name + "-resume")
    expected = prepare_resume_copy(out, copy)
    cli = str(pathlib.Path(sys.executable).with_name("gmat-sweep"))
    lines = sum(1 for _ in open(out / "manifest.jsonl", "rb")) - 1
    print(f"\nreading back {out} ({lines} runs, manifest {os.path.getsize(out / 'manifest.jsonl') / 2**20:.1f} MiB); "
          f"each figure a fresh process, imports included, median of {repeats}:")
    jobs = [("resume scan", [sys.executable, "-c", _RESUME_SCAN, str(copy)], copy),
            ("gmat-sweep show", [cli, "show", str(copy)], copy),
            ("gmat-sweep show", [cli, "show", str(out)], out)]
    for name, command, where in jobs:
        figures = []
        for _ in range(repeats):
            wall, cpu, stdout = fresh(command)
            if name == "resume scan" and int(stdout.split()[0]) != expected:
                raise SystemExit(f"the resume scan found {stdout.split()[0]} runs to do, not {expected}")
            figures.append((wall, cpu, load()))
        walls = [w for w, _, _ in figures]
        label = f"{name} ({'1 % removed, 1 % failed' if where == copy else 'finished'})"
        print(f"  {label:<48} {statistics.median(walls):5.2f} s wall, CPU {statistics.median(c for _, c, _ in figures):.2f}"
              f" s (walls {', '.join(f'{w:.2f}' for w in walls)}; {figures[len(figures) // 2][2]})", flush=True)
    shutil.rmtree(copy)


def folder_cost(out: pathlib.Path, n: int = 2000) -> None:
    """What a run's folder costs the filesystem (make it, write a file in it, stat that file) in ``runs/`` holding
    the big sweep's 100 000 folders against an empty one beside it: the part of a run that could slow as ``runs/``
    fills, measured apart from the machine's load (CPU time, the kernel's included)."""
    def cost(parent: pathlib.Path) -> float:
        cpu = time.process_time()
        for k in range(n):
            folder = parent / f"bench-{k}"
            folder.mkdir()
            with open(folder / "RF.parquet", "wb") as handle:
                handle.write(b"x" * 2048)
            os.stat(folder / "RF.parquet")
        cpu = time.process_time() - cpu
        for k in range(n):
            shutil.rmtree(parent / f"bench-{k}")
        return cpu / n * 1e6

    empty = out.parent / (out.name + "-empty-runs")
    empty.mkdir()
    try:
        taking_turns = [(cost(out / "runs"), cost(empty)) for _ in range(3)]
    finally:
        shutil.rmtree(empty)
    full, fresh_ = (statistics.median(pair[k] for pair in taking_turns) for k in (0, 1))
    entries = sum(1 for _ in os.scandir(out / "runs"))
    print(f"a run's folder (mkdir, write 2 KB, stat), {n} of them: {full:.0f} us of CPU in runs/ holding {entries} "
          f"folders, {fresh_:.0f} us in an empty folder  ({load()})", flush=True)


def main(runs: int, keep: str | None, reuse: str | None, repeats: int) -> None:
    if reuse:
        folder_cost(pathlib.Path(reuse).resolve())
        read_side(pathlib.Path(reuse).resolve(), repeats)
        return
    root = pathlib.Path(keep).resolve() if keep else pathlib.Path(tempfile.mkdtemp(prefix="gmat-sweep-100k-"))
    if keep and root.exists() and any(root.iterdir()):
        raise SystemExit(f"--keep {root} is not empty; give a new folder (or --reuse it for the read side)")
    root.mkdir(parents=True, exist_ok=True)
    mission = root / "one_second.script"
    mission.write_text(ONE_SECOND_MISSION)
    try:
        print(f"LocalPool, default workers ({os.cpu_count()} cores), {mission.name}; {load()}", flush=True)
        with LocalPool() as pool:
            small = sweep(pool, mission, root / "1k", 1000)
            report("1 000 runs", 1000, small)
            big_out = root / "big"
            sampler = Sampler(big_out / "manifest.jsonl")
            sampler.start()
            big = sweep(pool, mission, big_out, runs)
            sampler.stop()
            peak = rss_mib("VmHWM")
            # A 1 000-run sweep lasts ~4 s, as long as this VM's drift: one more after the big sweep, so the big
            # sweep is compared with 1 000-run sweeps on both sides of it.
            after = sweep(pool, mission, root / "1k-after", 1000)
            report("1 000 runs again, after", 1000, after)
        report(f"{runs} runs", runs, big)
        steady = [rss for _, done, rss in sampler.samples if FROM <= done < runs]
        at = {mark: next((rss for _, done, rss in sampler.samples if done >= mark), float("nan"))
              for mark in (FROM, runs // 2)}
        at[runs - 1] = sampler.samples[-1][2] if sampler.samples else float("nan")
        both = (small["runs_span"] + after["runs_span"]) / 2
        print(f"  runs/s, {runs} vs 1 000 runs (first to last run end): {big['runs_span'] / small['runs_span']:.1%} "
              f"of the 1 000-run sweep before it, {big['runs_span'] / both:.1%} of the mean of the two; last {WINDOW} "
              f"vs first {WINDOW} of the big sweep: {big['last'] / big['first']:.1%}; last {SPAN} vs first {SPAN}: "
              f"{big['last_span'] / big['first_span']:.1%} ({big['last_span']:.1f} against {big['first_span']:.1f})")
        if steady:
            print(f"  driver RSS from {FROM} runs on: min {min(steady):.1f} MiB, max {max(steady):.1f} MiB "
                  f"(at {FROM} {at[FROM]:.1f}, at {runs // 2} {at[runs // 2]:.1f}, at the last run {at[runs - 1]:.1f});"
                  f" peak of the process (VmHWM) once Sweep.run returned, compaction and read-back included: "
                  f"{peak:.1f} MiB  ({load()})", flush=True)
        shutil.rmtree(root / "1k")
        shutil.rmtree(root / "1k-after")
        folder_cost(big_out)
        read_side(big_out, repeats)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--keep", metavar="DIR", help="run in DIR and keep it (the big sweep is DIR/big)")
    parser.add_argument("--reuse", metavar="OUT", help="only the read-side timings, on a kept sweep folder")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    main(args.runs, args.keep, args.reuse, args.repeats)
