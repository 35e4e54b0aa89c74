"""kill -9 of the driver at random moments, several times, then resume: nothing lost, nothing run twice."""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import subprocess
import sys
import time

import pandas as pd

from gmat_sweep import Sweep
from gmat_sweep.backends import LocalPool
from gmat_sweep.manifest import read_manifest

CLI = [sys.executable, "-m", "gmat_sweep.cli"]
GRID = ["--grid", "Sat.SMA=7000:7300:10", "--grid", "TOF=60,300,600,900"]


def test_kill_9_the_driver_repeatedly_then_resume(leo, tmp_path):
    out = tmp_path / "out"
    rng = random.Random(20261127)
    kills = 0
    def command():
        # Before its manifest header exists a killed sweep is restarted with `run`; after, with `resume`.
        if (out / "manifest.jsonl").exists():
            return ["resume", str(out)]
        return ["run", str(leo), *GRID, "--out", str(out)]

    for attempt in range(5):
        proc = subprocess.Popen(CLI + command() + ["--workers", "2", "--no-progress"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        if attempt == 0:
            time.sleep(rng.uniform(0.2, 1.5))  # possibly before the sweep has started at all
        else:
            deadline = time.time() + 30
            while time.time() < deadline and proc.poll() is None:
                manifest = out / "manifest.jsonl"
                if manifest.exists() and manifest.stat().st_size > 2000:
                    break
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.8))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)  # the driver only; its workers die with it (PDEATHSIG)
            kills += 1
        proc.wait(timeout=30)
    assert kills >= 2, "the sweep finished before it could be killed; make it longer"
    finished = subprocess.run(CLI + command() + ["--workers", "2", "--no-progress"], capture_output=True,
                              text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr

    lines = (out / "manifest.jsonl").read_text().splitlines()[1:]
    ok_lines = collections.Counter(json.loads(l)["run_id"] for l in lines if json.loads(l)["status"] == "ok")
    assert sorted(ok_lines) == list(range(40)) and set(ok_lines.values()) == {1}
    assert not read_manifest(out).torn_tail

    reference = tmp_path / "reference"
    with LocalPool(max_workers=2) as pool:
        clean = Sweep(leo, grid={"Sat.SMA": [7000 + 300 * i / 9 for i in range(10)], "TOF": [60, 300, 600, 900]},
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
