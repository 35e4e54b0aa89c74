"""run_one and validate on the real embedded engine: overrides, outputs, collect, errors, reuse."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import pathlib
import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest

from gmat_sweep import RunOutcome, RunSpec, ScriptError, load_script, run_one, validate
from gmat_sweep.engine import get_engine


def spec(path, overrides=None, out=None, collect=(), run_id=0):
    return RunSpec(run_id=run_id, script=load_script(path), overrides=dict(overrides or {}), out_dir=str(out),
                   collect=list(collect))


def report(outcome: RunOutcome, out: pathlib.Path, name: str = "RF") -> pd.DataFrame:
    return pq.read_table(out / outcome.outputs[name]).to_pandas()


def test_run_with_every_kind_of_override(leo, tmp_path):
    overrides = {"Sat.SMA": 7100.0, "Sat.Epoch": "01 Jan 2026 12:00:00.000", "TOF": 600,
                 "FM.GravityField.Earth.Degree": 8, "Sat.Id": "X", "TOI.Element1": 0.1, "Label": "swept",
                 "Gains": [1.5, 2.5, 3.5], "RF.WriteHeaders": True}
    collect = ["Sat.Earth.SMA", "TOI.Element1", "Sat.ElapsedDays", "TOF", "Sat.Id", "Label", "Gains(1,2)",
               "FM.GravityField.Earth.Degree", "Sat.UTCGregorian"]
    out = tmp_path / "run0"
    outcome = run_one(spec(leo, overrides, out, collect))
    assert outcome.status == "ok", outcome.error
    assert outcome.error is None and outcome.duration > 0
    assert outcome.outputs == {"RF": "RF.parquet"}
    table = report(outcome, out)
    assert table["Sat.ElapsedSecs"].iloc[-1] == pytest.approx(600.0)
    assert table["Sat.UTCGregorian"].iloc[0] == pd.Timestamp("2026-01-01 12:00:00")
    assert table["Sat.Earth.SMA"].iloc[0] > 7100.0  # the 0.1 km/s burn raised the orbit
    c = outcome.collected
    assert c["TOI.Element1"] == 0.1 and c["TOF"] == 600 and c["Gains(1,2)"] == 2.5
    assert c["Sat.Id"] == "X" and c["Label"] == "swept" and c["FM.GravityField.Earth.Degree"] == 8
    assert c["Sat.ElapsedDays"] == pytest.approx(600 / 86400)
    assert c["Sat.Earth.SMA"] == pytest.approx(table["Sat.Earth.SMA"].iloc[-1], rel=1e-12)
    assert c["Sat.UTCGregorian"] == "01 Jan 2026 12:10:00.000"
    assert (out / "gmat.log").exists() and outcome.log == "gmat.log"
    assert outcome.fingerprint["engine"] == "embedded" and outcome.fingerprint["gmat_version"] == "R2026a"
    assert RunOutcome.from_dict(outcome.to_dict()).to_dict() == outcome.to_dict()


def test_datetime_epoch_override_is_format_independent(leo, tmp_path):
    outcome = run_one(spec(leo, {"Sat.DateFormat": "UTCModJulian", "Sat.Epoch": dt.datetime(2026, 3, 1, 6)},
                           tmp_path / "o", ["Sat.UTCGregorian"]))
    assert outcome.ok, outcome.error
    assert outcome.collected["Sat.UTCGregorian"] == "01 Mar 2026 06:30:00.000"


def test_scripts_without_gmat_prefix_and_with_include(tmp_path, leo):
    text = leo.read_text()
    parts = tmp_path / "parts"
    parts.mkdir()
    resources, sequence = text.split("BeginMissionSequence;\n")
    (parts / "resources.script").write_text(resources.replace("GMAT ", ""))  # no prefix anywhere
    main = tmp_path / "main.script"
    main.write_text("% main\n#Include 'parts/resources.script'\nBeginMissionSequence;\n" + sequence)
    outcome = run_one(spec(main, {"Sat.SMA": 7200.0, "TOF": 300}, tmp_path / "o", ["Sat.ElapsedSecs"]))
    assert outcome.ok, outcome.error
    assert outcome.collected["Sat.ElapsedSecs"] == pytest.approx(300.0)
    assert report(outcome, tmp_path / "o")["Sat.Earth.SMA"].iloc[0] == pytest.approx(7200.0)


def test_every_output_lands_in_the_run_directory(samples_dir, tmp_path):
    out = tmp_path / "o"
    outcome = run_one(spec(samples_dir / "Ex_R2016a_STKEphemOutput.script", {"theSat.SMA": 7100.0}, out))
    assert outcome.ok, outcome.error
    assert "EphemerisFile1.e" in outcome.files and (out / "EphemerisFile1.e").stat().st_size > 0
    outcome = run_one(spec(samples_dir / "Ex_TargetFiniteBurn_CenterPeriapsisDuration.script", {}, tmp_path / "t"))
    assert outcome.ok, outcome.error
    assert "DC1.data" in outcome.files and "DefaultReportFile" in outcome.outputs


EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "leo_drag.script"


def check_run_a_b_a_leaks_nothing(leo, tmp_path, other):
    def digest(outcome, out):
        return hashlib.sha256((out / outcome.outputs["RF"]).read_bytes()).hexdigest(), outcome.collected

    a1 = run_one(spec(leo, {"Sat.SMA": 7100.0, "TOI.Element1": 0.05}, tmp_path / "a1", ["Sat.Earth.SMA"]))
    b = run_one(spec(leo, {"Sat.SMA": 8000.0, "FM.GravityField.Earth.Degree": 2, "Sat.ECC": 0.1},
                     tmp_path / "b", ["Sat.Earth.SMA"]))
    between = run_one(spec(other, {}, tmp_path / "other"))
    a2 = run_one(spec(leo, {"Sat.SMA": 7100.0, "TOI.Element1": 0.05}, tmp_path / "a2", ["Sat.Earth.SMA"]))
    assert a1.ok and b.ok and between.ok and a2.ok, (a1.error, b.error, between.error, a2.error)
    assert digest(a1, tmp_path / "a1") == digest(a2, tmp_path / "a2")
    assert digest(a1, tmp_path / "a1") != digest(b, tmp_path / "b")


def test_reuse_leaks_no_state_between_runs(leo, tmp_path):
    """Run A, run B and the project's drag example (other objects, drag, another propagator), then A again."""
    check_run_a_b_a_leaks_nothing(leo, tmp_path, EXAMPLE)


def test_reuse_leaks_no_state_between_runs_of_a_gmat_sample(leo, tmp_path, samples_dir):
    """The same with one of GMAT's own samples (a targeter) in between."""
    check_run_a_b_a_leaks_nothing(leo, tmp_path, samples_dir / "Ex_HohmannTransfer.script")


@pytest.mark.parametrize("overrides, message", [
    ({"Nope.SMA": 1.0}, 'Cannot find LHS object named "Nope"'),
    ({"Sat.NoSuchField": 1.0}, 'field name "NoSuchField" on object "Sat" is not permitted'),
    ({"Sat.SMA": "abc"}, 'The value of "\'abc\'" for field "SMA"'),
    ({"Sat.ECC": -1}, 'for field "ECC" on object "Sat" is not an allowed value'),
])
def test_bad_overrides_fail_with_gmats_words(leo, tmp_path, overrides, message):
    outcome = run_one(spec(leo, overrides, tmp_path / "o"))
    assert outcome.status == "failed"
    assert message in outcome.error
    path = next(iter(overrides))
    assert f"override {path}" in outcome.error  # the line is named in the user's terms
    with pytest.raises(ScriptError, match="override"):
        validate(leo, overrides)


def test_bad_path_value_and_collect_are_failed_outcomes(leo, tmp_path):
    assert "not a GMAT parameter path" in run_one(spec(leo, {"=1": 1}, tmp_path / "o")).error
    assert "non-finite" in run_one(spec(leo, {"Sat.SMA": float("nan")}, tmp_path / "o")).error
    outcome = run_one(spec(leo, {}, tmp_path / "o", ["Sat.NoSuchThing"]))
    assert outcome.status == "failed" and "NoSuchThing" in outcome.error


def test_syntax_error_names_the_users_line(tmp_path, leo):
    broken = tmp_path / "broken.script"
    lines = leo.read_text().splitlines()
    lines.insert(3, "GMAT Sat.SMA = = ;")  # becomes line 4
    broken.write_text("\n".join(lines) + "\n")
    outcome = run_one(spec(broken, {"Sat.INC": 10.0, "TOF": 60}, tmp_path / "o"))
    assert outcome.status == "failed"
    assert "line 4" in outcome.error and str(broken) in outcome.error
    with pytest.raises(ScriptError, match="line 4"):
        validate(broken)


def test_not_a_script(tmp_path):
    path = tmp_path / "notes.script"
    path.write_text("This is not a GMAT script at all.\n")
    outcome = run_one(spec(path, {}, tmp_path / "o"))
    assert outcome.status == "failed"
    assert outcome.error == (
        f'GMAT could not load the script: {path}: Interpreter Exception: The function "ThisisnotaGMATscriptatall." '
        "is not available; if it is a GmatFunction, you may need to enable the GmatFunction plugin "
        '(libGmatFunction) in line: "line 1: This is not a GMAT script at all."')


def test_failure_inside_the_mission_sequence(tmp_path, leo):
    text = leo.read_text().replace("Propagate Prop(Sat) {Sat.ElapsedSecs = TOF};",
                                   "Propagate Prop(Sat) {Sat.ElapsedSecs = TOF};\nGains(1,5) = 1;")
    path = tmp_path / "bad_sequence.script"
    path.write_text(text)
    outcome = run_one(spec(path, {"TOF": 60}, tmp_path / "o"))
    assert outcome.status == "failed"
    assert "Gains" in outcome.error


def test_each_run_log_holds_that_run_and_nothing_else(leo, tmp_path, monkeypatch):
    """GMAT logs to one file per process; each run keeps its own part, across a rollover of that file and after
    other code in the process pointed GMAT's log elsewhere."""
    from gmat_sweep import worker_process
    from gmat_sweep.engine import get_engine

    bad = tmp_path / "bad.script"
    bad.write_text(leo.read_text().replace("Propagate Prop(Sat) {Sat.ElapsedSecs = TOF};",
                                           "Propagate Prop(Sat) {Sat.ElapsedSecs = TOF};\nGains(1,5) = 1;"))
    good = run_one(spec(leo, {"TOF": 60}, tmp_path / "a"))
    failed = run_one(spec(bad, {"TOF": 60}, tmp_path / "b"))
    with get_engine().session() as api:
        api.UseLogFile(str(tmp_path / "elsewhere.log"))
    taken = run_one(spec(leo, {"TOF": 60}, tmp_path / "d"))
    after = run_one(spec(leo, {"TOF": 60}, tmp_path / "e"))
    monkeypatch.setattr(worker_process, "PROCESS_LOG_LIMIT", 10)  # every run now starts a fresh process log
    rolled = run_one(spec(leo, {"TOF": 60}, tmp_path / "c"))
    assert good.ok and rolled.ok and taken.ok and after.ok and not failed.ok
    logs = {name: (tmp_path / name / "gmat.log").read_text() for name in "abcde"}
    for name in "ace":
        assert logs[name].count("Interpreting scripts") == 1, logs[name]
        assert logs[name].count("Mission run completed") == 1 and "Gains" not in logs[name]
    assert logs["b"].count("Interpreting scripts") == 1 and "Gains" in logs["b"]
    assert "Mission run completed" not in logs["b"]
    assert "pointed elsewhere" in logs["d"] and "Interpreting scripts" in (tmp_path / "elsewhere.log").read_text()
    # A run refused before GMAT is asked anything has an empty log, and the next run's log is whole.
    assert "non-finite" in run_one(spec(leo, {"TOF": float("nan")}, tmp_path / "f")).error
    assert (tmp_path / "f" / "gmat.log").read_text() == ""
    assert run_one(spec(leo, {"TOF": 60}, tmp_path / "g")).ok
    assert "Mission run completed" in (tmp_path / "g" / "gmat.log").read_text()


def test_unwritable_output_directory(leo, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    outcome = run_one(spec(leo, {}, blocker / "run"))
    assert outcome.status == "failed" and "not writable" in outcome.error


def test_run_one_never_raises_even_on_a_malformed_spec(tmp_path):
    outcome = run_one(RunSpec(0, script=None, overrides={}, out_dir=str(tmp_path / "o")))  # type: ignore[arg-type]
    assert outcome.status == "failed" and "AttributeError" in outcome.error


def gmat_output_folders(script: pathlib.Path) -> list[pathlib.Path]:
    """Everywhere a run of ``script`` outside run_one could leave a report: GMAT's own runtime/output folder (where
    a relative ReportFile name lands), the script's folder and the working directory."""
    from gmatpy import _runtime

    from gmat_sweep.engine import get_engine

    get_engine("embedded")
    return [pathlib.Path(_runtime._directory.name), script.parent, pathlib.Path.cwd()]


def test_validate_accepts_good_overrides_without_running(leo, tmp_path):
    # A run would write both reports: one named by an absolute path, one relative (into GMAT's output folder).
    absolute = tmp_path / "would_be_written.txt"
    leo.write_text(leo.read_text().replace("Create ReportFile RF;", f"""Create ReportFile Abs;
GMAT Abs.Filename = '{absolute}';
GMAT Abs.Add = {{Sat.ElapsedSecs}};
Create ReportFile RF;"""))
    folders = gmat_output_folders(leo)
    before = {p for folder in folders for p in folder.rglob("*.txt")}
    validate(leo, {"Sat.SMA": 7100.0, "TOF": 60, "Gains": [1, 2, 3]}, collect=["Sat.Earth.SMA"])
    assert not absolute.exists()
    assert {p for folder in folders for p in folder.rglob("*.txt")} == before
    # The same look-out sees a run: GMAT writes both reports when the script runs.
    with get_engine().session() as api:
        api.LoadScript(str(leo))
        api.RunScript()
    assert absolute.exists()
    assert any(p.name == "leo.txt" for folder in folders for p in folder.rglob("*.txt"))


def test_a_process_removes_its_scratch_folder_when_it_exits():
    code = "from gmat_sweep import worker; print(worker.process_scratch())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    scratch = done.stdout.strip()
    assert os.path.basename(scratch).startswith("gmat-sweep-") and not os.path.exists(scratch)
