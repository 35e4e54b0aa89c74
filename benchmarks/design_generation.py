"""Generating dispersion designs, without GMAT: time and peak memory for 10^6 rows of each design kind.

Each design is built in a fresh process (so its peak RSS is its own) and iterated row by row, as a sweep
dispatches runs: ``design[i]`` for every run id, three perturbed parameters. The target for Monte Carlo is
10^6 rows in under 2 s and under 200 MB.

    .venv/bin/python benchmarks/design_generation.py [ROWS]
"""

from __future__ import annotations

import json
import subprocess
import sys

_ONE = r"""
import json, resource, sys, time
from gmat_sweep.designs import LatinHypercube, MonteCarlo, Sobol
kind, rows = sys.argv[1], int(sys.argv[2])
perturb = {"Sat.SMA": "normal(7000, 5)", "Sat.ECC": "truncnormal(0.001, 0.0005, 0, 0.01)",
           "TOI.Element1": "*normal(1, 0.01)"}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
design = {"monte_carlo": MonteCarlo, "latin_hypercube": LatinHypercube, "sobol": Sobol}[kind](
    perturb, rows, seed=42, nominal={"TOI.Element1": 0.5})
for i in range(len(design)):
    design[i]
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"kind": kind, "rows": rows, "seconds": elapsed, "peak_rss_mb": peak / 1024,
                  "rss_before_mb": before / 1024}))
"""


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10**6
    print(f"{rows} rows, 3 parameters, row by row (design[i]) in a fresh process each")
    for kind in ("monte_carlo", "latin_hypercube", "sobol"):
        result = json.loads(subprocess.run([sys.executable, "-c", _ONE, kind, str(rows)], check=True,
                                           capture_output=True, text=True).stdout)
        print(f"  {kind:16s} {result['seconds']:6.2f} s  {result['seconds'] / rows * 1e6:5.2f} us/row  "
              f"peak RSS {result['peak_rss_mb']:6.1f} MB (after imports {result['rss_before_mb']:.1f} MB)")


if __name__ == "__main__":
    main()
