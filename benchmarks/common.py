"""The raw-engine limit both throughput benchmarks compare against.

``cores / per-run engine time``, where the per-run engine time is what a bare loop of gmatpy's ``LoadScript`` +
``RunScript`` takes on the same mission, in fresh processes that start the engine once. It is measured with as many
loops running at once as the sweep has workers (the cores are shared exactly as they are during a sweep, so this
is the most the engine itself can give on this machine), and with one loop alone (one core busy, the rest idle),
which is printed for reference: on a small VM the two differ by the cost of sharing caches and memory bandwidth.

The loops start together: each process starts its engine, runs the mission once, says it is ready, and waits for
the signal, so the timed parts overlap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

_LOOP = r"""
import json, os, sys, time
from gmat_sweep import RunSpec, load_script, run_one
from gmat_sweep.engine import get_engine

mode, path, report, n, scratch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
source = load_script(path)
os.chdir(os.path.dirname(path))

def bare(i):
    with get_engine().session() as api:
        api.LoadScript(path)
        api.GetObject("Sat").SetField("SMA", 7000.0 + 0.01 * i)
        api.GetObject(report).SetField("Filename", os.path.join(scratch, "report.txt"))
        assert api.RunScript()

def one(i):
    outcome = run_one(RunSpec(i, source, {"Sat.SMA": 7000.0 + 0.01 * i}, os.path.join(scratch, str(i))))
    assert outcome.ok, outcome.error

fn = bare if mode == "bare" else one
fn(-1)  # engine start and first load are not part of a run
print("ready", flush=True)
sys.stdin.readline()
start = time.perf_counter()
for i in range(n):
    fn(i)
print(json.dumps((time.perf_counter() - start) / n), flush=True)
"""


def seconds_per_run(mission: str, report: str, n: int, processes: int = 1, mode: str = "bare") -> list[float]:
    """Seconds per run of ``processes`` loops running ``mission`` ``n`` times at once, one figure per loop.

    ``mode`` is ``bare`` (gmatpy alone) or ``run_one`` (gmat-sweep's per-run work in a plain loop, no pool).
    """
    with tempfile.TemporaryDirectory(prefix="gmat-sweep-raw-") as scratch:
        procs = []
        for k in range(processes):
            folder = os.path.join(scratch, str(k))
            os.makedirs(folder)
            procs.append(subprocess.Popen([sys.executable, "-c", _LOOP, mode, os.path.abspath(mission), report,
                                           str(n), folder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        try:
            for proc in procs:
                if proc.stdout.readline().strip() != "ready":
                    raise RuntimeError("a raw-engine loop failed to start; its error is printed above")
            for proc in procs:
                proc.stdin.write("go\n")
                proc.stdin.flush()
            figures = [json.loads(proc.stdout.readline()) for proc in procs]
        except BaseException:
            for proc in procs:
                proc.kill()
            raise
        finally:
            for proc in procs:
                proc.stdin.close()
                proc.wait()
        return figures


def limit(workers: int, per_run: list[float]) -> float:
    """Runs per second that ``workers`` engines give at the measured per-run times."""
    return workers / (sum(per_run) / len(per_run))
