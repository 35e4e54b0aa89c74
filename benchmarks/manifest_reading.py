"""Reading a 100 000-run sweep's manifest: the resume scan and ``gmat-sweep show``.

    .venv/bin/python benchmarks/manifest_reading.py                  # 100 000 runs, 3 repeats
    .venv/bin/python benchmarks/manifest_reading.py --runs 10000 --repeats 5
    git show main:src/gmat_sweep/manifest.py > /tmp/old_manifest.py
    .venv/bin/python benchmarks/manifest_reading.py --against /tmp/old_manifest.py   # also time another reader

One real run of ``examples/leo_drag.script`` gives a real header and run line; the manifest is then synthesised
with ``--runs`` copies of that line (each with its own run id and override) under a header whose design has that
many runs. No run files are made: both figures read only the manifest (and the saved script). Each figure is the
wall time of a fresh process (Python's and gmat-sweep's imports excluded, measured inside it), median of the
repeats:

- ``read_manifest``: parsing the file into the header and the entries by run id;
- resume scan: ``Sweep.from_manifest`` then what ``resume`` does before dispatching (check the manifest is the
  same sweep, list the ids to run, collect the finished runs' durations; the preflight on the workers excluded);
- ``gmat-sweep show OUT``: the whole command, imports included (a separate process, as a user runs it);
- with ``--against FILE``: ``read_manifest`` of another copy of manifest.py, taking turns with this one.
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
import time

HERE = pathlib.Path(__file__).resolve().parent
MISSION = HERE.parent / "examples" / "leo_drag.script"

_TIMED = r"""
import sys, time
from gmat_sweep import Sweep
from gmat_sweep.manifest import read_manifest

what, out = sys.argv[1], sys.argv[2]
start, cpu = time.perf_counter(), time.process_time()
if what == "read_manifest":
    read_manifest(out)
elif what.startswith("against="):
    import importlib.util
    spec = importlib.util.spec_from_file_location("other_manifest", what.split("=", 1)[1])
    other = sys.modules["other_manifest"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(other)
    start, cpu = time.perf_counter(), time.process_time()
    other.read_manifest(out)
else:
    sweep = Sweep.from_manifest(out)
    existing = sweep._open_out(False, resume=True)
    # The ids resume would dispatch, and the finished runs' durations its adaptive timeout starts from.
    todo = [i for i in range(len(sweep.design)) if existing.get(i, {}).get("status") != "ok"]
    durations = [float(e["duration"]) for e in sweep.manifest.entries.values()
                 if e.get("status") == "ok" and e.get("duration")]
print(time.perf_counter() - start, time.process_time() - cpu)
"""


def synthesise(out: pathlib.Path, runs: int) -> None:
    from gmat_sweep import Sweep
    from gmat_sweep.backends import LocalPool
    from gmat_sweep.design import make_design

    seed = out.parent / "seed"
    with LocalPool(max_workers=1) as pool:
        Sweep(MISSION, grid={"Sat.SMA": [6878.137]}, out=seed).run(pool, progress=False)
    lines = (seed / "manifest.jsonl").read_text().splitlines()
    header, entry = json.loads(lines[0]), json.loads(lines[1])
    header["design"] = make_design({"Sat.SMA": [6878.137 + 0.001 * i for i in range(runs)]}).to_dict()
    header["runs"] = runs
    out.mkdir()
    shutil.copytree(seed / "script", out / "script")
    with open(out / "manifest.jsonl", "w") as handle:
        handle.write(json.dumps(header, separators=(",", ":")) + "\n")
        for run_id in range(runs):
            entry["run_id"] = run_id
            entry["overrides"] = {"Sat.SMA": 6878.137 + 0.001 * run_id}
            handle.write(json.dumps(entry, separators=(",", ":")) + "\n")


def timed(what: str, out: pathlib.Path) -> tuple[float, float]:
    """(wall, CPU) seconds: on a busy machine the CPU time says more than the wall time."""
    if what == "show":
        cli = pathlib.Path(sys.executable).with_name("gmat-sweep")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run([str(cli), "show", str(out)], capture_output=True, text=True, timeout=600)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert done.returncode == 0, done.stderr
        return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    done = subprocess.run([sys.executable, "-c", _TIMED, what, str(out)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    wall, cpu = done.stdout.split()[-2:]
    return float(wall), float(cpu)


def main(runs: int, repeats: int, against: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "sweep"
        synthesise(out, runs)
        size = os.path.getsize(out / "manifest.jsonl") / 2**20
        print(f"{runs}-run manifest: {size:.1f} MiB")
        if against:
            pairs = [(timed("read_manifest", out), timed(f"against={against}", out)) for _ in range(repeats)]
            ours, theirs = ([p[k] for p in pairs] for k in (0, 1))
            print(f"  read_manifest, this one {statistics.median(w for w, _ in ours):.2f} s "
                  f"(CPU {statistics.median(c for _, c in ours):.2f} s), {against} "
                  f"{statistics.median(w for w, _ in theirs):.2f} s (CPU {statistics.median(c for _, c in theirs):.2f}"
                  f" s) (medians of {repeats}, taking turns)")
        for what in ("read_manifest", "resume scan", "show"):
            figures = [timed(what, out) for _ in range(repeats)]
            walls = [w for w, _ in figures]
            cpu = statistics.median(c for _, c in figures)
            print(f"  {what:<14} {statistics.median(walls):6.2f} s, CPU {cpu:.2f} s "
                  f"(median of {repeats}; walls {', '.join(f'{w:.2f}' for w in walls)})", flush=True)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--against", help="another manifest.py whose read_manifest is timed too")
    args = parser.parse_args()
    main(args.runs, args.repeats, args.against)
