"""Compaction on real sweeps: automatic when a sweep finishes or is read, equal tables before and after, resume
and extend after it, and a compaction killed midway (a real SIGKILL of a real process) losing nothing."""

from __future__ import annotations

import glob
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gmat_sweep.compact as compact
from gmat_sweep import Sweep
from gmat_sweep.backends import LocalPool
from gmat_sweep.designs import MonteCarlo

ROOT = pathlib.Path(__file__).resolve().parents[1]
MISSION = ROOT / "examples" / "leo_drag.script"
GRID = {"Sat.SMA": [6878.137, 6978.137, 7078.137], "TOF": [600, 1200]}


@pytest.fixture(scope="module")
def pool():
    with LocalPool(max_workers=2) as shared:
        yield shared


@pytest.fixture(scope="module")
def finished(pool, tmp_path_factory):
    """A 6-run sweep of real GMAT runs, read from its per-run files (automatic compaction off)."""
    out = tmp_path_factory.mktemp("finished") / "sweep"
    saved, compact.AUTO_RUNS = compact.AUTO_RUNS, None
    try:
        sweep = Sweep(MISSION, grid=GRID, out=out).run(pool, progress=False)
        tables = {"results": sweep.results(), "dataset": _dataset(sweep), "summary": sweep.summary()}
    finally:
        compact.AUTO_RUNS = saved
    assert not (out / compact.FOLDER).exists()
    return out, tables


def _dataset(sweep: Sweep) -> pd.DataFrame:
    frame = sweep.dataset().to_table().to_pandas()
    return frame[sorted(frame.columns)].sort_values(["run_id", "Sat.ElapsedSecs"]).reset_index(drop=True)


def _copy(finished, tmp_path) -> pathlib.Path:
    copy = tmp_path / "copy"
    shutil.copytree(finished[0], copy)
    return copy


def _held(out: pathlib.Path) -> list[int]:
    return sorted(compact.covered(str(out), "OrbitReport"))


def test_reading_a_sweep_with_many_loose_runs_compacts_it_and_reads_the_same(finished, tmp_path, monkeypatch):
    copy = _copy(finished, tmp_path)
    monkeypatch.setattr(compact, "AUTO_RUNS", 6)
    sweep = Sweep.from_manifest(copy)
    frame = sweep.results()
    assert _held(copy) == list(range(6))
    pd.testing.assert_frame_equal(frame, finished[1]["results"])
    pd.testing.assert_frame_equal(_dataset(sweep), finished[1]["dataset"])
    pd.testing.assert_frame_equal(sweep.summary(), finished[1]["summary"])
    # The osculating SMA at the first report line is the swept one: the rows belong to their parameters.
    first = frame.groupby(level="run_id").head(1)
    assert (first["Sat.Earth.SMA"] - first["Sat.SMA"]).abs().max() < 1e-6
    # The ids are in the file itself, as ranges; no list beside it.
    metadata = pq.read_schema(compact.path_of(str(copy), "OrbitReport")).metadata
    assert json.loads(metadata[compact.RUNS_KEY]) == [[0, 6]]
    assert not glob.glob(str(copy / compact.FOLDER / "*.json"))


def test_below_the_threshold_nothing_is_written(finished, tmp_path, monkeypatch):
    copy = _copy(finished, tmp_path)
    monkeypatch.setattr(compact, "AUTO_RUNS", 7)
    pd.testing.assert_frame_equal(Sweep.from_manifest(copy).results(), finished[1]["results"])
    assert not (copy / compact.FOLDER).exists()


def test_runs_that_finished_out_of_order_are_merged_in_run_order(finished, tmp_path):
    copy = _copy(finished, tmp_path)
    sweep = Sweep.from_manifest(copy)
    entries = sweep.manifest.entries
    # A reader compacted while runs 2 and 3 were still running: the file holds 0, 1, 4, 5.
    compact.compact(str(copy), sweep.design, {i: entries[i] for i in (0, 1, 4, 5)})
    assert _held(copy) == [0, 1, 4, 5]
    pd.testing.assert_frame_equal(Sweep.from_manifest(copy).results(), finished[1]["results"])
    before = os.stat(compact.path_of(str(copy), "OrbitReport"))
    # The next compaction copies 0, 1, 4, 5 from the old file and puts 2 and 3 between them.
    compact.compact(str(copy), sweep.design, entries)
    assert _held(copy) == list(range(6))
    assert os.stat(compact.path_of(str(copy), "OrbitReport")).st_ino != before.st_ino
    table = pq.read_table(compact.path_of(str(copy), "OrbitReport"))
    ids = table.column("run_id").to_pylist()
    assert ids == sorted(ids)
    pd.testing.assert_frame_equal(Sweep.from_manifest(copy).results(), finished[1]["results"])
    # Up to date: nothing is rewritten.
    current = os.stat(compact.path_of(str(copy), "OrbitReport")).st_ino
    compact.compact(str(copy), sweep.design, entries)
    assert os.stat(compact.path_of(str(copy), "OrbitReport")).st_ino == current


def test_a_killed_sweep_read_then_resumed_is_compacted_with_every_run(finished, tmp_path, monkeypatch, pool):
    out = tmp_path / "killed"
    script = textwrap.dedent(f"""
        from gmat_sweep import Sweep
        from gmat_sweep.backends import LocalPool
        if __name__ == "__main__":
            with LocalPool(max_workers=1) as pool:
                Sweep({str(MISSION)!r}, grid={GRID!r}, out={str(out)!r}).run(pool, progress=False)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        manifest = out / "manifest.jsonl"
        while process.poll() is None and (not manifest.exists() or manifest.read_bytes().count(b"\n") < 3):
            time.sleep(0.01)  # wait for two finished runs
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    monkeypatch.setattr(compact, "AUTO_RUNS", 2)
    sweep = Sweep.from_manifest(out)
    done = sorted(sweep.manifest.entries)
    assert 2 <= len(done) < 6, "the sweep finished before it was killed: nothing to resume"
    partial = sweep.results()  # reading compacts the finished runs
    assert _held(out) == done
    pd.testing.assert_frame_equal(partial.loc[done], finished[1]["results"].loc[done])
    sweep.resume(pool, progress=False)  # and finishing the sweep adds the rest to the same file
    assert _held(out) == list(range(6))
    pd.testing.assert_frame_equal(Sweep.from_manifest(out).results(), finished[1]["results"])


def test_extend_after_compaction_adds_the_new_runs_to_the_compact_file(tmp_path, monkeypatch, pool):
    monkeypatch.setattr(compact, "AUTO_RUNS", 2)
    perturb = {"Sat.SMA": "normal(6978.137, 20)", "TOF": "uniform(600, 900)"}
    sweep = Sweep(MISSION, design=MonteCarlo(perturb, 4, seed=7), out=tmp_path / "mc").run(pool, progress=False)
    assert _held(sweep.out) == [0, 1, 2, 3]  # compacted when it finished
    sweep = Sweep.from_manifest(sweep.out).extend(2, pool, progress=False)
    assert _held(sweep.out) == list(range(6))
    monkeypatch.setattr(compact, "AUTO_RUNS", None)
    whole = Sweep(MISSION, design=MonteCarlo(perturb, 6, seed=7), out=tmp_path / "whole").run(pool, progress=False)
    assert not (tmp_path / "whole" / compact.FOLDER).exists()
    pd.testing.assert_frame_equal(Sweep.from_manifest(sweep.out).results(), whole.results())


_KILLED_COMPACTION = """
import os, signal, sys
import pyarrow as pa
import pyarrow.parquet as pq
from gmat_sweep import Sweep

where = sys.argv[2]
if where == "mid-write":
    write = pq.ParquetWriter.write_table
    def write_then_die(self, *args, **kwargs):
        write(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)  # the temporary file is half written
    pq.ParquetWriter.write_table = write_then_die
else:
    def replace_never(*args):
        os.kill(os.getpid(), signal.SIGKILL)  # the new file is complete but not yet in place
    os.replace = replace_never
Sweep.from_manifest(sys.argv[1]).compact()
"""


@pytest.mark.parametrize("where", ["mid-write", "before-rename"])
def test_a_compaction_killed_midway_loses_nothing(finished, tmp_path, where):
    copy = _copy(finished, tmp_path)
    sweep = Sweep.from_manifest(copy)
    entries = sweep.manifest.entries
    compact.compact(str(copy), sweep.design, {i: entries[i] for i in (0, 1, 2)})  # an earlier compaction
    old = pathlib.Path(compact.path_of(str(copy), "OrbitReport")).read_bytes()
    killed = subprocess.run([sys.executable, "-c", _KILLED_COMPACTION, str(copy), where])
    assert killed.returncode == -signal.SIGKILL
    left = glob.glob(str(copy / compact.FOLDER / ".*.tmp"))
    assert len(left) == 1  # the killed process's temporary file
    assert pathlib.Path(compact.path_of(str(copy), "OrbitReport")).read_bytes() == old  # untouched
    assert _held(copy) == [0, 1, 2]
    pd.testing.assert_frame_equal(Sweep.from_manifest(copy).results(), finished[1]["results"])
    # The next compaction removes what the killed one left and finishes the job.
    Sweep.from_manifest(copy).compact()
    assert not glob.glob(str(copy / compact.FOLDER / ".*.tmp"))
    assert _held(copy) == list(range(6))
    pd.testing.assert_frame_equal(Sweep.from_manifest(copy).results(), finished[1]["results"])


def test_a_sweep_whose_compact_folder_cannot_be_written_is_read_from_its_run_files(finished, tmp_path, monkeypatch):
    copy = _copy(finished, tmp_path)
    monkeypatch.setattr(compact, "AUTO_RUNS", 1)
    (copy / compact.FOLDER).write_text("not a folder")  # as a read-only or full disk would, writing fails
    pd.testing.assert_frame_equal(Sweep.from_manifest(copy).results(), finished[1]["results"])
    assert (copy / compact.FOLDER).read_text() == "not a folder"


def test_an_ok_run_whose_file_is_lost_is_read_around_and_not_compacted_again_on_every_read(finished, tmp_path,
                                                                                          monkeypatch):
    copy = _copy(finished, tmp_path)
    (copy / "runs" / "5" / "OrbitReport.parquet").unlink()
    monkeypatch.setattr(compact, "AUTO_RUNS", None)
    expected = Sweep.from_manifest(copy).results()
    assert expected.loc[5, "Sat.Earth.SMA"].isna().all()
    monkeypatch.setattr(compact, "AUTO_RUNS", 1)
    sweep = Sweep.from_manifest(copy)
    pd.testing.assert_frame_equal(sweep.results(), expected)
    assert _held(copy) == [0, 1, 2, 3, 4]
    inode = os.stat(compact.path_of(str(copy), "OrbitReport")).st_ino
    pd.testing.assert_frame_equal(sweep.results(), expected)
    assert os.stat(compact.path_of(str(copy), "OrbitReport")).st_ino == inode


@pytest.mark.parametrize("inspect_files", [4096, 2])
def test_runs_whose_files_differ_in_columns_are_compacted_with_every_column(finished, tmp_path, monkeypatch,
                                                                            inspect_files):
    # A resume after the report gained a column (allow_changed_script) leaves runs whose files differ: each run's
    # file is conformed to the union of their columns, a column a run lacks being null in its rows. The footers are
    # inspected a few thousand files at a time (here also 2 at a time).
    import gmat_sweep.reading as reading

    monkeypatch.setattr(reading, "_INSPECT_FILES", inspect_files)
    copy = _copy(finished, tmp_path)
    sweep = Sweep.from_manifest(copy)
    path = copy / "runs" / "3" / sweep.manifest.entries[3]["outputs"]["OrbitReport"]
    table = pq.read_table(path)
    pq.write_table(table.append_column("Extra", pa.array(range(table.num_rows), pa.int64())), path)
    monkeypatch.setattr(compact, "AUTO_RUNS", None)
    loose = Sweep.from_manifest(copy).results()
    compact.compact(str(copy), sweep.design, sweep.manifest.entries)
    assert _held(copy) == list(range(6))
    frame = Sweep.from_manifest(copy).results()
    pd.testing.assert_frame_equal(frame, loose)
    assert frame["Extra"].notna().groupby(level="run_id").all().to_dict() == {i: i == 3 for i in range(6)}
    base = finished[1]["results"]
    pd.testing.assert_frame_equal(frame[base.columns], base)
