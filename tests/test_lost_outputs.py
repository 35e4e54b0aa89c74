"""No output is lost silently: GMAT's STK ephemerides from several worker processes at once, on LocalPool and on
DaskPool, are complete and byte for byte those of a one-worker sweep; a run whose output GMAT could not write fails
with GMAT's words.

GMAT writes an STK ephemeris first to a file named after it in ``$TMPDIR``: worker processes sharing one
``TMPDIR`` wrote over each other's, leaving runs ``ok`` with empty or foreign ephemerides.
"""

from __future__ import annotations

import os
import pathlib

import pytest

from gmat_sweep import Sweep
from gmat_sweep import worker
from gmat_sweep.backends import LocalPool
from gmat_sweep.gmat.script import load_script
from gmat_sweep.records import RunSpec

from conftest import SAMPLES

STK = SAMPLES / "Ex_R2016a_STKEphemOutput.script"
GRID = {"theSat.SMA": [7000.0 + 25.0 * i for i in range(24)]}

pytestmark = pytest.mark.skipif(not STK.exists(), reason=f"GMAT sample {STK} not found")


def ephemerides(sweep: Sweep) -> dict[int, bytes]:
    assert sweep.counts() == {"ok": len(GRID["theSat.SMA"]), "failed": 0, "missing": 0}, sweep.failed()
    files = {}
    for run_id in range(len(sweep)):
        files[run_id] = (pathlib.Path(sweep.out) / "runs" / str(run_id) / "EphemerisFile1.e").read_bytes()
    return files


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory) -> dict[int, bytes]:
    out = tmp_path_factory.mktemp("stk") / "one"
    with LocalPool(max_workers=1) as pool:
        files = ephemerides(Sweep(STK, grid=GRID, out=out).run(pool, progress=False))
    # A real ephemeris of each orbit: the STK header, then one line per integrator step.
    for data in files.values():
        assert data.startswith(b"stk.v.") and b"EphemerisTimePosVel" in data and len(data) > 10_000
    assert len(set(files.values())) > 1  # the orbits differ
    return files


def test_two_local_workers_write_the_same_ephemerides_as_one(one_worker, tmp_path):
    with LocalPool(max_workers=2) as pool:
        files = ephemerides(Sweep(STK, grid=GRID, out=tmp_path / "two").run(pool, progress=False))
    assert files == one_worker


def test_two_dask_workers_write_the_same_ephemerides_as_one(one_worker, tmp_path):
    pytest.importorskip("distributed")
    from gmat_sweep.backends.dask import DaskPool

    for shared in (False, True):
        with DaskPool(n_workers=2, shared_storage=shared) as pool:
            sweep = Sweep(STK, grid=GRID, out=tmp_path / f"dask-{shared}").run(pool, progress=False)
        assert ephemerides(sweep) == one_worker


def test_an_ephemeris_gmat_cannot_write_fails_the_run_with_gmats_words(tmp_path):
    # GMAT's STK writer cannot open its temporary file (a link into a folder that does not exist): it logs
    # "Failed to open temp file", finishes the mission and leaves an empty ephemeris.
    scratch = pathlib.Path(worker.process_scratch()) / "tmp"
    scratch.mkdir(exist_ok=True)
    blocked = scratch / "EphemerisFile1.e"
    blocked.symlink_to(tmp_path / "no-such-folder" / "x.e")
    try:
        outcome = worker.run_one(RunSpec(0, load_script(STK), {}, str(tmp_path / "run")))
    finally:
        blocked.unlink()
    assert outcome.status == "failed"
    assert "Failed to open temp file" in outcome.error and "EphemerisFile1" in outcome.error
    assert os.path.getsize(tmp_path / "run" / "EphemerisFile1.e") == 0
    # The next run in this process writes its ephemeris again.
    again = worker.run_one(RunSpec(1, load_script(STK), {}, str(tmp_path / "again")))
    assert again.ok and os.path.getsize(tmp_path / "again" / "EphemerisFile1.e") > 10_000
