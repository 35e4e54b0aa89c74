"""The raw-engine limit both throughput benchmarks compare against.

``cores / per-run engine time``, where the per-run engine time is what a bare loop of gmatpy's ``LoadScript`` +
``RunScript`` takes on the same mission, in clean processes (gmatpy alone imported, one thread) that start the
engine once. It is measured with as many
loops running at once as the sweep has workers (the cores are shared exactly as they are during a sweep, so this
is the most the engine itself can give on this machine), and with one loop alone (one core busy, the rest idle),
which is printed for reference: on a small VM the two differ by the cost of sharing caches and memory bandwidth.

The loop processes are started once (:class:`RawLoops`) and told to run a batch of missions when a figure is
wanted, all at the same moment, so that a measurement can sit right before and right after a sweep: these VMs
change speed from one second to the next, and a limit measured further away from the sweep says less about it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

#: A mission that propagates one second: a run that is almost all GMAT's fixed cost (the driver and fixed-cost
#: benchmarks measure what surrounds the integration, not the integration).
ONE_SECOND_MISSION = """Create Spacecraft Sat;
GMAT Sat.SMA = 7000;
Create Propagator Prop;
Create ReportFile RF;
GMAT RF.Add = {Sat.ElapsedSecs, Sat.Earth.SMA};
BeginMissionSequence;
Propagate Prop(Sat) {Sat.ElapsedSecs = 1};
"""


# Each loop runs in a process of its own. A bare loop imports gmatpy alone (nothing of gmat_sweep, numpy or pyarrow)
# so that its process stays single-threaded, as a user's own gmatpy script is: importing numpy starts OpenBLAS
# threads and pyarrow jemalloc's, and a GMAT run is ~30-50 % slower in a process that has a second thread. The
# "ready" line carries the process's thread count, so a figure says what it was measured on.

_LOOP = r"""
import json, os, sys, time

mode, path, report, scratch = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
os.chdir(os.path.dirname(path))

if mode == "bare":
    from gmatpy import _runtime

    api = _runtime.engine()

    def fn(i):
        api.LoadScript(path)
        api.GetObject("Sat").SetField("SMA", 7000.0 + 0.01 * (i % 1000))
        api.GetObject(report).SetField("Filename", os.path.join(scratch, "report.txt"))
        assert api.RunScript()
else:
    from gmat_sweep import RunSpec, load_script, run_one

    source = load_script(path)

    def fn(i):
        outcome = run_one(RunSpec(i, source, {"Sat.SMA": 7000.0 + 0.01 * (i % 1000)}, os.path.join(scratch, str(i))))
        assert outcome.ok, outcome.error

fn(0)  # engine start and first load are not part of a run
done = 1
print("ready", len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 0, flush=True)
for line in sys.stdin:  # each line: how many missions to run now
    n = int(line)
    start = time.perf_counter()
    for i in range(done, done + n):
        fn(i)
    done += n
    print(json.dumps((time.perf_counter() - start) / n), flush=True)
"""


class RawLoops:
    """``processes`` loops running ``mission`` (``mode`` ``bare``: gmatpy alone; ``run_one``: gmat-sweep's per-run
    work in a plain loop, no pool), started once and measured together on demand. ``env``: variables added to
    the loops' environment (e.g. ``gmat_sweep.backends.spawn.SINGLE_THREADED``, what a LocalPool worker gets);
    ``threads``: each loop's thread count once it is ready.

    >>> with RawLoops("leo.script", "OrbitReport", processes=2) as loops:
    ...     per_run = loops.seconds_per_run(40)  # one figure per loop
    """

    def __init__(self, mission: str, report: str, processes: int = 1, mode: str = "bare",
                 env: dict[str, str] | None = None) -> None:
        self._scratch = tempfile.TemporaryDirectory(prefix="gmat-sweep-raw-")
        self._procs: list[subprocess.Popen[str]] = []
        self.threads: list[int] = []
        try:
            for k in range(processes):
                folder = os.path.join(self._scratch.name, str(k))
                os.makedirs(folder)
                self._procs.append(subprocess.Popen(
                    [sys.executable, "-c", _LOOP, mode, os.path.abspath(mission), report, folder],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}))
            for proc in self._procs:
                ready = proc.stdout.readline().split()
                if ready[:1] != ["ready"]:
                    raise RuntimeError("a raw-engine loop failed to start; its error is printed above")
                self.threads.append(int(ready[1]))
        except BaseException:
            self.close()
            raise

    def seconds_per_run(self, n: int) -> list[float]:
        """Seconds per run of every loop running ``n`` missions, all starting at once."""
        for proc in self._procs:
            proc.stdin.write(f"{n}\n")
            proc.stdin.flush()
        return [json.loads(proc.stdout.readline()) for proc in self._procs]

    def close(self) -> None:
        for proc in self._procs:
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs = []
        self._scratch.cleanup()

    def __enter__(self) -> RawLoops:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def seconds_per_run(mission: str, report: str, n: int, processes: int = 1, mode: str = "bare",
                    env: dict[str, str] | None = None) -> list[float]:
    """One measurement of ``processes`` fresh loops running ``mission`` ``n`` times at once, one figure per loop."""
    with RawLoops(mission, report, processes, mode, env) as loops:
        return loops.seconds_per_run(n)


def limit(workers: int, per_run: list[float]) -> float:
    """Runs per second that ``workers`` engines give at the measured per-run times."""
    return workers / (sum(per_run) / len(per_run))
