"""A Monte Carlo sweep against a grid sweep of the same mission: the same runs/s, within noise?

    .venv/bin/python benchmarks/design_throughput.py                    # 7 rounds of 200 runs, 2 workers
    .venv/bin/python benchmarks/design_throughput.py --rounds 9 --runs 400 --relative
    .venv/bin/python benchmarks/design_throughput.py --rounds 2 --runs 8 --raw-runs 4   # a quick check that it works

Each round runs, on one warm LocalPool, a grid sweep of ``--runs`` values of ``Sat.SMA`` of
``examples/leo_drag.script`` and a Monte Carlo sweep of as many runs drawing ``Sat.SMA`` from a normal distribution
over the same range (``--relative``: ``*normal(1, s)``, so the nominal is read from GMAT first, as a relative
dispersion does). The wall time of ``Sweep.run`` is measured for each, everything included: the preflight (for the
Monte Carlo sweep, the check of its extreme draws in GMAT), dispatch, the outputs, the manifest.

These VMs drift by +-20 % from one second to the next, so the two sweeps of a round run back to back, in an order
that alternates from round to round (grid first, then Monte Carlo first), and the round's figure is the ratio of
their rates; the median of the rounds is the result. For scale, the raw-engine limit (see common.py: bare gmatpy
loops on the same mission, as many as the pool has workers) is measured before and after every round, and each
sweep's rate is also given as a fraction of it.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import tempfile
import time

from common import RawLoops, limit

from gmat_sweep import Sweep
from gmat_sweep.backends import LocalPool
from gmat_sweep.designs import MonteCarlo

HERE = pathlib.Path(__file__).resolve().parent
MISSION = HERE.parent / "examples" / "leo_drag.script"
SMA, SPREAD = 6878.137, 5.0  # the script's Sat.SMA, and the grid's half-width (the normal's 3 sigma)


def grid_sweep(runs: int, round_: int, out: str) -> Sweep:
    step = 2 * SPREAD / max(runs - 1, 1)
    return Sweep(MISSION, grid={"Sat.SMA": [SMA - SPREAD + i * step + round_ * 1e-6 for i in range(runs)]}, out=out)


def mc_sweep(runs: int, round_: int, out: str, relative: bool) -> Sweep:
    spec = f"*normal(1, {SPREAD / 3 / SMA!r})" if relative else f"normal({SMA!r}, {SPREAD / 3!r})"
    return Sweep(MISSION, design=MonteCarlo({"Sat.SMA": spec}, runs, seed=20261202 + round_), out=out)


def timed(sweep: Sweep, pool: LocalPool, runs: int) -> float:
    started = time.perf_counter()
    sweep.run(pool, progress=False)
    wall = time.perf_counter() - started
    counts = sweep.counts()
    assert counts["ok"] == runs, counts
    return runs / wall


def main(runs: int, rounds: int, workers: int, raw_runs: int, relative: bool) -> None:
    grid_rates, mc_rates, ratios, limits = [], [], [], []
    raw = RawLoops(str(MISSION), "OrbitReport", workers)
    with raw, tempfile.TemporaryDirectory() as tmp, LocalPool(max_workers=workers) as pool:
        # Warm the pool (spawn, engine start) and both code paths (a driver's first sweep of a kind imports and
        # compiles what later ones reuse), so that no round pays for them.
        warm = 2 * workers
        timed(grid_sweep(warm, -1, os.path.join(tmp, "warm-grid")), pool, warm)
        timed(mc_sweep(warm, -1, os.path.join(tmp, "warm-mc"), relative), pool, warm)
        limits.append(limit(workers, raw.seconds_per_run(raw_runs)))
        for round_ in range(rounds):
            order = ("grid", "mc") if round_ % 2 == 0 else ("mc", "grid")
            rate = {}
            for kind in order:
                out = os.path.join(tmp, f"{kind}{round_}")
                sweep = grid_sweep(runs, round_, out) if kind == "grid" else mc_sweep(runs, round_, out, relative)
                rate[kind] = timed(sweep, pool, runs)
            limits.append(limit(workers, raw.seconds_per_run(raw_runs)))
            around = (limits[-2] + limits[-1]) / 2
            grid_rates.append(rate["grid"])
            mc_rates.append(rate["mc"])
            ratios.append(rate["mc"] / rate["grid"])
            print(f"round {round_ + 1} ({' then '.join(order)}): grid {rate['grid']:.1f} runs/s "
                  f"({rate['grid'] / around:.0%} of the raw limit), Monte Carlo {rate['mc']:.1f} runs/s "
                  f"({rate['mc'] / around:.0%}); Monte Carlo / grid = {ratios[-1]:.1%}", flush=True)
    spread = (f"{min(ratios):.1%}..{max(ratios):.1%}" if len(ratios) > 1 else f"{ratios[0]:.1%}")
    print(f"\nmission: {MISSION.name}, {runs} runs a sweep, {rounds} rounds, {workers} workers on {os.cpu_count()} "
          f"cores; Monte Carlo of Sat.SMA {'*normal (relative: nominal read from GMAT)' if relative else 'normal'}")
    print(f"raw-engine limit: {statistics.median(limits):.1f} runs/s (median of {len(limits)} measurements)")
    print(f"grid:        {statistics.median(grid_rates):.1f} runs/s (median of the rounds)")
    print(f"Monte Carlo: {statistics.median(mc_rates):.1f} runs/s (median of the rounds)")
    print(f"Monte Carlo / grid, same round: median {statistics.median(ratios):.1%} (rounds {spread}; each "
          f"{', '.join(f'{r:.0%}' for r in ratios)}); target: 100 % within the noise of the rounds")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="runs of each sweep")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--raw-runs", type=int, default=40, help="missions per raw-engine measurement")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--relative", action="store_true", help="perturb Sat.SMA relatively (*normal)")
    args = parser.parse_args()
    main(args.runs, args.rounds, args.workers, args.raw_runs, args.relative)
