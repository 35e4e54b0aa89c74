"""The backend registry: a backend registered in one place gets its --backend name, its own options (shown in
--help, refused with another backend) and its pool from the gmat-sweep command, and runs a sweep through it."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

from gmat_sweep import Sweep
from gmat_sweep.manifest import read_manifest

TESTS = pathlib.Path(__file__).resolve().parent
LEO_DRAG = TESTS.parent / "examples" / "leo_drag.script"
# The command as a program that registered the inline backend first (registration precedes importing the command).
CLI = [sys.executable, "-c", "import sys, inline_backend; from gmat_sweep.backends import register; "
       "register(inline_backend.BACKEND); from gmat_sweep.cli import main; main(prog_name='gmat-sweep')"]


def inline_cli(*args: object, cwd: pathlib.Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(CLI + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=cwd)


def test_a_registered_backend_runs_a_sweep_with_its_own_option(tmp_path):
    out, log = tmp_path / "out", tmp_path / "tasks.log"
    proc = inline_cli("run", LEO_DRAG, "--grid", "TOF=60,120,180", "--grid", "Sat.DryMass=100,150", "--collect",
                      "Sat.ElapsedSecs", "--out", out, "--no-progress", "--backend", "inline", "--inline-log", log,
                      cwd=tmp_path)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "6 runs: 6 ok, 0 failed, 0 missing" in stdout
    # The option reached the pool: it logged every run it ran, each once, in the command's own process.
    ran = [line.split() for line in log.read_text().splitlines() if line.startswith("run_one ")]
    entries = read_manifest(out).entries
    assert sorted(int(run_id) for _, run_id, _ in ran) == sorted(entries)
    assert {int(pid) for _, _, pid in ran} == {proc.pid} == {e["pid"] for e in entries.values()}
    # ... and the runs are GMAT's: each propagated exactly its TOF.
    df = Sweep.from_manifest(out).summary()
    assert set(df["status"]) == {"ok"}
    assert (df["Sat.ElapsedSecs"] - df["TOF"]).abs().max() < 1e-6, df[["TOF", "Sat.ElapsedSecs"]]


@pytest.mark.parametrize("args, message", [
    (["--inline-log", "x.log"], "--inline-log needs --backend inline"),
    (["--backend", "inline"], "--backend inline needs --inline-log FILE"),
    (["--backend", "inline", "--inline-log", "x.log", "--image", "acme/gmat-sweep:1.0"],
     "--image needs --backend kubernetes"),
])
def test_a_registered_backends_option_errors_are_usage_errors(args, message, tmp_path):
    proc = inline_cli("run", LEO_DRAG, "--grid", "TOF=60", "--out", tmp_path / "out", "--no-progress", *args,
                      cwd=tmp_path)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2, stderr
    assert message in stderr
    assert not (tmp_path / "x.log").exists()  # refused before any run


def test_a_registered_backend_is_in_the_help():
    proc = inline_cli("run", "--help", cwd=TESTS)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "[default: local]" in stdout and "local|dask|kubernetes|inline" in stdout.replace("\n", "")
    options = re.findall(r"^\s+(?:-\w, )?(--[\w-]+)", stdout, re.M)
    assert options[-3:] == ["--scheduler-service-type", "--inline-log", "--help"], options



def test_the_design_commands_and_extend_take_each_backends_own_options(tmp_path):
    # mc/lhs/sobol/saltelli and extend build their pool from the registry as run does: a backend's options reach them.
    out = tmp_path / "out"
    for command, log in [(["mc", LEO_DRAG, "--perturb", "Sat.DryMass=uniform(100,150)", "--n", "2", "--seed", "7",
                           "--out", out], tmp_path / "mc.log"),
                         (["extend", out, "--n", "3"], tmp_path / "extend.log")]:
        proc = inline_cli(*command, "--no-progress", "--backend", "inline", "--inline-log", log, cwd=tmp_path)
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        assert len([line for line in log.read_text().splitlines() if line.startswith("run_one ")]) == \
            (2 if command[0] == "mc" else 3)
    assert Sweep.from_manifest(out).counts() == {"ok": 5, "failed": 0, "missing": 0}
