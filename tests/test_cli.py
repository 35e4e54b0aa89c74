"""The gmat-sweep command: grid syntax, exit codes, show, resume, doctor, Ctrl-C."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time

import click
import pytest
from click.testing import CliRunner

from gmat_sweep import Sweep
from gmat_sweep.cli import main, parse_grid_option
from gmat_sweep.manifest import read_manifest

CLI = [sys.executable, "-m", "gmat_sweep.cli"]


@pytest.mark.parametrize("option, expected", [
    ("Sat.SMA=7000:7300:4", ("Sat.SMA", [7000, 7100, 7200, 7300])),
    ("Sat.SMA=7000.5:7001.5:3", ("Sat.SMA", [7000.5, 7001.0, 7001.5])),
    ("Sat.INC=28.5,51.6", ("Sat.INC", [28.5, 51.6])),
    ("TOF=600", ("TOF", [600])),
    ("Sat.Id=A,B", ("Sat.Id", ["A", "B"])),
    ("X=1:1:1", ("X", [1])),
])
def test_grid_options(option, expected):
    assert parse_grid_option(option) == expected


@pytest.mark.parametrize("option, message", [
    ("Sat.SMA=7000:", "START:STOP:COUNT"), ("Sat.SMA=", "gives no values"), ("=1", "not a GMAT parameter path"),
    ("Sat.SMA", "has no '='"), ("Sat.SMA=1:2:0", "COUNT >= 1"), ("Sat.SMA=a:b:3", "START:STOP:COUNT"),
    ("Sat.SMA=1,,2", "empty value"),
])
def test_malformed_grid_options(option, message):
    with pytest.raises(click.BadParameter, match=message):
        parse_grid_option(option)


def run_cli(*args, cwd=None):
    return subprocess.run(CLI + list(map(str, args)), capture_output=True, text=True, timeout=300, cwd=cwd)


def test_run_show_resume_and_exit_codes(leo, tmp_path):
    out = tmp_path / "out"
    done = run_cli("run", leo, "--grid", "Sat.SMA=7000:7200:3", "--grid", "TOF=60,120", "--collect",
                   "Sat.Earth.SMA", "--out", out, "--workers", "2", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "6 runs: 6 ok, 0 failed, 0 missing" in done.stdout and "Sat.Earth.SMA" in done.stdout
    assert "reports per run: RF" in done.stdout
    shown = run_cli("show", out)
    assert shown.returncode == 0 and "ok 6   failed 0   missing 0" in shown.stdout and "slowest runs" in shown.stdout
    again = run_cli("resume", out, "--no-progress")
    assert again.returncode == 0 and "nothing to do" in again.stderr


def test_failed_runs_exit_1_and_show_lists_them(leo, tmp_path):
    leo.write_text(leo.read_text().replace("BeginMissionSequence;", "Create Variable Idx;\nBeginMissionSequence;")
                   + "Gains(1, Idx) = 1;\n")
    out = tmp_path / "out"
    done = run_cli("run", leo, "--grid", "Idx=1,7", "--out", out, "--workers", "1", "--no-progress")
    assert done.returncode == 1, done.stderr
    assert "1 failed" in done.stdout and f"gmat-sweep show {out}" in done.stdout
    shown = run_cli("show", out)
    assert "failed runs:" in shown.stdout and "1 [GMAT error]: Idx=7" in shown.stdout and "Gains" in shown.stdout
    # A resume would only repeat a GMAT error: show says to fix the script instead, and offers no resume.
    assert "gmat-sweep resume" not in shown.stdout and "fix the script" in shown.stdout


@pytest.mark.parametrize("args, message", [
    (["--grid", "Sat.SMA=7000:"], "START:STOP:COUNT"),
    (["--grid", "Sat.SMA="], "gives no values"),
    (["--grid", "=1"], "not a GMAT parameter path"),
    ([], "nothing to sweep"),
    (["--grid", "Sat.SMA=1", "--grid", "Sat.SMA=2"], "given twice"),
    (["--grid", "Sat.ECC=-1"], "GMAT rejects the sweep"),
    (["--samples", "missing.csv"], "not found"),
])
def test_bad_input_exits_2_with_a_clear_message(leo, tmp_path, args, message):
    result = CliRunner().invoke(main, ["run", str(leo), "--out", str(tmp_path / "o"), "--no-progress", *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_samples_file_and_bad_samples_columns(leo, tmp_path):
    good = tmp_path / "rows.csv"
    good.write_text("Sat.SMA,TOF\n7000,60\n7100,90\n")
    result = run_cli("run", leo, "--samples", good, "--out", tmp_path / "o", "--no-progress", "-j", "1",
                     "--collect", "Sat.ElapsedSecs")
    assert result.returncode == 0, result.stderr
    assert "2 runs: 2 ok, 0 failed, 0 missing" in result.stdout
    summary = Sweep.from_manifest(tmp_path / "o").summary()
    assert summary[["Sat.SMA", "TOF", "status"]].to_dict("records") == [
        {"Sat.SMA": 7000, "TOF": 60, "status": "ok"}, {"Sat.SMA": 7100, "TOF": 90, "status": "ok"}]
    assert summary["Sat.ElapsedSecs"].tolist() == pytest.approx([60.0, 90.0])  # each row ran as given
    df = Sweep.from_manifest(tmp_path / "o").results()
    assert df.loc[1, "Sat.Earth.SMA"].iloc[0] == pytest.approx(7100.0, rel=1e-12)
    bad = tmp_path / "bad.csv"
    bad.write_text("semi major axis\n7000\n")
    result = run_cli("run", leo, "--samples", bad, "--out", tmp_path / "p", "--no-progress")
    assert result.returncode == 2 and "not a GMAT path" in result.stderr


def test_missing_script_resume_without_manifest_and_corrupt_manifest(tmp_path, leo):
    result = run_cli("run", tmp_path / "nope.script", "--grid", "A.B=1", "--out", tmp_path / "o")
    assert result.returncode == 2 and "script not found" in result.stderr
    result = run_cli("resume", tmp_path)
    assert result.returncode == 2 and "no sweep manifest" in result.stderr
    out = tmp_path / "c"
    assert run_cli("run", leo, "--grid", "TOF=60,90,120", "--out", out, "--no-progress", "-j", "1").returncode == 0
    lines = (out / "manifest.jsonl").read_text().splitlines()
    lines[2] = lines[2][:20]
    (out / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    result = run_cli("show", out)
    assert result.returncode == 2 and "line 3 is corrupt" in result.stderr


def test_fsync_every_reaches_the_manifest_writer(leo, tmp_path, manifest_fsyncs, monkeypatch):
    monkeypatch.setattr(importlib.import_module("gmat_sweep.sweep"), "GROUPED_FSYNC_SECONDS", 1e9)
    out = tmp_path / "o"
    result = CliRunner().invoke(main, ["run", str(leo), "--grid", "TOF=60:69:10", "--out", str(out),
                                       "--fsync-every", "4", "-j", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    # The header: written then closed (2); 10 run lines: after lines 4 and 8, and at close (3). Per line: 13.
    assert manifest_fsyncs == {str(out / "manifest.jsonl"): 5}
    assert read_manifest(out).header["fsync_every"] == 4 and len(read_manifest(out).entries) == 10


def test_doctor_prints_the_fingerprint():
    result = CliRunner().invoke(main, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["engine"]["gmat_version"] == "R2026a" and info["versions"]["gmat-sweep"]


def start_long_sweep(leo, out, start_new_session):
    """A 200-run CLI sweep, returned once a few runs are in its manifest."""
    proc = subprocess.Popen(CLI + ["run", str(leo), "--grid", "Sat.SMA=7000:7400:200", "--out", str(out),
                                   "--workers", "2", "--no-progress"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=start_new_session)
    deadline = time.time() + 60
    while time.time() < deadline:
        manifest = out / "manifest.jsonl"
        if manifest.exists() and len(manifest.read_text().splitlines()) > 5:
            break
        time.sleep(0.1)
    return proc


def test_ctrl_c_stops_cleanly_and_prints_the_resume_command(leo, tmp_path):
    out = tmp_path / "out"
    proc = start_long_sweep(leo, out, start_new_session=True)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert f"resume with: gmat-sweep resume {out}" in stderr
    manifest = read_manifest(out)
    assert not manifest.torn_tail and 0 < len(manifest.entries) < 200
    finished = run_cli("resume", out, "--no-progress", "-j", "2")
    assert finished.returncode == 0, finished.stderr
    assert len(read_manifest(out).entries) == 200


def test_sigterm_stops_like_ctrl_c(leo, tmp_path):
    out = tmp_path / "out"
    proc = start_long_sweep(leo, out, start_new_session=False)
    proc.terminate()  # SIGTERM to the driver only, as when its Pod is deleted
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert f"resume with: gmat-sweep resume {out}" in stderr
    assert not read_manifest(out).torn_tail
