"""Dispersion sweeps on the real GMAT engine: reproducibility, resume, extend, preflight of draws, sensitivity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

import gmat_sweep as gs
from gmat_sweep import Sweep, SweepError
from gmat_sweep.backends import LocalPool
from gmat_sweep.designs import MonteCarlo, Sobol
from gmat_sweep.dispersion_check import DrawError

CLI = [sys.executable, "-m", "gmat_sweep.cli"]
PERTURB = {"Sat.SMA": "+normal(0, 2)", "TOF": "uniform(60, 300)", "TOI.Element1": "normal(0, 0.001)"}


@pytest.fixture(scope="module")
def pool():
    with LocalPool(max_workers=2) as p:
        yield p


def test_draws_gmat_refuses_are_counted_before_any_run(leo, tmp_path, pool):
    design = MonteCarlo({"Sat.ECC": "normal(0.001, 0.002)", "Sat.DryMass": "normal(100, 10)"}, 200, seed=1)
    negative = int((design.columns(0, 200)["Sat.ECC"] < 0).sum())
    assert 0 < negative < 200
    with pytest.raises(DrawError, match=rf"^{negative} of 200 draws of Sat.ECC \(normal\(0.001, 0.002\)\) are "
                                        r"< -?[0-9.e-]+, which GMAT refuses "
                                        r"\(GMAT allows \[0 < Real Number < 1.*\]\): truncate the distribution"):
        Sweep(leo, design=design, out=tmp_path / "out").run(pool, progress=False)
    assert not (tmp_path / "out" / "manifest.jsonl").exists()
    wide = MonteCarlo({"Sat.ECC": "normal(0.5, 0.4)"}, 300, seed=1)
    ecc = wide.columns(0, 300)["Sat.ECC"]
    with pytest.raises(DrawError) as both:
        Sweep(leo, design=wide, out=tmp_path / "wide").run(pool, progress=False)
    low, high = str(both.value).split("\n  ")
    assert low.startswith(f"{int((ecc < 0).sum())} of 300 draws of Sat.ECC (normal(0.5, 0.4)) are < ")
    assert high.startswith(f"{int((ecc > 1).sum())} of 300 draws of Sat.ECC (normal(0.5, 0.4)) are > 1, ")
    mass = MonteCarlo({"Sat.DryMass": "normal(10, 8)"}, 500, seed=2)
    below = int((mass.columns(0, 500)["Sat.DryMass"] < 0).sum())
    with pytest.raises(DrawError, match=rf"^{below} of 500 draws of Sat.DryMass \(normal\(10, 8\)\) are < 0, "):
        Sweep(leo, design=mass, out=tmp_path / "mass").run(pool, progress=False)


@pytest.mark.parametrize("path, why", [("Label", "Label is a String, not a numeric Variable"),
                                       ("Sat.Id", "its value 'SAT-1' is not a number"),
                                       ("Nope.X", "no object named 'Nope'")])
def test_a_relative_perturbation_needs_a_numeric_nominal(leo, tmp_path, pool, path, why):
    with pytest.raises(DrawError, match=f"{path} is perturbed relatively but has no numeric nominal .*{why}"):
        Sweep(leo, design=MonteCarlo({path: "+normal(0, 1)"}, 4, seed=1), out=tmp_path / "o").run(pool,
                                                                                               progress=False)


RUN = """
import json, sys
from gmat_sweep import monte_carlo
from gmat_sweep.backends import LocalPool
with LocalPool(max_workers=1) as pool:
    df = monte_carlo(sys.argv[1], json.loads(sys.argv[2]), 6, seed=20261201, backend=pool, out=sys.argv[3],
                     collect=["Sat.Earth.SMA"], progress=False)
"""


def test_same_seed_same_results_in_two_fresh_interpreters(leo, tmp_path):
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        subprocess.run([sys.executable, "-c", RUN, str(leo), json.dumps(PERTURB), str(out)], check=True,
                       timeout=300, capture_output=True)
    a, b = (Sweep.from_manifest(o) for o in outs)
    pd.testing.assert_frame_equal(a.results(), b.results())
    columns = [*PERTURB, "status", "Sat.Earth.SMA"]
    pd.testing.assert_frame_equal(a.summary()[columns], b.summary()[columns])
    assert a.manifest.header["design"]["seed"] == 20261201
    assert a.manifest.header["design"]["nominal"]["Sat.SMA"] == pytest.approx(7000, abs=1e-9)


def test_a_killed_and_resumed_monte_carlo_equals_an_uninterrupted_one(leo, tmp_path, pool):
    out = tmp_path / "killed"
    options = [f"--perturb={k}={v}" for k, v in PERTURB.items()] + ["--n", "32", "--seed", "7"]
    proc = subprocess.Popen(CLI + ["mc", str(leo), *options, "--out", str(out), "--workers", "2", "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    manifest = out / "manifest.jsonl"
    while time.time() < deadline and proc.poll() is None:
        if manifest.exists() and len(manifest.read_bytes().splitlines()) > 6:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the sweep finished before it could be killed; make it longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert Sweep.from_manifest(out).counts()["missing"] > 0
    resumed = subprocess.run(CLI + ["resume", str(out), "--workers", "2", "--no-progress"], capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    clean = Sweep(leo, design=MonteCarlo(PERTURB, 32, seed=7), out=tmp_path / "clean").run(pool, progress=False)
    pd.testing.assert_frame_equal(Sweep.from_manifest(out).results(), clean.results())


@pytest.mark.parametrize("kind", [MonteCarlo, Sobol])
def test_n_then_m_more_equals_one_sweep_of_n_plus_m(leo, tmp_path, pool, kind):
    first = Sweep(leo, design=kind(PERTURB, 4, seed=3), out=tmp_path / "grown", collect=["Sat.Earth.SMA"])
    first.run(pool, progress=False)
    before = first.results()
    grown = Sweep.from_manifest(tmp_path / "grown").extend(4, pool, progress=False)
    single = Sweep(leo, design=kind(PERTURB, 8, seed=3), out=tmp_path / "single", collect=["Sat.Earth.SMA"])
    single.run(pool, progress=False)
    pd.testing.assert_frame_equal(grown.results(), single.results())
    pd.testing.assert_frame_equal(grown.results().loc[0:3], before)
    columns = [*PERTURB, "Sat.Earth.SMA"]
    pd.testing.assert_frame_equal(grown.summary()[columns], single.summary()[columns])
    assert Sweep.from_manifest(tmp_path / "grown").manifest.header["runs"] == 8


def test_latin_hypercube_extends_by_a_block(leo, tmp_path, pool):
    out = tmp_path / "lhs"
    gs.latin_hypercube(leo, {"TOF": "uniform(60, 120)"}, 3, seed=1, backend=pool, out=out, progress=False)
    grown = Sweep.from_manifest(out).extend(2, pool, progress=False)
    assert grown.manifest.header["design"]["blocks"] == [3, 2] and grown.counts()["ok"] == 5
    tof = grown.summary()["TOF"].to_numpy()
    assert sorted(np.floor((tof[:3] - 60) / 60 * 3).astype(int)) == [0, 1, 2]
    assert sorted(np.floor((tof[3:] - 60) / 60 * 2).astype(int)) == [0, 1]
    # an output that is not collected is read from the report: each run's last row
    finals = grown.results()["Sat.Earth.ECC"].groupby(level="run_id").last()
    table = gs.convergence(grown, "Sat.Earth.ECC", stats=("mean",))
    assert table.loc[5, "mean"] == pytest.approx(finals.mean(), rel=1e-14)
    with pytest.raises(ValueError, match="'Sat.Nope' is neither a collected value nor a report column"):
        gs.convergence(grown, "Sat.Nope")


def test_extend_refuses_anything_but_n(leo, tmp_path, pool):
    out = tmp_path / "mc"
    gs.monte_carlo(leo, {"Sat.SMA": "normal(7000, 5)"}, 2, seed=1, backend=pool, out=out, progress=False)
    with pytest.raises(SweepError, match=r"would change the seed \(1 there, 2 here\)"):
        Sweep(leo, design=MonteCarlo({"Sat.SMA": "normal(7000, 5)"}, 2, seed=2), out=out).extend(2, pool)
    with pytest.raises(SweepError, match=r"the perturbation of Sat.SMA \(normal\(7000, 5\) there, "
                                         r"normal\(7000, 6\) here\)"):
        Sweep(leo, design=MonteCarlo({"Sat.SMA": "normal(7000, 6)"}, 2, seed=1), out=out).extend(2, pool)
    with pytest.raises(SweepError, match=r"the perturbation of TOF \(not perturbed there"):
        Sweep(leo, design=MonteCarlo({"Sat.SMA": "normal(7000, 5)", "TOF": "uniform(60, 70)"}, 2, seed=1),
              out=out).extend(2, pool)
    leo.write_text(leo.read_text().replace("GMAT TOF = 1800;", "GMAT TOF = 1700;"))
    with pytest.raises(SweepError, match="extend would change the script"):
        Sweep.from_manifest(out).extend(2, pool)
    with pytest.raises(SweepError, match="differs in n \\(2 there, 4 here\\).*gmat-sweep extend"):
        gs.monte_carlo(leo, {"Sat.SMA": "normal(7000, 5)"}, 4, seed=1, backend=pool, out=out, progress=False)
    grid = tmp_path / "grid"
    Sweep(leo, grid={"TOF": [60]}, out=grid).run(pool, progress=False)
    with pytest.raises(SweepError, match="is a grid sweep.*only Monte Carlo, Latin hypercube and Sobol'"):
        Sweep.from_manifest(grid).extend(2, pool)
    assert Sweep.from_manifest(grid).manifest.header["runs"] == 1


ISHIGAMI = """\
% The Ishigami function, evaluated by GMAT: Y = sin(x1) + 7 sin(x2)^2 + 0.1 x3^4 sin(x1)
Create Variable x1 x2 x3 Y;
GMAT x1 = 0;
GMAT x2 = 0;
GMAT x3 = 0;
BeginMissionSequence;
Y = sin(x1) + 7*sin(x2)^2 + 0.1*x3^4*sin(x1);
"""


def test_sobol_indices_of_the_ishigami_function_computed_by_gmat(tmp_path, pool):
    script = tmp_path / "ishigami.script"
    script.write_text(ISHIGAMI)
    uniform = f"uniform({-np.pi!r}, {np.pi!r})"
    df = gs.saltelli(script, {"x1": uniform, "x2": uniform, "x3": uniform}, 64, seed=2026, backend=pool,
                     out=tmp_path / "ishigami", collect=["Y"], progress=False)
    sweep = df.attrs["sweep"]
    assert sweep.counts()["ok"] == 64 * 5
    summary = sweep.summary()
    x1, x2, x3 = (summary[p].to_numpy() for p in ("x1", "x2", "x3"))  # GMAT did the arithmetic, not us
    np.testing.assert_allclose(summary["Y"], np.sin(x1) + 7 * np.sin(x2) ** 2 + 0.1 * x3**4 * np.sin(x1),
                               rtol=1e-12, atol=1e-12)
    indices = gs.sensitivity(sweep, "Y")
    # Analytic indices for a = 7, b = 0.1 (Ishigami & Homma 1990).
    v = 0.5 + 7**2 / 8 + 0.1 * np.pi**4 / 5 + 0.1**2 * np.pi**8 / 18
    v1, v2, v13 = 0.5 * (1 + 0.1 * np.pi**4 / 5) ** 2, 7**2 / 8, 0.1**2 * np.pi**8 * (1 / 18 - 1 / 50)
    s1 = np.array([v1, v2, 0.0]) / v
    st = np.array([v1 + v13, v2, v13]) / v
    assert list(indices.index) == ["x1", "x2", "x3"]
    assert np.all(np.abs(indices["S1"] - s1) <= indices["S1_conf"])
    assert np.all(np.abs(indices["ST"] - st) <= indices["ST_conf"])
    assert indices.loc["x2", "S1"] > indices.loc["x3", "S1"] + indices.loc["x3", "S1_conf"]
    spearman = gs.sensitivity(sweep, "Y", method="spearman")
    assert list(spearman.columns) == ["rho", "rho_lo", "rho_hi", "p"]
    assert spearman.loc["x1", "rho_lo"] > 0.3  # Y rises with sin(x1), monotone over most of the range
    table = gs.convergence(sweep, "Y")
    assert table.index.name == "n" and table.index[-1] == 320
    assert list(table.columns[:3]) == ["mean", "mean_lo", "mean_hi"]
    last = table.iloc[-1]
    assert last["mean_lo"] < 3.5 < last["mean_hi"]  # E[Y] = a / 2
    assert last["std_lo"] < np.sqrt(v) < last["std_hi"]


def test_dispersion_of_a_sample_mission(samples_dir, tmp_path, pool):
    script = samples_dir / "Tut_SimulatingAnOrbit.script"
    spread = {}
    for sigma in (1e-5, 1e-4):
        sweep = Sweep(script, design=MonteCarlo({"Sat.SMA": f"*normal(1, {sigma})"}, 12, seed=5),
                      out=tmp_path / f"s{sigma}", collect=["Sat.Earth.SMA", "Sat.Earth.RadPer"])
        sweep.run(pool, progress=False)
        assert sweep.counts()["ok"] == 12
        spread[sigma] = sweep.summary()["Sat.Earth.RadPer"].std()
    assert spread[1e-4] > 5 * spread[1e-5] > 0
    # the relative form equals the absolute form with the nominal written out
    relative = Sweep(script, design=MonteCarlo({"Sat.SMA": "+normal(0, 10)"}, 6, seed=9), out=tmp_path / "rel",
                     collect=["Sat.Earth.RadPer"]).run(pool, progress=False)
    nominal = relative.manifest.header["design"]["nominal"]["Sat.SMA"]
    assert nominal == pytest.approx(83474.318, rel=1e-14)  # the value the script sets, as GMAT holds it
    absolute = Sweep(script, design=MonteCarlo({"Sat.SMA": f"normal({nominal!r}, 10)"}, 6, seed=9),
                     out=tmp_path / "abs", collect=["Sat.Earth.RadPer"]).run(pool, progress=False)
    pd.testing.assert_frame_equal(relative.summary()[["Sat.SMA", "Sat.Earth.RadPer"]],
                                  absolute.summary()[["Sat.SMA", "Sat.Earth.RadPer"]])


def test_the_cli_runs_shows_extends_and_analyses(leo, tmp_path):
    out = tmp_path / "cli"
    common = ["--workers", "2", "--no-progress"]
    ran = subprocess.run(CLI + ["sobol", str(leo), "--perturb", "Sat.SMA=*normal(1,0.001)", "--perturb",
                                "TOF=uniform(60,120)", "--n", "6", "--seed", "42", "--collect", "Sat.Earth.SMA",
                                "--out", str(out), *common], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert "Sobol' n=6 is not a power of two" in ran.stderr
    extended = subprocess.run(CLI + ["extend", str(out), "--n", "2", *common], capture_output=True, text=True,
                              timeout=300)
    assert extended.returncode == 0, extended.stderr
    shown = subprocess.run(CLI + ["show", str(out), "--converge", "Sat.Earth.SMA"], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "design: sobol, n=8, seed=42" in shown.stdout and "mean_lo" in shown.stdout
    # each perturbation as it was given, a relative one with the nominal GMAT gave it
    sma = Sweep.from_manifest(out).manifest.header["design"]["nominal"]["Sat.SMA"]
    assert f"    Sat.SMA: *normal(1, 0.001) around {sma:.10g}\n" in shown.stdout
    assert "    TOF: uniform(60, 120)\n" in shown.stdout
    analysed = subprocess.run(CLI + ["sensitivity", str(out), "Sat.Earth.SMA", "--method", "spearman"],
                              capture_output=True, text=True)
    assert analysed.returncode == 0 and "rho_lo" in analysed.stdout and "Sat.SMA" in analysed.stdout
    refused = subprocess.run(CLI + ["sensitivity", str(out), "Sat.Earth.SMA"], capture_output=True, text=True)
    assert refused.returncode == 2 and "need a saltelli sweep" in refused.stderr
    bad = subprocess.run(CLI + ["mc", str(leo), "--perturb", "Sat.SMA=gauss(7000,5)", "--n", "4", "--out",
                                str(tmp_path / "bad")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown distribution 'gauss'" in bad.stderr
    seed = subprocess.run(CLI + ["lhs", str(leo), "--perturb", "TOF=uniform(60,120)", "--n", "4", "--seed", "x",
                                 "--out", str(tmp_path / "bad")], capture_output=True, text=True)
    assert seed.returncode == 2 and "--seed must be a whole number" in seed.stderr


def test_a_covariance_centred_on_the_nominal_state(leo, tmp_path, pool):
    from scipy import stats

    # GMAT takes Cartesian overrides before BeginMissionSequence only from a script that sets a Cartesian state
    text = leo.read_text().replace("GMAT Sat.DisplayStateType = Keplerian;", "GMAT Sat.DisplayStateType = Cartesian;")
    text = text.replace("GMAT Sat.SMA = 7000;\nGMAT Sat.ECC = 0.001;\nGMAT Sat.INC = 28.5;\n",
                        "GMAT Sat.X = 6993;\nGMAT Sat.Y = 0;\nGMAT Sat.Z = 0;\n")
    leo.write_text(text)
    state = ("Sat.X", "Sat.Y", "Sat.Z", "Sat.VX", "Sat.VY", "Sat.VZ")
    sigma = np.array([0.1, 0.1, 0.1, 1e-4, 1e-4, 1e-4])
    cov = np.diag(sigma**2)
    cov[0, 4] = cov[4, 0] = -0.5 * sigma[0] * sigma[4]
    sweep = Sweep(leo, design=MonteCarlo({state: ("+", stats.multivariate_normal(np.zeros(6), cov))}, 4, seed=3),
                  out=tmp_path / "state", collect=["Sat.Earth.SMA"]).run(pool, progress=False)
    assert sweep.counts()["ok"] == 4
    nominal = sweep.manifest.header["design"]["nominal"]
    assert nominal["Sat.X"] == 6993.0
    assert nominal["Sat.VY"] == 7.35  # a Spacecraft's default, never written in the script: read from GMAT
    deviations = MonteCarlo({state: stats.multivariate_normal(np.zeros(6), cov)}, 4, seed=3)
    summary = sweep.summary()
    for i in range(4):
        for path in state:
            assert summary.loc[i, path] == nominal[path] + deviations[i][path]


def test_a_relative_dispersion_on_dask_equals_the_local_one(leo, tmp_path, pool):
    from gmat_sweep.backends.dask import DaskPool

    design = {"Sat.SMA": "*normal(1, 1e-4)", "TOF": "uniform(60, 120)"}
    with DaskPool(n_workers=1) as dask_pool:
        remote = Sweep(leo, design=MonteCarlo(design, 3, seed=11), out=tmp_path / "dask").run(dask_pool,
                                                                                            progress=False)
    local = Sweep(leo, design=MonteCarlo(design, 3, seed=11), out=tmp_path / "local").run(pool, progress=False)
    assert remote.manifest.header["design"] == local.manifest.header["design"]
    pd.testing.assert_frame_equal(remote.results(), local.results())


def test_a_ten_million_run_design_starts_without_a_table_of_its_runs(leo, tmp_path):
    import psutil

    out = tmp_path / "huge"
    proc = subprocess.Popen(CLI + ["mc", str(leo), "--perturb", "TOF=uniform(30,60)", "--n", "10000000", "--seed",
                                   "1", "--out", str(out), "--workers", "1", "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        manifest = out / "manifest.jsonl"
        while time.time() < deadline and proc.poll() is None:
            if manifest.exists() and len(manifest.read_bytes().splitlines()) > 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None and manifest.exists(), "the sweep did not start"
        rss = psutil.Process(proc.pid).memory_info().rss
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    # 10^7 rows (or even a list of 10^7 run ids) would be gigabytes (hundreds of megabytes); the driver holds a block.
    assert rss < 300 * 2**20, f"driver RSS {rss / 2**20:.0f} MB"
    assert json.loads(manifest.read_text().splitlines()[0])["runs"] == 10_000_000
