"""Targeter convergence as data (GMAT's samples and a tests-owned Hohmann targeter with an analytic answer), and
the per-run postprocess hook."""

from __future__ import annotations

import math
import pathlib

import pytest
from click.testing import CliRunner

from gmat_sweep import Sweep, SweepError
from gmat_sweep.backends import LocalPool
from gmat_sweep.cli import main

DATA = pathlib.Path(__file__).parent / "data"
MU = 398600.4415  # GMAT's Earth gravitational parameter, km^3/s^2


@pytest.fixture(scope="module")
def pool():
    with LocalPool(max_workers=2) as shared:
        yield shared


def hohmann_dv(r1: float, ra: float) -> float:
    return math.sqrt(MU / r1) * (math.sqrt(2 * ra / (r1 + ra)) - 1)


def test_tests_own_targeter_converges_to_the_vis_viva_burn_and_reports_its_iterations(tmp_path, pool):
    s = Sweep(DATA / "hohmann_target.script", grid={"RA": [20000.0, 42164.0]}, out=tmp_path / "h",
              collect=["DV"]).run(pool, False)
    summary = s.summary()
    assert (summary["status"] == "ok").all()
    assert summary["Raise apoapsis.converged"].tolist() == [True, True]
    for run_id, row in summary.iterrows():
        assert row["DV"] == pytest.approx(hohmann_dv(7000.0, row["RA"]), abs=1e-6)
        assert row["warnings"] == []
    iterations = s.solver_iterations()
    assert {"run_id", "RA", "solver", "sequence", "iteration", "variables", "goal", "desired", "achieved",
            "tolerance", "met"} <= set(iterations.columns)
    last = iterations.groupby("run_id").tail(1)
    assert last["met"].tolist() == [True, True]
    assert last["desired"].tolist() == [20000.0, 42164.0]
    assert last["iteration"].tolist() == summary["Raise apoapsis.iterations"].tolist()
    assert dict(last["variables"].iloc[1])["TOI.Element1"] == pytest.approx(hohmann_dv(7000.0, 42164.0), abs=1e-6)


@pytest.mark.parametrize("name, label", [("Tut_Target_Finite_Burn_to_Raise_Apogee", "Raise Apogee"),
                                         ("Ex_TargetFiniteBurn_CenterPeriapsisDuration", "Center The Burn")])
def test_sample_targeters_converged_and_forced_not_to(samples_dir, tmp_path, pool, name, label):
    script = samples_dir / f"{name}.script"
    s = Sweep(script, grid={"DC1.MaximumIterations": [25, 1]}, out=tmp_path / "s").run(pool, False)
    summary = s.summary()
    assert summary["status"].tolist() == ["ok", "ok"]  # GMAT goes on after EndTarget either way
    assert summary[f"{label}.converged"].tolist() == [True, False]
    assert summary[f"{label}.iterations"].iloc[1] == 1 and summary[f"{label}.iterations"].iloc[0] > 1
    warning = [w for w in summary["warnings"].iloc[1] if w.startswith("Target ")]
    assert len(warning) == 1 and f"Target '{label}' (DC1) did not converge in 1 iterations" in warning[0]
    assert "Earth.RMAG" in warning[0]  # the unmet goal is named
    assert not [w for w in summary["warnings"].iloc[0] if w.startswith("Target ")]
    shown = CliRunner().invoke(main, ["show", s.out])
    assert "did not converge" in shown.output and "\n  1: DC1.MaximumIterations=1" in shown.output

    strict = Sweep(script, grid={"DC1.MaximumIterations": [25, 1]}, out=tmp_path / "strict",
                   require_converged=True).run(pool, False)
    assert strict.counts() == {"ok": 1, "failed": 1, "missing": 0}
    assert f"Target '{label}' (DC1) did not converge" in strict.failed()["error"].iloc[0]


def test_cli_require_converged(samples_dir, tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(main, ["run", str(samples_dir / "Tut_Target_Finite_Burn_to_Raise_Apogee.script"),
                                       "--grid", "DC1.MaximumIterations=1", "--out", str(out), "-j", "1",
                                       "--require-converged", "--no-progress"])
    assert result.exit_code != 0, result.output
    assert Sweep.from_manifest(out).counts()["failed"] == 1


# ------------------------------------------------------------------------------------------ postprocess


def test_postprocess_hook_adds_scalars_tables_and_files(tmp_path, pool):
    s = Sweep(DATA / "hohmann_target.script", grid={"RA": [20000.0, 30000.0]}, out=tmp_path / "p",
              postprocess="postprocess_hooks:final_radius").run(pool, False)
    summary = s.summary()
    assert summary["final_rmag"].tolist() == pytest.approx([20000.0, 30000.0], abs=1e-5)
    assert summary["status_seen"].tolist() == ["ok", "ok"]
    steps = s.results("Steps")
    assert set(steps.index.get_level_values("run_id")) == {0, 1} and "rmag" in steps.columns
    entries = s.manifest.entries
    assert all("note.txt" in entries[i]["files"] for i in (0, 1))
    # The hook is part of the sweep: a different one on resume is refused unless allowed.
    with pytest.raises(SweepError, match="postprocess"):
        Sweep(DATA / "hohmann_target.script", grid={"RA": [20000.0, 30000.0]}, out=tmp_path / "p").run(pool, False)
    allowed = Sweep(DATA / "hohmann_target.script", grid={"RA": [20000.0, 30000.0]}, out=tmp_path / "p")
    assert allowed.run(pool, False, allow_changed_script=True).counts()["ok"] == 2


def test_a_hook_that_raises_or_returns_the_wrong_type_fails_only_that_run(tmp_path, pool):
    s = Sweep(DATA / "hohmann_target.script", grid={"RA": [20000.0]}, out=tmp_path / "x",
              postprocess="postprocess_hooks:explode").run(pool, False)
    error = s.failed()["error"].iloc[0]
    assert "Traceback" in error and "hook exploded on purpose" in error
    s = Sweep(DATA / "hohmann_target.script", grid={"RA": [20000.0]}, out=tmp_path / "w",
              postprocess="postprocess_hooks:wrong_type").run(pool, False)
    assert "returned a list" in s.failed()["error"].iloc[0]


@pytest.mark.parametrize("spec, words", [("no_such_module_xyz:f", "does not import"),
                                         ("postprocess_hooks:missing", "has no 'missing'"),
                                         ("postprocess_hooks:NOT_CALLABLE", "not a function"),
                                         ("postprocess_hooks", "package.module:function")])
def test_a_bad_hook_is_refused_before_any_run(tmp_path, spec, words):
    with pytest.raises(SweepError, match=words):
        Sweep(DATA / "hohmann_target.script", grid={"RA": [20000.0]}, out=tmp_path / "b", postprocess=spec).run()
    assert not (tmp_path / "b").exists()


def test_cli_postprocess(tmp_path):
    bad = CliRunner().invoke(main, ["run", str(DATA / "hohmann_target.script"), "--grid", "RA=20000",
                                    "--out", str(tmp_path / "bad"), "--postprocess", "no_such_module_xyz:f"])
    assert bad.exit_code != 0 and "does not import" in bad.output
    assert not (tmp_path / "bad" / "manifest.jsonl").exists()
    good = CliRunner().invoke(main, ["run", str(DATA / "hohmann_target.script"), "--grid", "RA=20000",
                                     "--out", str(tmp_path / "good"), "-j", "1", "--no-progress",
                                     "--postprocess", "postprocess_hooks:final_radius"])
    assert good.exit_code == 0, good.output
    assert Sweep.from_manifest(tmp_path / "good").summary()["final_rmag"].iloc[0] == pytest.approx(20000.0, abs=1e-5)


def test_outputs_and_the_hook_travel_back_from_dask_workers(tmp_path):
    distributed = pytest.importorskip("distributed")
    from gmat_sweep.backends.dask import DaskPool

    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as \
            cluster, distributed.Client(cluster, set_as_default=False) as client, DaskPool(client=client) as pool:
        s = Sweep(DATA / "hohmann_target.script", grid={"RA": [20000.0]}, out=tmp_path / "d", collect=["DV"],
                  postprocess="postprocess_hooks:final_radius").run(pool, False)
    summary = s.summary()
    assert summary["Raise apoapsis.converged"].tolist() == [True]
    assert summary["final_rmag"].iloc[0] == pytest.approx(20000.0, abs=1e-5)
    assert summary["DV"].iloc[0] == pytest.approx(hohmann_dv(7000.0, 20000.0), abs=1e-6)
    assert s.solver_iterations()["met"].iloc[-1]
    assert len(s.results("Steps")) > 0
