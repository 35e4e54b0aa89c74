"""Sweeps on LocalPool with the real engine: the table, failures, reports, out=, resume, preflight."""

from __future__ import annotations

import gc
import json
import os

import pandas as pd
import pytest

from gmat_sweep import DesignError, Sweep, SweepError, sweep
from gmat_sweep.backends import LocalPool
from gmat_sweep.manifest import read_manifest

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
    assert header["script"]["sha256"] and header["engine"]["gmat_version"] == "R2026a"
    assert header["versions"]["gmat-sweep"] and header["design"]["kind"] == "grid"


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
    leo.write_text(leo.read_text().replace("GMAT TOF = 1800;", "GMAT TOF = 900;"))
    with pytest.raises(SweepError, match="changed since this sweep started"):
        Sweep.from_manifest(out).resume(pool, progress=False)
    Sweep.from_manifest(out).resume(pool, progress=False, allow_changed_script=True)


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
