"""The fixed cost of a run: gmat-sweep's ``run_one`` of a 1-second mission against a bare gmatpy loop of it.

    .venv/bin/python benchmarks/fixed_cost.py                 # 50 rounds of 4 runs of each loop
    .venv/bin/python benchmarks/fixed_cost.py --rounds 100 --runs 4

A 1-second mission is almost all fixed cost (loading the script, GMAT's SPICE kernels, building and destroying the
solar system), so this is what every short run pays. Each loop is a process of its own that started the engine
once (common.py): the bare loop imports gmatpy alone, so it is single-threaded as a user's own gmatpy script is;
the ``run_one`` loops run gmat-sweep's whole per-run work (the run folder, the as-run script, the report to
Parquet) with no pool:

- ``run_one, user process``: a plain Python process that imported gmat_sweep (numpy and pyarrow start threads);
- ``run_one, worker env``: the environment a LocalPool worker gets (``spawn.SINGLE_THREADED``: one thread);
- ``run_one, worker env, no kernel copies``: the same with ``GMAT_SWEEP_SLIM_KERNELS=0``;
- ``run_one, worker env, comments cut only``: ``GMAT_SWEEP_SLIM_KERNELS=comments`` (planetary constants of every
  body kept);
- ``run_one, worker env, whole gravity file``: ``GMAT_SWEEP_CUT_GRAVITY=0``;
- ``run_one, worker env, GMAT's own teardown``: ``GMAT_SWEEP_CLEAR_KERNELS=0`` (the kernel pool is not cleared
  before each load).

The machine is shared and drifts from second to second, so the loops take turns (one at a time, in a rotating
order) round after round, each round's ratios use that round's bare figure, and the medians are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

from common import ONE_SECOND_MISSION, RawLoops

from gmat_sweep.backends.spawn import SINGLE_THREADED

MISSION = ONE_SECOND_MISSION

LOOPS = {
    "run_one, user process": ("run_one", {}),
    "run_one, worker env": ("run_one", SINGLE_THREADED),
    "run_one, worker env, no kernel copies": ("run_one", {**SINGLE_THREADED, "GMAT_SWEEP_SLIM_KERNELS": "0"}),
    "run_one, worker env, comments cut only": ("run_one", {**SINGLE_THREADED,
                                                           "GMAT_SWEEP_SLIM_KERNELS": "comments"}),
    "run_one, worker env, whole gravity file": ("run_one", {**SINGLE_THREADED, "GMAT_SWEEP_CUT_GRAVITY": "0"}),
    "run_one, worker env, GMAT's own teardown": ("run_one", {**SINGLE_THREADED, "GMAT_SWEEP_CLEAR_KERNELS": "0"}),
}


def main(rounds: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        mission = os.path.join(tmp, "one_second.script")
        with open(mission, "w") as handle:
            handle.write(MISSION)
        loops = {"bare gmatpy, clean process": RawLoops(mission, "RF")}
        try:
            for name, (mode, env) in LOOPS.items():
                loops[name] = RawLoops(mission, "RF", mode=mode, env=env)
            times: dict[str, list[float]] = {name: [] for name in loops}
            ratios: dict[str, list[float]] = {name: [] for name in loops}
            names = list(loops)
            for round_ in range(rounds):
                order = names[round_ % len(names):] + names[:round_ % len(names)]
                got = {name: loops[name].seconds_per_run(runs)[0] for name in order}
                for name in names:
                    times[name].append(got[name])
                    ratios[name].append(got[name] / got[names[0]])
                print(f"round {round_ + 1}: " + ", ".join(f"{n} {got[n] * 1e3:.1f} ms" for n in names), flush=True)
            print(f"\n1-second mission, {rounds} rounds of {runs} runs per loop, loops taking turns:")
            for name in names:
                print(f"  {name:<42} {statistics.median(times[name]) * 1e3:6.1f} ms a run  ratio to bare "
                      f"{statistics.median(ratios[name]):.2f} (rounds {min(ratios[name]):.2f}-"
                      f"{max(ratios[name]):.2f})  threads {loops[name].threads[0]}")
        finally:
            for loop in loops.values():
                loop.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--runs", type=int, default=4,
                        help="missions per loop per turn (short turns: the machine drifts)")
    args = parser.parse_args()
    main(args.rounds, args.runs)
