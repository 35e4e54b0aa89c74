"""Gravity files cut to the degree and order the force models use: GMAT computes exactly the same numbers."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from gmat_sweep.engine import get_engine
from gmat_sweep.gmat import gravity
from gmat_sweep.gmat.gravity import cut_cof

ROOT = pathlib.Path(__file__).resolve().parents[1]

COF = (b"COMMENT   5\n"
       b"CCCCC  JGM-02 : [3x3]  CCCCC\n"
       b"POTFIELD  3  3  1 3.98600441500000e+14 6.37813630000000e+06 1.00000000000000e+00\n"
       b"RECOEF    2  0   -4.84165390000000e-04\n"
       b"RECOEF    2  1   -1.86987640000000e-10 1.19528010000000e-09\n"
       b"RECOEF    2  2    2.43908370000000e-06-1.40010930000000e-06\n"
       b"RECOEF    3  0    9.57122390000000e-07\n"
       b"RECOEF    3  1    2.02839970000000e-06 2.48806640000000e-07\n"
       b"END \n"
       b"RECOEF    3  3    7.21153880000000e-07 1.41403690000000e-06\n")


def test_cut_cof_keeps_the_header_and_the_coefficients_up_to_the_degree_and_order_byte_for_byte():
    assert cut_cof(COF, 2, 1) == (b"COMMENT   5\n"
                                  b"CCCCC  JGM-02 : [3x3]  CCCCC\n"
                                  b"POTFIELD  3  3  1 3.98600441500000e+14 6.37813630000000e+06 1.00000000000000e+00\n"
                                  b"RECOEF    2  0   -4.84165390000000e-04\n"
                                  b"RECOEF    2  1   -1.86987640000000e-10 1.19528010000000e-09\n"
                                  b"END \n"  # GMAT reads nothing after END: kept as it is
                                  b"RECOEF    3  3    7.21153880000000e-07 1.41403690000000e-06\n")


@pytest.mark.parametrize("text", [
    COF.replace(b"POTFIELD", b"POTFEILD"),  # no header: not a file this understands
    COF.replace(b"RECOEF    3  1", b"RECOEF    x  1"),  # a coefficient line GMAT would refuse: let GMAT say so
    COF.replace(b"\n", b"\r\n"),
])
def test_cut_cof_leaves_alone_what_it_does_not_read_with_certainty(text):
    assert cut_cof(text, 2, 1) is None


def test_cut_cof_returns_none_when_nothing_would_be_dropped():
    assert cut_cof(COF, 3, 3) is None


# Runs each script once in a fresh interpreter and prints what each run wrote, the values collected, and the
# gravity files the run's force models were pointed at.
RUNS = r"""
import hashlib, json, os, sys
from gmat_sweep import RunSpec, load_script, run_one
from gmat_sweep.engine import get_engine
from gmat_sweep.gmat.gravity import gravity_fields

results = {}
for k, script in enumerate(sys.argv[2:]):
    spacecraft = [line.split()[2].rstrip(";") for line in open(script).read().splitlines()
                  if line.startswith("Create Spacecraft")]
    collect = [f"{sc}.{p}" for sc in spacecraft for p in ("X", "Y", "Z", "VX", "VY", "VZ", "A1ModJulian")]
    out = os.path.join(sys.argv[1], str(k))
    outcome = run_one(RunSpec(0, load_script(script), {}, out, collect))
    with get_engine().session() as api:
        files = sorted(field.GetField("PotentialFile") for field in gravity_fields(api))
    written = {name: hashlib.sha256(open(os.path.join(out, name), "rb").read()).hexdigest()
               for name in sorted(os.listdir(out)) if name != "gmat.log"}
    results[script] = [outcome.status, outcome.error, written, outcome.collected, files]
print(json.dumps(results))
"""

# Degree and order that differ, a zonal-only field and an order above the degree's default: the cut drops
# coefficients by order as well as by degree.
FIELDS = """Create Spacecraft Sat;
GMAT Sat.SMA = 6900;
GMAT Sat.ECC = 0.01;
GMAT Sat.INC = 51.6;
Create ForceModel FM8x3;
GMAT FM8x3.CentralBody = Earth;
GMAT FM8x3.PrimaryBodies = {Earth};
GMAT FM8x3.GravityField.Earth.Degree = 8;
GMAT FM8x3.GravityField.Earth.Order = 3;
GMAT FM8x3.GravityField.Earth.PotentialFile = 'JGM3.cof';
Create ForceModel FMJ2;
GMAT FMJ2.CentralBody = Earth;
GMAT FMJ2.PrimaryBodies = {Earth};
GMAT FMJ2.GravityField.Earth.Degree = 2;
GMAT FMJ2.GravityField.Earth.Order = 0;
Create Propagator P8x3;
GMAT P8x3.FM = FM8x3;
Create Propagator PJ2;
GMAT PJ2.FM = FMJ2;
Create ReportFile RF;
GMAT RF.Add = {Sat.ElapsedSecs, Sat.X, Sat.Y, Sat.Z, Sat.VX, Sat.VY, Sat.VZ};
BeginMissionSequence;
Propagate P8x3(Sat) {Sat.ElapsedSecs = 3000};
Propagate PJ2(Sat) {Sat.ElapsedSecs = 3000};
"""


def test_runs_write_the_same_bytes_with_the_cut_gravity_files(tmp_path, samples_dir):
    fields = tmp_path / "fields.script"
    fields.write_text(FIELDS)
    scripts = [str(fields), str(ROOT / "examples" / "leo_drag.script"),
               *map(str, sorted(samples_dir.glob("*.script")))]
    (tmp_path / "tmp").mkdir()  # a fresh folder: the copies are made now, by this code
    runs = {}
    for cut in ("0", "1"):
        done = subprocess.run([sys.executable, "-c", RUNS, str(tmp_path / cut), *scripts], capture_output=True,
                              text=True, timeout=600,
                              env={**os.environ, gravity.ENV: cut, "TMPDIR": str(tmp_path / "tmp")})
        assert done.returncode == 0, done.stderr
        runs[cut] = json.loads(done.stdout.splitlines()[-1])
    folder = str(tmp_path / "tmp" / f"gmat-sweep-kernels-{os.getuid()}")
    copies = set()
    for script in scripts:
        (status, error, written, collected, plain_files), (*same, cut_files) = runs["0"][script], runs["1"][script]
        assert status == "ok", (script, error)
        assert len(collected) >= 7, f"{script}: nothing to compare"
        assert same == [status, error, written, collected], script
        assert not any(f.startswith(folder) for f in plain_files), plain_files
        # The cut copies were really what GMAT read (a force model of point masses alone has no file):
        assert all(f.startswith(folder) for f in cut_files), (script, cut_files)
        copies.update(cut_files)
    assert {os.path.basename(c).rsplit("-", 1)[0] for c in copies} >= {"JGM3-8x3", "JGM2-2x0", "JGM2-4x4",
                                                                       "JGM2-10x10"}
    for copy in copies:
        assert os.path.getsize(copy) < 0.1 * 152234  # the 70x70 files GMAT ships are 152 KB


def test_a_bare_file_name_that_could_mean_the_working_folder_is_left_alone(tmp_path, monkeypatch):
    from gmat_sweep.engine import get_engine

    monkeypatch.chdir(tmp_path)
    with get_engine("embedded").session() as api:
        assert gravity._located(api, "Earth", "JGM2.cof").endswith(os.path.join("gravity", "earth", "JGM2.cof"))
        (tmp_path / "JGM2.cof").write_bytes(COF)
        assert gravity._located(api, "Earth", "JGM2.cof") is None
        assert gravity._located(api, "Earth", "sub/JGM2.cof") is None


def test_gmat_reads_the_cut_copy(tmp_path, monkeypatch, leo):
    """The control: a copy with one coefficient changed changes the run, so the copies are what GMAT reads."""
    from gmat_sweep import RunSpec, load_script, run_one

    def run(name):
        monkeypatch.setattr(gravity, "_copies", {})
        outcome = run_one(RunSpec(0, load_script(leo), {}, str(tmp_path / name), ["Sat.X"]))
        assert outcome.status == "ok", outcome.error
        return outcome.collected["Sat.X"]

    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr("tempfile.tempdir", None)
    (tmp_path / "tmp").mkdir()
    plain = run("plain")
    real_cut = gravity.cut_cof
    monkeypatch.setattr(gravity, "cut_cof", lambda text, degree, order: real_cut(text, degree, order).replace(
        b"RECOEF    2  0   -4.84165390000000e-04", b"RECOEF    2  0   -4.84165490000000e-04"))
    assert run("changed") != plain


def test_a_degree_set_by_an_override_is_the_degree_the_copy_is_cut_to(tmp_path, monkeypatch, leo):
    from gmat_sweep import RunSpec, load_script, run_one

    def run(name, cut):
        monkeypatch.setenv(gravity.ENV, cut)
        outcome = run_one(RunSpec(0, load_script(leo), {"FM.GravityField.Earth.Degree": 9,
                                                        "FM.GravityField.Earth.Order": 7}, str(tmp_path / name),
                                  ["Sat.X", "Sat.Y", "Sat.Z"]))
        assert outcome.status == "ok", outcome.error
        with get_engine().session() as api:
            files = [field.GetField("PotentialFile") for field in gravity.gravity_fields(api)]
        return outcome.collected, files

    plain, cut = run("plain", "0"), run("cut", "1")
    assert cut[0] == plain[0]
    assert [os.path.basename(f).rsplit("-", 1)[0] for f in cut[1]] == ["JGM2-9x7"]


def test_nothing_is_cut_when_the_mission_sequence_could_change_a_field():
    assert gravity._fixed_fields("Create ForceModel FM;\nGMAT FM.GravityField.Earth.Degree = 4;\n"
                                 "BeginMissionSequence;\nPropagate P(Sat);\n")
    assert not gravity._fixed_fields("Create ForceModel FM;\nBeginMissionSequence;\n"
                                     "GMAT FM.GravityField.Earth.Degree = 8;\n")
    assert not gravity._fixed_fields("#Include 'forces.script'\nBeginMissionSequence;\n")
