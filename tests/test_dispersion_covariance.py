"""Correlated dispersions from a covariance file: the CLI's ``--perturb 'PATHS=+mvnormal(cov.csv)'`` and the string
form of the Python API, checked against ``scipy.stats.multivariate_normal`` and run on the real GMAT engine."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import gmat_sweep as gs
from gmat_sweep import Sweep
from gmat_sweep.backends import LocalPool
from gmat_sweep.design import DesignError
from gmat_sweep.designs import MonteCarlo

pytest.importorskip("scipy")
from scipy import stats  # noqa: E402

CLI = [sys.executable, "-m", "gmat_sweep.cli"]
EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "leo_state.script"
STATE = ("Sat.X", "Sat.Y", "Sat.Z", "Sat.VX", "Sat.VY", "Sat.VZ")
KEY = ",".join(STATE)
SIGMA = np.array([0.1, 0.1, 0.1, 1e-4, 1e-4, 1e-4])  # km, km/s


def od_covariance() -> np.ndarray:
    """A 6x6 covariance with an along-track position/velocity correlation, as an OD solution gives."""
    cov = np.diag(SIGMA**2)
    cov[0, 4] = cov[4, 0] = -0.5 * SIGMA[0] * SIGMA[4]
    cov[1, 2] = cov[2, 1] = 0.3 * SIGMA[1] * SIGMA[2]
    return cov


@pytest.fixture
def script(tmp_path) -> pathlib.Path:
    path = tmp_path / "mission" / "leo_state.script"
    path.parent.mkdir()
    shutil.copy(EXAMPLE, path)
    return path


def test_every_file_form_is_the_python_form_with_the_same_numbers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cov, mean = od_covariance(), np.array([7000.0, 10.0, -5.0, 0.001, 7.5, 0.2])
    np.savetxt("cov.csv", cov, delimiter=",", header="Sat.X .. Sat.VZ, km and km/s")
    np.savetxt("cov.txt", cov)                          # whitespace-separated
    np.savetxt("mean.csv", mean[None], delimiter=",")
    np.savetxt("mean_column.txt", mean)                 # one number a line
    np.savetxt("state.txt", np.vstack([mean, cov]))     # the mean first, then the covariance
    (tmp_path / "sub dir").mkdir()
    np.savetxt("sub dir/cov, 6x6.csv", cov, delimiter=",")
    centred = MonteCarlo({STATE: ("+", stats.multivariate_normal(np.zeros(6), cov))}, 500, seed=9)
    absolute = MonteCarlo({STATE: stats.multivariate_normal(mean, cov)}, 500, seed=9)
    for spec in ("+mvnormal(cov.csv)", "+mvnormal(cov.txt)", "+ mvnormal( cov.csv )",
                 "+mvnormal('sub dir/cov, 6x6.csv')", f"+mvnormal({tmp_path}/cov.csv)"):
        design = MonteCarlo({STATE: spec}, 500, seed=9)
        assert design.to_dict() == centred.to_dict(), spec
    for spec in ("mvnormal(mean.csv, cov.csv)", "mvnormal(mean_column.txt, cov.txt)", "mvnormal(state.txt)",
                 f"mvnormal({mean.tolist()}, {cov.tolist()})"):
        design = MonteCarlo({STATE: spec}, 500, seed=9)
        assert design.to_dict() == absolute.to_dict(), spec
        assert design.columns(0, 500)["Sat.VY"].tolist() == absolute.columns(0, 500)["Sat.VY"].tolist()
    # the drawn states have the file's covariance
    big = MonteCarlo({STATE: "mvnormal(state.txt)"}, 100_000, seed=3).columns(0, 100_000)
    drawn = np.cov(np.stack([big[p] for p in STATE]))
    assert np.allclose(drawn, cov, rtol=0.05, atol=0.02 * np.sqrt(np.outer(np.diag(cov), np.diag(cov))))


def _write(folder: pathlib.Path, name: str, table: np.ndarray) -> None:
    np.savetxt(folder / name, table, delimiter=",")


BAD = [  # (--perturb options, files to write, the message)
    ([f"{KEY}=+mvnormal(missing.csv)"], {}, r"the file missing.csv does not exist \(a relative name is read from "),
    ([f"{KEY}=+mvnormal(cov.csv)"], {"cov.csv": od_covariance()[:5, :5]},
     r"cov.csv holds a 5 x 5 table; for 6 paths give a 6 x 6 covariance or 7 rows of 6 numbers"),
    ([f"{KEY}=mvnormal(mean.csv, cov.csv)"], {"mean.csv": np.zeros((1, 6)), "cov.csv": np.eye(5)},
     r"the covariance has shape \(5, 5\), not \(6, 6\) for 6 paths"),
    ([f"{KEY}=+mvnormal(cov.csv)"], {"cov.csv": od_covariance() + np.triu(np.full((6, 6), 1e-3), 1)},
     r"the covariance is not symmetric \(cov\[0,1\]=0.001 but cov\[1,0\]=0\); symmetrise it"),
    ([f"{KEY}=+mvnormal(cov.csv)"], {"cov.csv": np.diag([1.0, 1, 1, 1, 1, -1])},
     r"the covariance is not positive semi-definite \(smallest eigenvalue -1\); check its correlations"),
    ([f"{KEY}=mvnormal(cov.csv)"], {"cov.csv": od_covariance()},
     r"cov.csv holds a covariance only \(6 x 6\), with no mean: write \+mvnormal\(cov.csv\) to centre it"),
    (["Sat.X=normal(6871, 0.1)", f"{KEY}=+mvnormal(cov.csv)"], {"cov.csv": od_covariance()},
     r"Sat.X is perturbed twice \(in 'Sat.X' and 'Sat.X,Sat.Y,Sat.Z,Sat.VX,Sat.VY,Sat.VZ'\)"),
    ([f"{KEY}=+mvnormal(folder)"], {}, r"folder is a folder; name the covariance file in it"),
    ([f"{KEY}=+mvnormal(words.csv)"], {}, r"words.csv is not a table of numbers \(could not convert string "),
]


@pytest.mark.parametrize("perturbs, files, message", BAD)
def test_a_bad_covariance_file_is_one_line_before_any_run(script, tmp_path, perturbs, files, message):
    for name, table in files.items():
        _write(tmp_path, name, table)
    (tmp_path / "folder").mkdir()
    (tmp_path / "words.csv").write_text("Sat.X, Sat.Y\n1, 2\n")
    options = [x for p in perturbs for x in ("--perturb", p)]
    ran = subprocess.run(CLI + ["mc", str(script), *options, "--n", "4", "--seed", "1", "--out", "out"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 2, ran.stderr
    assert ran.stderr.count("\n") == 1 and ran.stderr.startswith("error: "), ran.stderr
    assert re.search(message, ran.stderr), ran.stderr
    assert not (tmp_path / "out").exists()


def test_a_path_twice_on_the_command_line_is_refused(script, tmp_path):
    ran = subprocess.run(CLI + ["mc", str(script), "--perturb", f"{KEY}=+mvnormal(c.csv)", "--perturb",
                                f"{KEY}=+mvnormal(c.csv)", "--n", "2", "--out", "out"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 2 and "Sat.X,Sat.Y,Sat.Z,Sat.VX,Sat.VY,Sat.VZ is perturbed twice" in ran.stderr
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def pool():
    with LocalPool(max_workers=2) as p:
        yield p


def test_a_relative_covariance_of_fields_without_a_numeric_nominal_is_refused_before_any_run(tmp_path, pool):
    from conftest import LEO

    script = tmp_path / "leo.script"
    script.write_text(LEO)
    _write(tmp_path, "c.csv", np.eye(2))
    ran = subprocess.run(CLI + ["mc", str(script), "--perturb", "TOF,Label=+mvnormal(c.csv)", "--n", "4", "--out",
                                "out", "--workers", "1", "--no-progress"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert ran.returncode == 2, ran.stderr
    assert "error: Label is perturbed relatively but has no numeric nominal value in the script (Label is a " \
           "String, not a numeric Variable)" in ran.stderr
    assert not (tmp_path / "out" / "manifest.jsonl").exists()


def test_the_cli_covariance_sweep_equals_the_python_one_and_extends_and_resumes(script, tmp_path, pool):
    cov = od_covariance()
    np.savetxt(tmp_path / "cov.csv", cov, delimiter=",")
    common = ["--workers", "2", "--no-progress"]
    ran = subprocess.run(CLI + ["mc", str(script), "--perturb", f"{KEY}=+mvnormal(cov.csv)", "--perturb",
                                "TOF=uniform(60,120)", "--n", "4", "--seed", "20261202", "--collect",
                                "Sat.Earth.SMA", "--out", "cli", *common],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    perturb = {STATE: ("+", stats.multivariate_normal(np.zeros(6), cov)), "TOF": "uniform(60, 120)"}
    gs.monte_carlo(script, perturb, 4, seed=20261202, backend=pool, out=tmp_path / "py", collect=["Sat.Earth.SMA"],
                   progress=False)
    cli, py = Sweep.from_manifest(tmp_path / "cli"), Sweep.from_manifest(tmp_path / "py")
    assert cli.manifest.header["design"] == py.manifest.header["design"]
    nominal = cli.manifest.header["design"]["nominal"]
    assert nominal["Sat.X"] == 6871.258863 and nominal["Sat.VZ"] == 5.971920153  # the script's state, from GMAT
    assert cli.counts()["ok"] == 4
    pd.testing.assert_frame_equal(cli.results(), py.results())
    summary = cli.summary()
    offsets = np.stack([summary[p] - nominal[p] for p in STATE])
    assert not np.allclose(offsets, 0) and np.all(np.abs(offsets) < 6 * SIGMA[:, None])
    # the manifest holds the numbers: show, extend and resume need no covariance file any more
    os.remove(tmp_path / "cov.csv")
    shown = subprocess.run(CLI + ["show", "cli"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "design: monte_carlo, n=4, seed=20261202" in shown.stdout, shown.stderr
    assert f"    {','.join(STATE)}: +mvnormal(6-dimensional) around Sat.X = 6871.258863, " in shown.stdout
    assert "    TOF: uniform(60, 120)\n" in shown.stdout
    extended = subprocess.run(CLI + ["extend", "cli", "--n", "2", *common], cwd=tmp_path, capture_output=True,
                              text=True, timeout=300)
    assert extended.returncode == 0, extended.stderr
    Sweep.from_manifest(tmp_path / "py").extend(2, pool, progress=False)
    resumed = subprocess.run(CLI + ["resume", "cli", *common], cwd=tmp_path, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    cli, py = Sweep.from_manifest(tmp_path / "cli"), Sweep.from_manifest(tmp_path / "py")
    assert cli.manifest.header["design"] == py.manifest.header["design"] and len(cli) == 6
    pd.testing.assert_frame_equal(cli.results(), py.results())


def test_the_string_form_refuses_what_the_tuple_form_refuses(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "bad.csv", np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(DesignError, match=r"^perturb\['a,b'\]: the covariance is not positive semi-definite"):
        MonteCarlo({("a", "b"): "+mvnormal(bad.csv)"}, 4, seed=1)
    with pytest.raises(DesignError, match=r"takes one or two files: \+mvnormal\(cov.csv\), "):
        MonteCarlo({("a", "b"): "+mvnormal(x.csv, y.csv, z.csv)"}, 4, seed=1)
    with pytest.raises(DesignError, match=r"mvnormal\(\[1, 2\]\) takes the mean and the covariance"):
        MonteCarlo({("a", "b"): "mvnormal([1, 2])"}, 4, seed=1)
