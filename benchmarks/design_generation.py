"""Generating dispersion designs, without GMAT: time and peak memory for 10^6 rows of each design kind.

Each design is built in a fresh process (so its peak RSS is its own) and iterated row by row, as a sweep
dispatches runs: ``design[i]`` for every run id, three perturbed parameters (and a Monte Carlo of a 6x6 state
covariance). The target for Monte Carlo is
10^6 rows in under 2 s and under 200 MB. CPU time is printed beside wall time: on a shared machine it is the
figure that says what the design costs.

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
nominal = {"TOI.Element1": 0.5}
if kind == "monte_carlo_state":  # a 6x6 covariance centred on the nominal state, as from orbit determination
    state = ("Sat.X", "Sat.Y", "Sat.Z", "Sat.VX", "Sat.VY", "Sat.VZ")
    perturb = {state: ("+mvnormal", [0.0] * 6, [[(0.01 if i < 3 else 1e-8) if i == j else 0.0 for j in range(6)]
                                                 for i in range(6)])}
    nominal = dict(zip(state, [7000.0, 0.0, 0.0, 0.0, 7.5, 0.0]))
import scipy.stats, scipy.stats.qmc  # imported by the first row anyway; counted apart from the rows
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start, cpu = time.perf_counter(), time.process_time()
design = {"monte_carlo": MonteCarlo, "monte_carlo_state": MonteCarlo, "latin_hypercube": LatinHypercube,
          "sobol": Sobol}[kind](perturb, rows, seed=42, nominal=nominal)
for i in range(len(design)):
    design[i]
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"kind": kind, "rows": rows, "seconds": elapsed, "cpu": cpu, "peak_rss_mb": peak / 1024,
                  "rss_before_mb": before / 1024}))
"""


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10**6
    print(f"{rows} rows, 3 parameters (monte_carlo_state: one 6x6 covariance), row by row (design[i]) in a fresh "
          "process each")
    for kind in ("monte_carlo", "latin_hypercube", "sobol", "monte_carlo_state"):
        result = json.loads(subprocess.run([sys.executable, "-c", _ONE, kind, str(rows)], check=True,
                                           capture_output=True, text=True).stdout)
        print(f"  {kind:17s} {result['seconds']:6.2f} s wall ({result['cpu']:5.2f} s CPU, "
              f"{result['cpu'] / rows * 1e6:4.2f} us/row)  peak RSS {result['peak_rss_mb']:6.1f} MB "
              f"(after imports {result['rss_before_mb']:.1f} MB, so "
              f"+{result['peak_rss_mb'] - result['rss_before_mb']:.1f} MB for the rows)")


if __name__ == "__main__":
    main()
