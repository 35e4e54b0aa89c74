"""The default pool runs from every way Python code is started, none of them with a main guard: a script file, a
script piped into ``python -``, ``python -c``, IPython (whose ``__main__`` is its interactive namespace, as in
Jupyter) and a test. DaskPool's own LocalCluster does need the guard (Dask
spawns its workers by importing the main module): without it, one line says so, and no temporary folder is left.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gmat_sweep import Sweep
from gmat_sweep.backends import LocalPool

from conftest import result_of


def program(leo, out) -> str:
    # No `if __name__ == "__main__":` anywhere: what a new user pastes from the README.
    return (
        "import json\n"
        "from gmat_sweep import sweep\n"
        "from gmat_sweep.backends import LocalPool\n"
        "with LocalPool(max_workers=2) as pool:\n"
        f"    df = sweep({str(leo)!r}, grid={{'TOF': [600, 1200, 1800, 2400]}}, backend=pool, out={str(out)!r},\n"
        "               progress=False)\n"
        "s = df.attrs['sweep']\n"
        "import os\n"
        "print('RESULT', json.dumps({'counts': s.counts(), 'pids': sorted(set(int(p) for p in s.summary()['pid'])),\n"
        "                            'driver': os.getpid(),\n"
        "                            'last': [float(df.loc[i]['Sat.ElapsedSecs'].iloc[-1]) for i in range(4)]}))\n"
    )


def result(done: subprocess.CompletedProcess[str]) -> dict:
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return result_of(done)


def check(found: dict) -> None:
    assert found["counts"] == {"ok": 4, "failed": 0, "missing": 0}
    assert found["last"] == pytest.approx([600.0, 1200.0, 1800.0, 2400.0], abs=1e-5)  # each run its own TOF
    # The runs ran in the pool's worker processes, not in the driver. (Which of the two workers ran how many is the
    # scheduler's business: a worker that starts late may find the four short runs already done.)
    assert found["pids"] and found["driver"] not in found["pids"] and len(found["pids"]) <= 2


@pytest.mark.parametrize("how", ["file", "stdin", "dash-c", "ipython"])
def test_default_pool_runs_without_a_main_guard(how, leo, tmp_path):
    code = program(leo, tmp_path / "out")
    path = tmp_path / "tour.py"
    path.write_text(code)
    command, stdin = {"file": ([sys.executable, str(path)], None),
                      "stdin": ([sys.executable, "-"], code),
                      "dash-c": ([sys.executable, "-c", code], None),
                      "ipython": ([sys.executable, "-m", "IPython", "--quick", "--no-banner", "-c", code], None)}[how]
    env = {**os.environ, "IPYTHONDIR": str(tmp_path / "ipython")}  # a profile of its own, made fresh
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    check(result(done))


def test_default_pool_runs_inside_a_test(leo, tmp_path):
    with LocalPool(max_workers=2) as pool:
        sweep = Sweep(leo, grid={"TOF": [600, 1200, 1800, 2400]}, out=tmp_path / "out").run(pool, progress=False)
    frame = sweep.results()
    check({"counts": sweep.counts(), "pids": sorted(set(sweep.summary()["pid"])), "driver": os.getpid(),
           "last": [float(frame.loc[i]["Sat.ElapsedSecs"].iloc[-1]) for i in range(4)]})


def test_dask_local_cluster_without_a_main_guard_says_so_in_one_line(leo, tmp_path):
    pytest.importorskip("distributed")
    temp = tmp_path / "tmp"
    temp.mkdir()
    path = tmp_path / "unguarded.py"
    path.write_text(
        "from gmat_sweep import sweep\n"
        "from gmat_sweep.backends.dask import DaskPool\n"
        "with DaskPool(n_workers=2) as pool:\n"
        f"    sweep({str(leo)!r}, grid={{'TOF': [600, 1200]}}, backend=pool, progress=False)\n")
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TMPDIR": str(temp)})
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("gmat_sweep.backends.dask.DaskPoolError: ")
    assert 'if __name__ == "__main__":' in last
    assert len(done.stderr.splitlines()) < 60, done.stderr  # not Dask's hundreds of lines of tracebacks
    assert not [name for name in os.listdir(temp) if name.startswith("gmat-sweep-cluster-")]
