"""Reading a big finished sweep back: wall time and peak RSS of results(), dataset() -> pandas and -> polars,
summary() and counts(), against the size of the frame each returns.

    .venv/bin/python benchmarks/reading.py                      # 10 000 and 100 000 runs
    .venv/bin/python benchmarks/reading.py --runs 10000

Running 100 000 GMAT missions takes far longer than reading them back, and the reading side is what is measured
here, so the sweeps are SYNTHESISED from one real run: examples/leo_drag.script is run once through gmat-sweep (its
OrbitReport is ~75 rows), then its Parquet report is copied into runs/0..N-1 (each copy with its own run_id, as a
worker writes it) and the manifest gets one line per run, copied from the real run's line, under the header of a
grid design of N values of Sat.SMA. On disk the result is what an N-run sweep of that mission leaves.

Each measurement runs in a fresh Python process (so one does not inherit another's heap); peak RSS is that process's
high-water mark minus its RSS just before the call (after imports and opening the manifest; on Linux the mark is
reset just before the call, so the manifest's own peak is not counted). Figures on a busy
shared machine are indicative only. Goals: results() peak <= 2x its frame; summary()/counts() < 2 s at 100 000 runs.

Three passes over each sweep:
1. the per-run files, with automatic compaction switched off (``compact.AUTO_RUNS = None``): reading as it was;
2. the first results() with automatic compaction on, as a user meets a sweep left uncompacted (killed, or written
   by an older version): it compacts the sweep, then reads the compact file (a sweep that finishes normally has
   already compacted itself when it returns, so its users start at pass 3);
3. every call again, on the compacted sweep.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
MISSION = HERE.parent / "examples" / "leo_drag.script"

MEASURE = r"""
import json, resource, sys, time, psutil
import pandas, polars, pyarrow.dataset  # imported before the baseline: their code is not the call's memory
from gmat_sweep import Sweep
import gmat_sweep.compact
out, what = sys.argv[1], sys.argv[2]
if len(sys.argv) > 3 and sys.argv[3] == "no-auto":
    gmat_sweep.compact.AUTO_RUNS = None
s = Sweep.from_manifest(out)
s.manifest  # the manifest is read before the clock starts: every call needs it
process = psutil.Process()
before = process.memory_info().rss
try:  # Linux: reset the high-water mark, so reading the manifest above is not taken for the call's peak
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    reset = True
except OSError:
    reset = False
start = time.perf_counter()
if what == "results":
    frame = s.results()
elif what == "dataset->pandas":
    frame = s.dataset().to_table().to_pandas()
elif what == "dataset->polars":
    import polars as pl
    frame = pl.scan_pyarrow_dataset(s.dataset()).collect()
elif what == "summary":
    frame = s.summary()
elif what == "counts":
    frame = s.counts()
elif what == "compact":
    frame = s.compact()
wall = time.perf_counter() - start
if reset:
    with open("/proc/self/status") as handle:
        hwm = next(int(line.split()[1]) * 1024 for line in handle if line.startswith("VmHWM:"))
else:
    hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
peak = hwm - before
if hasattr(frame, "memory_usage"):
    size = int(frame.memory_usage(deep=True).sum())
elif hasattr(frame, "estimated_size"):
    size = int(frame.estimated_size())
else:
    size = 0
print(json.dumps({"what": what, "wall": wall, "peak": max(peak, 0), "size": size, "rows": len(frame)}))
"""


def real_run(folder: pathlib.Path) -> pathlib.Path:
    from gmat_sweep import Sweep
    from gmat_sweep.backends import LocalPool

    with LocalPool(max_workers=1) as pool:
        Sweep(MISSION, grid={"Sat.SMA": [6878.137]}, out=folder).run(pool, progress=False)
    return folder


def synthesise(seed: pathlib.Path, out: pathlib.Path, runs: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gmat_sweep.design import make_design
    from gmat_sweep.gmat.report import write_parquet

    lines = (seed / "manifest.jsonl").read_text().splitlines()
    header, entry = json.loads(lines[0]), json.loads(lines[1])
    header["design"] = make_design({"Sat.SMA": [6878.137 + 0.001 * i for i in range(runs)]}).to_dict()
    header["runs"] = runs
    shutil.copytree(seed / "script", out / "script")
    table = pq.read_table(seed / "runs" / "0" / entry["outputs"]["OrbitReport"])
    base = table.drop_columns(["run_id"])
    with open(out / "manifest.jsonl", "w") as handle:
        handle.write(json.dumps(header, separators=(",", ":")) + "\n")
        for run_id in range(runs):
            folder = out / "runs" / str(run_id)
            folder.mkdir(parents=True)
            copy = base.append_column("run_id", pa.array([run_id] * base.num_rows, pa.int64()))
            write_parquet(copy, folder / entry["outputs"]["OrbitReport"])
            entry["run_id"] = run_id
            entry["overrides"] = {"Sat.SMA": 6878.137 + 0.001 * run_id}
            handle.write(json.dumps(entry, separators=(",", ":")) + "\n")  # as ManifestWriter writes


def measure(out: pathlib.Path, what: str, auto: bool = True) -> dict:
    done = subprocess.run([sys.executable, "-c", MEASURE, str(out), what, "auto" if auto else "no-auto"],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def line(what: str, r: dict) -> None:
    ratio = f"{r['peak'] / r['size']:.2f}" if r["size"] else "-"
    print(f"{what:<18}{r['wall']:>9.2f}{r['peak'] / 2**20:>10.1f}{r['size'] / 2**20:>10.1f}"
          f"{ratio:>12}{r['rows']:>10}", flush=True)


def report(out: pathlib.Path, title: str, auto: bool = True) -> None:
    print(f"  {title}")
    for what in ("results", "dataset->pandas", "dataset->polars", "summary", "counts"):
        line(what, measure(out, what, auto))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--keep", action="store_true", help="Keep the synthesised sweeps (printed paths).")
    args = parser.parse_args()
    root = pathlib.Path(tempfile.mkdtemp(prefix="gmat-sweep-reading-"))
    try:
        seed = real_run(root / "seed")
        for runs in args.runs:
            out = root / f"sweep-{runs}"
            started = time.perf_counter()
            synthesise(seed, out, runs)
            print(f"\n{runs} runs synthesised in {time.perf_counter() - started:.1f} s under {out}")
            print(f"{'call':<18}{'wall s':>9}{'peak MB':>10}{'frame MB':>10}{'peak/frame':>12}{'rows':>10}")
            report(out, "1. per-run files (automatic compaction off)", auto=False)
            print("  2. the first read of the sweep left uncompacted (compacts it, then reads)")
            line("results", measure(out, "results"))
            report(out, "3. the compacted sweep")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
