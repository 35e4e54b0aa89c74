"""Sweeps on LocalPool with the real engine: the table, failures, reports, out=, resume, preflight."""

from __future__ import annotations

import gc
import hashlib
import importlib
import importlib.metadata
import json
import os
import platform
import signal
import tempfile
import time

import pandas as pd
import pytest

import gmat_sweep
from gmat_sweep import DesignError, Sweep, SweepError, sweep
from gmat_sweep.backends import LocalPool
from gmat_sweep.distribution import DISTRIBUTION
from gmat_sweep.manifest import read_manifest

from conftest import run_in_thread

sweep_module = importlib.import_module("gmat_sweep.sweep")  # the package's name ``sweep`` is the function

# A run fails inside the mission sequence when Idx > 3: found only by running, not by the preflight's load.
RUNTIME_FAILURE = "Create Variable Idx;\nGMAT Idx = 1;\n"
SECOND_REPORT = """Create ReportFile Finals;
GMAT Finals.Filename = 'finals.txt';
GMAT Finals.FixedWidth = false;
GMAT Finals.Delimiter = ',';
GMAT Finals.Add = {Sat.ElapsedSecs, Sat.Earth.RMAG};
"""


@pytest.fixture(scope="module")
def pool():
    with LocalPool(max_workers=2) as shared:
        yield shared


@pytest.fixture
def mission(leo):
    text = leo.read_text().replace("BeginMissionSequence;", RUNTIME_FAILURE + SECOND_REPORT + "BeginMissionSequence;")
    text += "Gains(1, Idx) = 1;\nReport Finals Sat.ElapsedSecs Sat.Earth.RMAG;\n"
    leo.write_text(text)
    return leo


def test_grid_sweep_returns_the_tidy_table(mission, tmp_path, pool):
    out = tmp_path / "out"
    df = sweep(mission, grid={"Sat.SMA": [7000.0, 7100.0], "TOF": [300, 600]}, backend=pool, out=out,
               progress=False)
    assert df.index.names == ["run_id", "time"]
    assert list(df.columns[:2]) == ["Sat.SMA", "TOF"] and df.columns[-1] == "status"
    assert {"Sat.UTCGregorian", "Sat.ElapsedSecs", "Sat.Earth.SMA", "Sat.Earth.ECC"} <= set(df.columns)
    assert sorted(df.index.get_level_values("run_id").unique()) == [0, 1, 2, 3]
    assert (df["status"] == "ok").all()
    run3 = df.loc[3]
    assert run3["Sat.SMA"].unique().tolist() == [7100.0] and run3["Sat.ElapsedSecs"].iloc[-1] == pytest.approx(600)
    assert isinstance(run3.index, pd.DatetimeIndex) and run3.index.is_monotonic_increasing
    # Layout: manifest, the script as run, one folder per run with Parquet and the log.
    assert (out / "manifest.jsonl").exists() and (out / "script" / "leo.script").read_text() == mission.read_text()
    assert sorted(os.listdir(out / "runs" / "2")) == ["Finals.parquet", "RF.parquet", "gmat.log"]
    header = read_manifest(out).header
    assert header["script"]["sha256"] == hashlib.sha256(mission.read_bytes()).hexdigest()
    assert header["script"]["path"] == str(mission) and header["engine"]["gmat_version"] == "R2026a"
    assert header["versions"]["gmat-sweep"] == importlib.metadata.version(DISTRIBUTION) == gmat_sweep.__version__
    assert header["versions"]["python"] == platform.python_version() and header["design"]["kind"] == "grid"


def test_failed_runs_are_rows_with_their_error_and_every_report_is_reachable(mission, tmp_path, pool):
    s = Sweep(mission, grid={"Idx": [1, 5, 2]}, out=tmp_path / "o", collect=["Sat.Earth.SMA"]).run(pool, False)
    df = s.results()
    failed = df.loc[1]
    assert len(failed) == 1 and failed["status"].iloc[0] == "failed" and failed.index.isna().all()
    assert failed["Sat.Earth.SMA"].isna().all()
    assert s.counts() == {"ok": 2, "failed": 1, "missing": 0}
    errors = s.failed()
    assert list(errors.index) == [1] and "Gains" in errors.loc[1, "error"] and "line" in errors.loc[1, "error"]
    assert s.reports == ["RF", "Finals"]
    finals = s.results(report="Finals")
    assert "Sat.Earth.RMAG" in finals.columns and list(finals.index.get_level_values(0).unique()) == [0, 1, 2]
    summary = s.summary()
    assert summary.loc[0, "Sat.Earth.SMA"] == pytest.approx(df.loc[0, "Sat.Earth.SMA"].iloc[-1], rel=1e-12)
    assert pd.isna(summary.loc[1, "Sat.Earth.SMA"]) and summary.loc[2, "duration"] > 0
    with pytest.raises(KeyError, match="RF, Finals"):
        s.results(report="Nope")


def test_samples_sweep_and_collect_only_missions(samples_dir, tmp_path, pool):
    rows = [{"TOI.Element1": 1.0, "GOI.Element1": 1.5}, {"TOI.Element1": 1.2, "GOI.Element1": 1.4}]
    s = Sweep(samples_dir / "Ex_HohmannTransfer.script", samples=pd.DataFrame(rows), out=tmp_path / "h",
              collect=["DefaultSC.Earth.RMAG", "TOI.Element1", "DefaultSC.A1ModJulian",
                       "DefaultSC.UTCGregorian"]).run(pool, False)
    df = s.results()  # no ReportFile: one row per run
    assert len(df) == 2 and (df["status"] == "ok").all()
    summary = s.summary()
    assert summary["DefaultSC.Earth.RMAG"].between(41000, 43000).all()  # the targeter reached GEO either way
    assert summary["DefaultSC.A1ModJulian"].dtype == float  # days, at full precision
    assert pd.api.types.is_datetime64_any_dtype(summary["DefaultSC.UTCGregorian"])
    assert (summary["DefaultSC.UTCGregorian"].dt.year == 2000).all()


def test_preflight_refuses_a_bad_value_before_any_run(leo, tmp_path, pool):
    out = tmp_path / "o"
    with pytest.raises(SweepError, match=r"(?s)GMAT rejects the sweep.*ECC.*Sat.ECC=-1"):
        Sweep(leo, grid={"Sat.ECC": [0.1, -1], "Sat.SMA": [7000, 7100, 7200]}, out=out).run(pool, False)
    assert not (out / "manifest.jsonl").exists()
    with pytest.raises(SweepError, match="NoSuchField"):
        Sweep(leo, grid={"Sat.NoSuchField": [1]}, out=tmp_path / "p").run(pool, False)
    with pytest.raises(SweepError, match="Nope"):
        Sweep(leo, grid={"Sat.SMA": [7000]}, out=tmp_path / "q", collect=["Nope.X"]).run(pool, False)


def test_bad_design_and_out_errors(leo, tmp_path, pool):
    with pytest.raises(DesignError, match="not a GMAT path"):
        Sweep(leo, samples=[{"Sat SMA": 1}])
    with pytest.raises(DesignError, match="empty"):
        Sweep(leo, grid={})
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SweepError, match="not writable"):
        Sweep(leo, grid={"Sat.SMA": [7000]}, out=blocker / "sub").run(pool, False)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.tex").write_text("precious")
    with pytest.raises(SweepError, match="not empty"):
        Sweep(leo, grid={"Sat.SMA": [7000]}, out=busy).run(pool, False)
    assert (busy / "thesis.tex").read_text() == "precious"


def test_out_holding_another_sweep_is_refused_and_the_same_sweep_continues(leo, tmp_path, pool, capsys):
    out = tmp_path / "o"
    first = Sweep(leo, grid={"Sat.SMA": [7000, 7100]}, out=out).run(pool, False)
    before = (out / "manifest.jsonl").read_bytes()
    with pytest.raises(SweepError, match="holds a different sweep"):
        Sweep(leo, grid={"Sat.SMA": [7000, 7200]}, out=out).run(pool, False)
    assert (out / "manifest.jsonl").read_bytes() == before
    Sweep(leo, grid={"Sat.SMA": [7000, 7100]}, out=out).run(pool, False)
    assert "already ok; nothing to do" in capsys.readouterr().err
    assert (out / "manifest.jsonl").read_bytes() == before
    assert first.counts()["ok"] == 2


def test_resume_reruns_exactly_missing_and_failed_runs(leo, tmp_path, pool):
    out = tmp_path / "o"
    reference = Sweep(leo, grid={"Sat.SMA": [7000, 7100, 7200], "TOF": [60, 120]}, out=tmp_path / "ref").run(pool, False)
    Sweep(leo, grid={"Sat.SMA": [7000, 7100, 7200], "TOF": [60, 120]}, out=out).run(pool, False)
    path = out / "manifest.jsonl"
    lines = path.read_text().splitlines()
    kept = [lines[0]] + [l for l in lines[1:] if json.loads(l)["run_id"] not in (1, 4)]
    failed = json.loads(next(l for l in lines[1:] if json.loads(l)["run_id"] == 2))
    failed.update(status="failed", error="evicted")
    path.write_text("\n".join(kept + [json.dumps(failed)]) + "\n")
    again = Sweep.from_manifest(out)
    assert again.counts() == {"ok": 3, "failed": 1, "missing": 2}
    ok_before = {i: e["start"] for i, e in again.manifest.entries.items() if e["status"] == "ok"}
    again.resume(pool, progress=False)
    entries = read_manifest(out).entries
    assert again.counts() == {"ok": 6, "failed": 0, "missing": 0}
    assert {i: entries[i]["start"] for i in ok_before} == ok_before  # finished runs were not rerun
    new_lines = path.read_text().splitlines()[len(kept) + 1:]
    assert sorted(json.loads(l)["run_id"] for l in new_lines) == [1, 2, 4]
    pd.testing.assert_frame_equal(again.results(), reference.results())


def test_resume_refuses_a_changed_script_unless_allowed(leo, tmp_path, pool, capsys):
    out = tmp_path / "o"
    Sweep(leo, grid={"Sat.SMA": [7000, 7100]}, out=out).run(pool, False)
    Sweep.from_manifest(out).resume(pool, progress=False)
    assert "nothing to do" in capsys.readouterr().err
    drop_runs(out, {1})  # run 1's line was lost: it will run again
    leo.write_text(leo.read_text().replace("GMAT TOF = 1800;", "GMAT TOF = 900;"))
    before = (out / "manifest.jsonl").read_bytes()
    with pytest.raises(SweepError, match="changed since this sweep started"):
        Sweep.from_manifest(out).resume(pool, progress=False)
    assert (out / "manifest.jsonl").read_bytes() == before
    again = Sweep.from_manifest(out).resume(pool, progress=False, allow_changed_script=True)
    assert again.counts() == {"ok": 2, "failed": 0, "missing": 0}
    df = again.results()
    assert df.loc[0, "Sat.ElapsedSecs"].iloc[-1] == pytest.approx(1800)  # finished before the change: kept
    assert df.loc[1, "Sat.ElapsedSecs"].iloc[-1] == pytest.approx(900)  # rerun on the changed script
    assert (df.loc[1, "Sat.SMA"] == 7100).all()


def drop_runs(out, run_ids) -> None:
    """Remove the manifest lines of ``run_ids``, as if the driver was killed before recording them."""
    path = out / "manifest.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0]] + [l for l in lines[1:] if json.loads(l)["run_id"] not in run_ids]) + "\n")


def test_a_sweep_whose_script_is_gone_resumes_from_its_saved_copy(leo, tmp_path, pool):
    grid = {"Sat.SMA": [7000.0, 7100.0, 7200.0]}
    reference = Sweep(leo, grid=grid, out=tmp_path / "ref").run(pool, False)
    out = tmp_path / "o"
    Sweep(leo, grid=grid, out=out).run(pool, False)
    drop_runs(out, {2})
    text = leo.read_text()
    leo.unlink()
    again = Sweep.from_manifest(out)
    assert again.source.text == text and again.source.path == str(leo)
    again.resume(pool, progress=False)
    assert again.counts() == {"ok": 3, "failed": 0, "missing": 0}
    pd.testing.assert_frame_equal(again.results(), reference.results())


def test_a_worker_killed_during_the_preflight_is_a_clear_error_and_the_driver_goes_on(leo, tmp_path, monkeypatch):
    # 20 000 Variables: GMAT takes about 2 s to load this script, so the preflight is still loading it when the
    # test sees it start (validate's temporary folder appears in the pool's temporary folder) and kills its worker.
    slow = leo.parent / "slow.script"
    variables = "".join(f"Create Variable V{i};\n" for i in range(20000))
    slow.write_text(leo.read_text().replace("BeginMissionSequence;", variables + "BeginMissionSequence;"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where LocalPool makes its workers' folder
    out = tmp_path / "o"
    with LocalPool(max_workers=1) as pool:
        sweep = Sweep(slow, grid={"Sat.SMA": [7000.0]}, out=out)
        thread, box = run_in_thread(sweep, pool)
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("gmat-sweep-pool-*/**/gmat-sweep-validate-*")):
            assert time.monotonic() < deadline and thread.is_alive(), box
            time.sleep(0.01)
        os.kill(pool.busy_pids()[0], signal.SIGKILL)
        thread.join(120)
        error = box.get("error")
        assert isinstance(error, SweepError), error
        assert str(error).startswith("the GMAT engine crashed while checking the script (") and "signal 9" in str(
            error)
        assert not (out / "manifest.jsonl").exists()
        assert Sweep(leo, grid={"Sat.SMA": [7000.0]}, out=tmp_path / "p").run(pool, False).counts()["ok"] == 1


def test_fsync_every_groups_the_manifests_fsyncs_and_resume_keeps_it(leo, tmp_path, pool, manifest_fsyncs,
                                                                       monkeypatch):
    monkeypatch.setattr(sweep_module, "GROUPED_FSYNC_SECONDS", 1e9)  # only the line count triggers an fsync here
    out = tmp_path / "o"
    s = Sweep(leo, grid={"TOF": [60 + i for i in range(10)]}, out=out, fsync_every=4).run(pool, False)
    path = str(out / "manifest.jsonl")
    # The header: written then closed (2); 10 run lines: after lines 4 and 8, and at close (3). Per line: 13.
    assert manifest_fsyncs == {path: 5}
    assert s.counts()["ok"] == 10 and read_manifest(out).header["fsync_every"] == 4
    drop_runs(out, set(range(5)))
    manifest_fsyncs.clear()
    Sweep.from_manifest(out).resume(pool, progress=False)
    assert manifest_fsyncs == {path: 2}  # 5 lines: after line 4 and at close
    manifest_fsyncs.clear()
    Sweep(leo, grid={"TOF": [60, 61, 62]}, out=tmp_path / "p").run(pool, False)
    # The default: every line is fsynced before its run is counted, several lines to one fsync (group_commit.py);
    # then the writer's close.
    assert list(manifest_fsyncs) == [str(tmp_path / "p" / "manifest.jsonl")]
    assert 2 + 1 + 1 <= manifest_fsyncs[str(tmp_path / "p" / "manifest.jsonl")] <= 2 + 3 + 1


def test_resume_of_a_folder_without_manifest(tmp_path):
    with pytest.raises(Exception, match="no sweep manifest"):
        Sweep.from_manifest(tmp_path)


def test_out_none_uses_a_temporary_folder_that_lives_with_the_objects(leo):
    df = sweep(leo, grid={"Sat.SMA": [7000.0]}, progress=False, backend=None)
    handle = df.attrs["sweep"]
    folder = handle.out
    assert os.path.isdir(folder) and handle.summary()["status"].tolist() == ["ok"]
    copy = df.copy()
    assert copy.attrs["sweep"].out == folder  # copies share the sweep rather than deep-copying it
    del df, copy, handle
    gc.collect()
    assert not os.path.exists(folder)


def test_preflight_tries_the_extremes_of_long_numeric_lists():
    from gmat_sweep.design import Grid
    from gmat_sweep.sweep import _preflight_rows

    rows = _preflight_rows(Grid({"Sat.ECC": [i / 1000 for i in range(500)] + [-1.0], "Sat.Id": ["A", "B"]}), 16)
    tried = {row["Sat.ECC"] for row in rows}
    assert len(rows) == 16 and -1.0 in tried and 0.499 in tried
    assert {row["Sat.Id"] for row in rows} == {"A", "B"}


def test_resume_refuses_another_engine_unless_allowed(leo, tmp_path, pool):
    out = tmp_path / "o"
    Sweep(leo, grid={"Sat.SMA": [7000, 7100]}, out=out).run(pool, False)
    path = out / "manifest.jsonl"
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    header["engine"]["gmat_version"] = "R2025a"
    failed = json.loads(lines[2])
    failed.update(status="failed", error="evicted")
    path.write_text("\n".join([json.dumps(header), lines[1], json.dumps(failed)]) + "\n")
    with pytest.raises(SweepError, match="another GMAT engine.*gmat_version 'R2025a' -> 'R2026a'"):
        Sweep.from_manifest(out).resume(pool, progress=False)
    Sweep.from_manifest(out).resume(pool, progress=False, allow_changed_script=True)
    assert Sweep.from_manifest(out).counts()["ok"] == 2
