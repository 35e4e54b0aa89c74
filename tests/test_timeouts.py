"""Per-run time limits through every public path (sweep(), Sweep(), the CLI, a resumed manifest), on LocalPool and
DaskPool, with real GMAT runs that overrun them; the adaptive default; and what ``show`` says about each failure.

A long run is the test LEO mission propagated for ``LONG`` seconds of flight (several seconds of GMAT work): every
limit below is far under that and far over the short runs' tens of milliseconds.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from gmat_sweep import Sweep, sweep
from gmat_sweep.backends import LocalPool
from gmat_sweep.manifest import read_manifest
from gmat_sweep.timeouts import AdaptiveTimeout

LONG = 86400 * 1000  # over a minute of GMAT work here: every limit below cuts it short
GRID = {"TOF": [1800, LONG, 1800, 3600]}
CLI = [sys.executable, "-m", "gmat_sweep.cli"]


def run_cli(*args):
    return subprocess.run(CLI + list(map(str, args)), capture_output=True, text=True, timeout=600)


def timed_out(s: Sweep, run_id: int, limit: float) -> dict:
    """The manifest entry of ``run_id``, checked to be a timeout at ``limit`` that lasted as long as the limit."""
    assert s.counts() == {"ok": 3, "failed": 1, "missing": 0}, s.summary()
    entry = s.refresh().manifest.entries[run_id]
    assert entry["status"] == "failed" and entry["failure"] == "timeout"
    assert f"timed out after {limit:g} s" in entry["error"] and "timeout=False" in entry["error"]
    assert entry["duration"] >= limit  # its real duration, not zero
    return entry


def test_sweep_timeout_is_honoured_by_localpool(leo, tmp_path):
    with LocalPool(max_workers=2) as pool:
        s = Sweep(leo, grid=GRID, out=tmp_path / "out", timeout=4).run(pool, progress=False)
    timed_out(s, 1, 4)
    # The resumed sweep keeps the limit saved in its manifest.
    assert read_manifest(tmp_path / "out").header["timeout"] == 4
    with LocalPool(max_workers=2) as pool:
        again = Sweep.from_manifest(tmp_path / "out").resume(pool, progress=False)
    timed_out(again, 1, 4)


def test_sweep_function_timeout_on_the_default_pool(leo, tmp_path):
    frame = sweep(leo, grid=GRID, out=tmp_path / "out", timeout=3, progress=False)
    timed_out(frame.attrs["sweep"], 1, 3)


def test_cli_timeout_resume_keeps_it_and_show_tells_timeouts_from_errors(leo, tmp_path):
    out = tmp_path / "out"
    grid = ["--grid", "TOF=1800,{},1800,3600".format(LONG)]
    done = run_cli("run", leo, *grid, "--out", out, "--workers", "2", "--no-progress", "--timeout", "4")
    assert done.returncode == 1, done.stderr
    first = timed_out(Sweep.from_manifest(out), 1, 4)
    shown = run_cli("show", out)
    assert "1 [timed out]" in shown.stdout
    slowest = shown.stdout.split("slowest runs:")[1]
    assert slowest.splitlines()[1].startswith("  1: ") and "(timed out)" in slowest  # the longest of all
    assert f"finish it with: gmat-sweep resume {out} --timeout" in shown.stdout
    # Without --timeout, resume keeps the sweep's own 4 s.
    done = run_cli("resume", out, "--workers", "2", "--no-progress")
    assert done.returncode == 1, done.stderr
    second = timed_out(Sweep.from_manifest(out), 1, 4)
    assert second["start"] > first["start"]


def test_cli_timeout_none_turns_the_limit_off(leo, tmp_path):
    out = tmp_path / "out"
    done = run_cli("run", leo, "--grid", "TOF=600,1200", "--out", out, "--no-progress", "--timeout", "none")
    assert done.returncode == 0, done.stderr
    assert read_manifest(out).header["timeout"] is False
    bad = run_cli("run", leo, "--grid", "TOF=600", "--out", tmp_path / "o2", "--timeout", "soon")
    assert bad.returncode == 2 and "'none' (no limit)" in bad.stderr


def test_adaptive_limit_stops_a_run_far_out_of_line(leo, tmp_path):
    # Shrunk so a test can see it: after one finished run, a run may take max(1 s, 5 x the median).
    adaptive = AdaptiveTimeout(floor=1.0, factor=5.0, after=1, initial=600.0)
    grid = {"TOF": [600] * 8 + [LONG]}
    with LocalPool(max_workers=2) as pool:
        s = Sweep(leo, grid=grid, out=tmp_path / "out", timeout=adaptive).run(pool, progress=False)
    assert s.counts() == {"ok": 8, "failed": 1, "missing": 0}
    entry = s.manifest.entries[8]
    assert entry["failure"] == "timeout" and entry["duration"] >= 1.0
    # (1 s, or more when this machine is so loaded that the short runs take over 0.2 s)
    assert re.search(r"adaptive limit of [0-9.]+ s \(the larger of 1 s and 5 x the median run of", entry["error"])
    assert "--timeout none" in entry["error"]
    assert read_manifest(tmp_path / "out").header["timeout"] == {"floor": 1.0, "factor": 5.0, "after": 1,
                                                                  "initial": 600.0}
    # Reopened, the sweep has the same adaptive limit.
    assert Sweep.from_manifest(tmp_path / "out").timeout == adaptive


def test_default_limit_is_adaptive_and_generous():
    default = AdaptiveTimeout()
    assert default.limit([]) == 3600.0  # before enough runs finished: an hour
    assert default.limit([0.04] * 10) == 600.0  # short runs: ten minutes
    assert default.limit([1200.0] * 10) == 24000.0  # twenty-minute missions are never stopped


def test_dask_honours_the_sweeps_timeout_and_the_saved_one_on_resume(leo, tmp_path):
    pytest.importorskip("distributed")
    from gmat_sweep.backends.dask import DaskPool

    with DaskPool(n_workers=2) as pool:
        s = Sweep(leo, grid=GRID, out=tmp_path / "out", timeout=4).run(pool, progress=False)
        timed_out(s, 1, 4)
        again = Sweep.from_manifest(tmp_path / "out").resume(pool, progress=False)
        timed_out(again, 1, 4)
    entry = json.loads((tmp_path / "out" / "manifest.jsonl").read_text().splitlines()[-1])
    assert entry["run_id"] == 1 and entry["failure"] == "timeout"
