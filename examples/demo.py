"""`make demo`: sweep the example LEO mission over altitude and inclination and print the table.

Runs 12 real GMAT missions on a local process pool, writes them to ./demo-out (resumable), and prints the
per-run summary and the first rows of the tidy results table.
"""

import pathlib
import shutil

import pandas as pd

from gmat_sweep import Sweep

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE.parent / "demo-out"

if __name__ == "__main__":
    shutil.rmtree(OUT, ignore_errors=True)  # a fresh demo each time
    sweep = Sweep(
        HERE / "leo_drag.script",
        grid={"Sat.SMA": [6778.137, 6878.137, 6978.137, 7078.137], "Sat.INC": [28.5, 51.6, 97.4]},
        collect=["Sat.Earth.SMA", "Sat.Earth.Altitude", "Sat.ElapsedDays"],
        out=OUT,
    ).run()
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print("\nPer-run summary (one row per run):")
        print(sweep.summary()[["Sat.SMA", "Sat.INC", "status", "duration", "Sat.Earth.SMA", "Sat.Earth.Altitude"]])
        table = sweep.results()
        print(f"\nResults table: {len(table)} rows from report {sweep.reports[0]!r}, indexed by (run_id, time):")
        print(table.head(8))
    print(f"\nEverything is in {OUT} (try: .venv/bin/gmat-sweep show {OUT})")
