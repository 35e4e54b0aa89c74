"""Clearing SPICE's kernel pool before a load: the next run has the same kernels loaded, the same pool, and
writes the same bytes.

Each comparison runs in fresh interpreters, one with ``GMAT_SWEEP_CLEAR_KERNELS=0`` (GMAT's own teardown) and
one with it on; the pool and the list of loaded kernels are read from GMAT's own CSPICE after the second run of
a process (the first run that follows a teardown).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

from gmat_sweep.gmat import kernel_pool

from test_gravity import FIELDS, RUNS  # tests/ is on sys.path (pytest's rootdir-relative import of test modules)
from test_kernels import POOL_READERS

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Runs the script twice (another mission in between), then prints every variable of SPICE's pool with its values
# and every loaded kernel (file, type), as GMAT's CSPICE has them.
STATE = r"""
import ctypes, json, os, sys
from gmat_sweep import RunSpec, load_script, run_one
from gmat_sweep.engine import get_engine
from gmat_sweep.gmat.kernel_pool import gmat_cspice

script, other, out = sys.argv[1], sys.argv[2], sys.argv[3]
for k, path in enumerate((script, other, script)):
    outcome = run_one(RunSpec(k, load_script(path), {}, os.path.join(out, str(k)), []))
    assert outcome.status == "ok", outcome.error
with get_engine().session() as api:
    lib = gmat_cspice(api)
I = ctypes.c_int

""" + POOL_READERS + r"""
count = I()
lib.ktotal_(b"ALL", ctypes.byref(count), I(3))  # the f2c entry points: GMAT's library exports these
loaded = []
for i in range(1, count.value + 1):
    file, kind, source = (ctypes.create_string_buffer(1000) for _ in range(3))
    handle, found = I(), I()
    lib.kdata_(ctypes.byref(I(i)), b"ALL", file, kind, source, ctypes.byref(handle), ctypes.byref(found),
               I(3), I(1000), I(1000), I(1000))
    loaded.append([file.raw.decode().strip(), kind.raw.decode().strip()])
print(json.dumps({"pool": {name: value(name) for name in names()}, "loaded": loaded}))
"""


def state(tmp_path, script, other, clear):
    out = tmp_path / f"state-{clear}"
    done = subprocess.run([sys.executable, "-c", STATE, str(script), str(other), str(out)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, kernel_pool.ENV: clear})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_after_a_teardown_the_same_kernels_are_loaded_in_the_same_order_and_the_pool_is_the_same(tmp_path, leo):
    fields = tmp_path / "fields.script"
    fields.write_text(FIELDS)
    plain, cleared = state(tmp_path, leo, fields, "0"), state(tmp_path, leo, fields, "1")
    kinds = {kind for _, kind in plain["loaded"]}
    assert {"SPK", "PCK", "TEXT"} <= kinds, plain["loaded"]  # the DE405 SPK, the Earth and Luna PCKs, the text ones
    assert len(plain["pool"]) > 60 and "DELTET/DELTA_AT" in plain["pool"] and "BODY399_RADII" in plain["pool"]
    assert cleared["loaded"] == plain["loaded"]
    assert cleared["pool"] == plain["pool"]


def test_runs_write_the_same_bytes_with_the_pool_cleared_before_each_load(tmp_path, samples_dir):
    """All the scripts run one after another in one process, so every run but the first follows a teardown."""
    fields = tmp_path / "fields.script"
    fields.write_text(FIELDS)
    scripts = [str(fields), str(ROOT / "examples" / "leo_drag.script"),
               *map(str, sorted(samples_dir.glob("*.script"))), str(fields)]
    runs = {}
    for clear in ("0", "1"):
        done = subprocess.run([sys.executable, "-c", RUNS, str(tmp_path / clear), *scripts], capture_output=True,
                              text=True, timeout=600, env={**os.environ, kernel_pool.ENV: clear})
        assert done.returncode == 0, done.stderr
        runs[clear] = json.loads(done.stdout.splitlines()[-1])
    assert runs["0"].keys() == runs["1"].keys() and len(runs["0"]) == len(set(scripts))
    for script in runs["0"]:
        status, error, written, collected, _ = runs["0"][script]
        assert status == "ok", (script, error)
        assert len(collected) >= 7, f"{script}: nothing to compare"
        assert runs["1"][script][:4] == [status, error, written, collected], script
