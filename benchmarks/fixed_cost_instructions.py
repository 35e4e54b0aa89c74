"""The fixed cost of a run in instructions (valgrind's callgrind), a figure a busy machine does not change.

    .venv/bin/python benchmarks/fixed_cost_instructions.py            # bare loop, run_one, run_one without levers
    .venv/bin/python benchmarks/fixed_cost_instructions.py --top 12   # and where a run's instructions go

Each loop (the 1-second mission, as in fixed_cost.py, in the LocalPool worker's environment for ``run_one``) runs
under callgrind twice, with 2 and with 12 missions after the first; the difference divided by 10 is the cost of
one run, without the interpreter's start, the engine's start and the first load. Needs ``valgrind`` on PATH; each
loop takes a few minutes under callgrind.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

from common import _LOOP, ONE_SECOND_MISSION

from gmat_sweep.backends.spawn import SINGLE_THREADED

LOOPS = {
    "bare gmatpy, clean process": ("bare", {}),
    "run_one, worker env": ("run_one", SINGLE_THREADED),
    "run_one, worker env, gravity cut and pool clear off": (
        "run_one", {**SINGLE_THREADED, "GMAT_SWEEP_CUT_GRAVITY": "0", "GMAT_SWEEP_CLEAR_KERNELS": "0"}),
}

# The loop program of common.py, told how many missions to run on its standard input.
_FEED = "{n}\n"


def _callgrind(mode: str, env: dict[str, str], runs: int, mission: str, folder: str) -> str:
    out = os.path.join(folder, f"callgrind.{mode}.{abs(hash(tuple(env.items())))}.{runs}")
    scratch = tempfile.mkdtemp(dir=folder)
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", _LOOP,
                    mode, mission, "RF", scratch], input=_FEED.format(n=runs), text=True, check=True,
                   capture_output=True, env={**os.environ, **env})
    return out


def _inclusive(path: str) -> dict[str, int]:
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path], capture_output=True,
                          text=True, check=True).stdout
    costs: dict[str, int] = {}
    for line in text.splitlines():
        match = re.match(r"\s*([\d,]+) \([^)]*\)\s+(?:\?\?\?:)?(.*?)(?: \[.*\])?$", line)
        if match:
            costs[match.group(2)] = costs.get(match.group(2), 0) + int(match.group(1).replace(",", ""))
    return costs


def main(top: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        mission = os.path.join(folder, "one_second.script")
        with open(mission, "w") as handle:
            handle.write(ONE_SECOND_MISSION)
        jobs = [(name, runs) for name in LOOPS for runs in (2, 12)]
        with ThreadPoolExecutor(2) as pool:
            files = dict(zip(jobs, pool.map(lambda job: _callgrind(*LOOPS[job[0]], job[1], mission, folder), jobs),
                             strict=True))
        bare = None
        for name in LOOPS:
            few, many = _inclusive(files[name, 2]), _inclusive(files[name, 12])
            per_run = {k: (many.get(k, 0) - few.get(k, 0)) / 10 for k in many}
            total = per_run["PROGRAM TOTALS"]
            bare = bare or total
            print(f"{name:<52} {total / 1e6:7.1f} M instructions a run  ratio to bare {total / bare:.3f}")
            # GMAT's C++ and SPICE's f2c functions: the interpreter's own frames say nothing here
            native = [kv for kv in sorted(per_run.items(), key=lambda kv: -kv[1])
                      if "'" not in kv[0] and ("::" in kv[0] or re.fullmatch(r"[a-z0-9]+_(c|)", kv[0]))]
            for key, value in native[:top]:
                print(f"    {value / 1e6:7.1f} M  {key[:100]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--top", type=int, default=0, help="print the N costliest functions (inclusive) of each")
    main(parser.parse_args().top)
