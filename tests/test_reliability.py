"""kill -9 of the driver at points the test chooses, several times, then resume: nothing lost, nothing run twice."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd

from gmat_sweep import Sweep
from gmat_sweep.backends import LocalPool
from gmat_sweep.manifest import read_manifest

CLI = [sys.executable, "-m", "gmat_sweep.cli"]
# 40 runs of 6 to 24 hours: each run propagates hundreds of steps, so a kill chosen after k manifest lines lands a
# few runs later at most, far from the sweep's end.
TOFS = [21600, 43200, 64800, 86400]
GRID = ["--grid", "Sat.SMA=7000:7300:10", "--grid", f"TOF={','.join(map(str, TOFS))}"]
#: Manifest lines (header included) after which each attempt's driver is killed; None: at once, before it starts.
KILL_AFTER = [None, 1, 6, 14, 22]


def manifest_lines(out) -> int:
    try:
        return (out / "manifest.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_kill_9_the_driver_repeatedly_then_resume(leo, tmp_path):
    out = tmp_path / "out"

    def command():
        # Before its manifest header exists a killed sweep is restarted with `run`; after, with `resume`.
        if (out / "manifest.jsonl").exists():
            return ["resume", str(out)]
        return ["run", str(leo), *GRID, "--out", str(out)]

    seen = []
    for lines in KILL_AFTER:
        proc = subprocess.Popen(CLI + command() + ["--workers", "2", "--no-progress"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while lines is not None and manifest_lines(out) < lines:
            assert proc.poll() is None, f"the driver ended ({proc.returncode}) before {lines} manifest lines"
            assert time.monotonic() < deadline, f"no {lines} manifest lines within 120 s"
            time.sleep(0.005)
        assert proc.poll() is None, "the sweep ended before the kill; give its runs more work"
        os.kill(proc.pid, signal.SIGKILL)  # the driver only; its workers die with it (PDEATHSIG)
        proc.wait(timeout=30)
        seen.append(manifest_lines(out))
    assert seen[-1] < 41, seen  # the last kill left runs to do
    finished = subprocess.run(CLI + command() + ["--workers", "2", "--no-progress"], capture_output=True,
                              text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr

    lines = (out / "manifest.jsonl").read_text().splitlines()[1:]
    ok_lines = collections.Counter(json.loads(l)["run_id"] for l in lines if json.loads(l)["status"] == "ok")
    assert sorted(ok_lines) == list(range(40)) and set(ok_lines.values()) == {1}
    assert not read_manifest(out).torn_tail

    reference = tmp_path / "reference"
    with LocalPool(max_workers=2) as pool:
        clean = Sweep(leo, grid={"Sat.SMA": [7000 + 300 * i / 9 for i in range(10)], "TOF": TOFS},
                      out=reference).run(pool, progress=False)
    resumed = Sweep.from_manifest(out)
    pd.testing.assert_frame_equal(resumed.results(), clean.results())


def test_a_worker_killed_mid_run_fails_only_that_run(leo, tmp_path):
    leo.write_text(leo.read_text().replace("GMAT Prop.MaxStep = 120;", "GMAT Prop.MaxStep = 5;"))
    with LocalPool(max_workers=2) as pool:
        sweep = Sweep(leo, grid={"TOF": [400000, 60, 60, 60, 60, 60]}, out=tmp_path / "o")
        import threading

        def killer():
            deadline = time.time() + 60
            while time.time() < deadline:
                busy = pool.busy_pids()
                manifest = tmp_path / "o" / "manifest.jsonl"
                # Once the five short runs are recorded, the only busy worker is the one running run 0.
                if len(busy) == 1 and manifest.exists() and len(manifest.read_text().splitlines()) >= 6:
                    os.kill(busy[0], signal.SIGKILL)
                    return
                time.sleep(0.05)

        thread = threading.Thread(target=killer)
        thread.start()
        sweep.run(pool, progress=False)
        thread.join()
    counts = sweep.counts()
    assert counts == {"ok": 5, "failed": 1, "missing": 0}
    failed = sweep.failed()
    assert list(failed.index) == [0] and "killed by signal 9" in failed.loc[0, "error"]
    with LocalPool(max_workers=2) as pool:
        sweep.resume(pool, progress=False)
    assert sweep.counts() == {"ok": 6, "failed": 0, "missing": 0}
