"""Every output GMAT writes, as tables: ephemerides against a ReportFile of the same states, targeter
convergence (a sample mission, a tests-owned Hohmann targeter with an analytic answer), event reports from files
in GMAT's documented layout, the postprocess hook, and the lazy dataset view."""

from __future__ import annotations

import pathlib
import shutil

import numpy as np
import pandas as pd
import pytest

from gmat_sweep import Sweep, SweepError
from gmat_sweep.backends import LocalPool
from gmat_sweep.outputs import after_run, ephemeris, events
from gmat_sweep.outputs.oem import read_oem
from gmat_sweep.records import OK, RunOutcome, RunSpec
from gmat_sweep.gmat.script import load_script

DATA = pathlib.Path(__file__).parent / "data"
STATES = ["Sat.EarthMJ2000Eq.X", "Sat.EarthMJ2000Eq.Y", "Sat.EarthMJ2000Eq.Z", "Sat.EarthMJ2000Eq.VX",
          "Sat.EarthMJ2000Eq.VY", "Sat.EarthMJ2000Eq.VZ"]
MU = 398600.4415  # GMAT's Earth gravitational parameter, km^3/s^2


@pytest.fixture(scope="module")
def pool():
    with LocalPool(max_workers=2) as shared:
        yield shared


@pytest.fixture(scope="module")
def eph_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("eph") / "sweep"
    # One worker: GMAT's STK writer stages its points in a temporary file that processes sharing GMAT's temp
    # folder overwrite; with two workers one run's .e file can come out empty (it is then a warning, not a table).
    with LocalPool(max_workers=1) as pool:
        return Sweep(DATA / "states_and_ephemerides.script", grid={"TOF": [300, 600]}, out=out).run(pool, False)


def _report_states(sweep):
    frame = sweep.results("States")
    return frame["Sat.UTCModJulian"].to_numpy(), frame[STATES].to_numpy()


@pytest.mark.parametrize("name, fmt", [("EphOEM", "CCSDS-OEM"), ("EphSTK", "STK-TimePosVel")])
def test_text_ephemerides_agree_with_the_report_to_the_files_16_digits(eph_sweep, name, fmt):
    times, states = _report_states(eph_sweep)
    eph = eph_sweep.ephemerides(name)
    assert list(eph.columns) == ["TOF", "X", "Y", "Z", "VX", "VY", "VZ"]
    assert eph.attrs["format"] == fmt and eph.attrs["central_body"] == "Earth"
    assert eph.attrs["frame"] in ("EME2000", "J2000") and eph.attrs["time_system"] == "UTC"
    assert len(eph) == len(states) == 6 + 11  # 300 s and 600 s at 60 s steps, both ends
    # GMAT prints ephemeris values with 16 significant digits (%.15e): half a unit in the last place.
    np.testing.assert_allclose(eph[["X", "Y", "Z", "VX", "VY", "VZ"]].to_numpy(), states, rtol=1e-15, atol=0)
    epochs = eph.index.get_level_values("time").to_numpy()
    assert np.max(np.abs(epochs - times)) <= np.timedelta64(1, "ms")  # OEM prints milliseconds
    assert sorted(set(eph.index.get_level_values("run_id"))) == [0, 1]


def test_spk_is_read_through_spice_and_matches_the_report_to_gmats_frame_and_time_conversion(eph_sweep):
    pytest.importorskip("spiceypy")
    times, states = _report_states(eph_sweep)
    eph = eph_sweep.ephemerides("EphSPK")
    assert eph.attrs["format"] == "SPK" and eph.attrs["frame"] == "J2000" and eph.attrs["central_body"] == "Earth"
    assert len(eph) == len(states)
    epochs = eph.index.get_level_values("time").to_numpy()
    assert np.max(np.abs(epochs - times)) <= np.timedelta64(1, "ms")
    # The SPK holds doubles, but GMAT converts the states to SPICE's J2000 frame and TDB epochs on writing: the
    # differences (metres, mm/s) are GMAT's conversion, far below any orbit's scale and far above a parse error.
    delta = eph[["X", "Y", "Z", "VX", "VY", "VZ"]].to_numpy() - states
    assert np.max(np.abs(delta[:, :3])) < 5e-3 and np.max(np.abs(delta[:, 3:])) < 5e-6
    assert np.max(np.abs(delta[:, :3])) > 0  # proof the SPK was read, not the report


def test_code500_matches_the_report_to_gmats_epoch_arithmetic(eph_sweep):
    times, states = _report_states(eph_sweep)
    eph = eph_sweep.ephemerides("EphC500")
    assert eph.attrs["format"] == "Code-500" and eph.attrs["time_system"] == "UTC"
    epochs = eph.index.get_level_values("time").to_numpy()
    assert len(eph) == len(states) and np.max(np.abs(epochs - times)) <= np.timedelta64(1, "ms")
    # Code-500 has a fixed step, so GMAT interpolates at epochs it computes as A1 Modified Julian doubles (about
    # 0.3 us of resolution): at 7.5 km/s that is millimetres, and velocities agree to micrometres per second.
    delta = eph[["X", "Y", "Z", "VX", "VY", "VZ"]].to_numpy() - states
    assert np.max(np.abs(delta[:, :3])) < 1e-5 and np.max(np.abs(delta[:, 3:])) < 1e-8


def test_every_format_is_a_table_the_originals_are_kept_and_unknown_names_are_refused(eph_sweep):
    summary = eph_sweep.summary()
    assert (summary["status"] == OK).all()
    assert summary["warnings"].tolist() == [[], []]
    for run_id in (0, 1):
        folder = pathlib.Path(eph_sweep.out) / "runs" / str(run_id)
        for original in ("EphOEM.oem", "EphSTK.e", "EphSPK.bsp", "EphC500.eph"):
            assert (folder / original).exists()
    with pytest.raises(KeyError, match="EphOEM, EphSTK, EphSPK, EphC500"):
        eph_sweep.ephemerides("Nope")
    assert "ephemeris:EphOEM" not in eph_sweep.reports and eph_sweep.reports == ["States"]


def test_dataset_is_lazy_with_parameters_and_reads_from_pandas_polars_duckdb(eph_sweep):
    dataset = eph_sweep.dataset("States")
    assert {"run_id", "TOF", "Sat.EarthMJ2000Eq.X"} <= set(dataset.schema.names)
    table = dataset.to_table(columns=["run_id", "TOF"])
    frame = table.to_pandas()
    assert frame.groupby("run_id")["TOF"].first().to_dict() == {0: 300, 1: 600}
    import pyarrow.dataset as ds

    only = dataset.to_table(filter=ds.field("TOF") == 600).to_pandas()
    assert set(only["run_id"]) == {1} and len(only) == 11
    pl = pytest.importorskip("polars")
    lazy = pl.scan_pyarrow_dataset(dataset)
    agg = lazy.group_by("TOF").agg(pl.len().alias("rows")).sort("TOF").collect()
    assert agg["rows"].to_list() == [6, 11]
    duckdb = pytest.importorskip("duckdb")
    rows = duckdb.sql("select TOF, count(*) from dataset group by TOF order by TOF").fetchall()
    assert rows == [(300, 6), (600, 11)]
    eph = eph_sweep.dataset("ephemeris:EphOEM").to_table(columns=["run_id", "TOF", "X"]).to_pandas()
    assert len(eph) == 17


def test_results_reads_only_the_asked_columns_and_runs(eph_sweep):
    frame = eph_sweep.results("States", columns=["Sat.EarthMJ2000Eq.X"], runs=[1])
    assert set(frame.index.get_level_values("run_id")) == {1}
    assert list(frame.columns) == ["TOF", "Sat.UTCModJulian", "Sat.EarthMJ2000Eq.X", "status"]
    full = eph_sweep.results("States")
    assert np.array_equal(frame["Sat.EarthMJ2000Eq.X"].to_numpy(), full.loc[1]["Sat.EarthMJ2000Eq.X"].to_numpy())
    with pytest.raises(KeyError, match="no column 'Nope'"):
        eph_sweep.results("States", columns=["Nope"])


# ------------------------------------------------------------------------------------------ bad files


def _outcome_for(tmp_path, script_text, files):
    out_dir = tmp_path / "run"
    out_dir.mkdir()
    for name, data in files.items():
        (out_dir / name).write_bytes(data)
    script = tmp_path / "m.script"
    script.write_text(script_text)
    spec = RunSpec(0, load_script(script), {}, str(out_dir))
    outcome = RunOutcome(0, OK)
    after_run(spec, str(out_dir), outcome)
    return outcome, out_dir


def test_truncated_ephemeris_keeps_the_states_read_and_warns(tmp_path, eph_sweep):
    full = (pathlib.Path(eph_sweep.out) / "runs" / "1" / "EphOEM.oem").read_bytes()
    cut = full[: full.rindex(b"\n2026", 0, len(full) - 200) + 40]  # mid-line, a few states before the end
    outcome, out_dir = _outcome_for(tmp_path, "Create EphemerisFile EphOEM;\n", {"EphOEM.oem": cut})
    assert outcome.ok and len(outcome.warnings) == 1 and "truncated" in outcome.warnings[0]
    table = pd.read_parquet(out_dir / outcome.outputs["ephemeris:EphOEM"])
    good, _ = read_oem(str(pathlib.Path(eph_sweep.out) / "runs" / "1" / "EphOEM.oem"))
    assert 0 < len(table) < good.num_rows
    assert np.array_equal(table["X"].to_numpy(), good.column("X").to_numpy()[: len(table)])


def test_unknown_ephemeris_format_keeps_the_run_ok_and_the_file(tmp_path):
    outcome, out_dir = _outcome_for(tmp_path, "Create EphemerisFile Odd;\n", {"Odd.xyz": b"SOMETHING ELSE\n1 2 3\n"})
    assert outcome.ok and outcome.outputs == {}
    assert len(outcome.warnings) == 1 and "Odd" in outcome.warnings[0] and "SOMETHING ELSE" in outcome.warnings[0]
    assert (out_dir / "Odd.xyz").exists()
    with pytest.raises(ephemeris.UnknownFormat):
        ephemeris.read(str(out_dir / "Odd.xyz"))


# ------------------------------------------------------------------------------------------ events


def test_contact_and_eclipse_reports_become_event_rows(tmp_path):
    script = "Create ContactLocator Contacts;\nCreate EclipseLocator Shadows;\n"
    files = {"Contacts.report": (DATA / "contact.report").read_bytes(),
             "Shadows.report": (DATA / "eclipse.report").read_bytes()}
    outcome, out_dir = _outcome_for(tmp_path, script, files)
    assert outcome.ok and outcome.warnings == []
    contacts = pd.read_parquet(out_dir / outcome.outputs["events:Contacts"])
    assert contacts["observer"].tolist() == ["Canberra", "Canberra", "Madrid"]
    assert (contacts["target"] == "Probe").all() and (contacts["event"] == "contact").all()
    assert contacts["duration"].tolist() == [690.5, 630.125, 300.0]
    # The durations written agree with stop - start.
    assert np.allclose((contacts["stop"] - contacts["start"]).dt.total_seconds(), contacts["duration"])
    shadows = pd.read_parquet(out_dir / outcome.outputs["events:Shadows"])
    assert shadows["event"].tolist() == ["Penumbra", "Umbra", "Penumbra", "Antumbra"]
    assert shadows["observer"].tolist() == ["Earth", "Earth", "Earth", "Luna"]
    assert shadows["event_number"].tolist() == [1, 1, 1, 2]
    totals = shadows.groupby("event_number")["duration"].sum()
    assert np.allclose(totals.to_numpy(), shadows.groupby("event_number")["total_duration"].first().to_numpy())


def test_truncated_event_report_keeps_the_events_read(tmp_path):
    text = (DATA / "contact.report").read_text()
    cut = text[: text.index("03 Feb 2026 05:52") + 30]
    outcome, out_dir = _outcome_for(tmp_path, "Create ContactLocator C;\n", {"C.report": cut.encode()})
    assert outcome.ok and "truncated" in outcome.warnings[0]
    assert len(pd.read_parquet(out_dir / outcome.outputs["events:C"])) == 1


def test_a_locator_on_the_embedded_engine_is_refused_before_any_run_with_one_line(leo, tmp_path, pool):
    text = leo.read_text().replace("BeginMissionSequence;",
                                   "Create GroundStation GS;\nCreate ContactLocator CL;\nGMAT CL.Target = Sat;\n"
                                   "GMAT CL.Observers = {GS};\nBeginMissionSequence;")
    leo.write_text(text)
    with pytest.raises(SweepError) as error:
        Sweep(leo, grid={"Sat.SMA": [7000]}, out=tmp_path / "o").run(pool, False)
    message = str(error.value)
    assert message == ("ContactLocator needs GMAT's EventLocator plugin, which the embedded engine lacks: set "
                       "GMAT_ROOT to a GMAT install")
    assert not (tmp_path / "o" / "manifest.jsonl").exists()
    assert events.plugin_problems([text], {"engine": "install"}) == []


def test_compacted_sweep_reads_the_same_and_mixes_in_runs_finished_later(eph_sweep, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(eph_sweep.out, copy)
    before = Sweep.from_manifest(copy)
    tables = {"results": before.results("States"), "eph": before.ephemerides("EphOEM"),
              "summary": before.summary()}
    from click.testing import CliRunner

    from gmat_sweep.cli import main

    shown = CliRunner().invoke(main, ["compact", str(copy)])
    assert shown.exit_code == 0, shown.output
    written = shown.output.split()
    assert {pathlib.Path(p).name for p in written} >= {"States.parquet", "ephemeris.EphOEM.parquet"}
    after = Sweep.from_manifest(copy)
    pd.testing.assert_frame_equal(after.results("States"), tables["results"])
    pd.testing.assert_frame_equal(after.ephemerides("EphOEM"), tables["eph"])
    pd.testing.assert_frame_equal(after.results("States", columns=["Sat.EarthMJ2000Eq.X"], runs=[1]),
                                  tables["results"].loc[[1], ["TOF", "Sat.UTCModJulian", "Sat.EarthMJ2000Eq.X",
                                                              "status"]])
    assert after.dataset("States").to_table().num_rows == 17
    # A compact file written when only run 0 had finished: run 1 comes from its own file.
    from gmat_sweep.compact import compact

    compact(str(copy), after.design, {0: after.manifest.entries[0]})
    pd.testing.assert_frame_equal(Sweep.from_manifest(copy).results("States"), tables["results"])
    data = Sweep.from_manifest(copy).dataset("States").to_table().to_pandas()
    assert data.groupby("run_id")["TOF"].agg(["first", "size"]).to_dict() == {"first": {0: 300, 1: 600},
                                                                             "size": {0: 6, 1: 11}}


def test_a_truncated_report_keeps_its_complete_rows_with_a_warning(tmp_path):
    from gmat_sweep.gmat.report import parse_report
    from gmat_sweep.outputs import drop_partial_row

    path = tmp_path / "RF.txt"
    path.write_text("Sat.ElapsedSecs           Sat.Earth.SMA\n"
                    "0.000000000000000         7000.123456789012\n"
                    "60.00000000000000         7000.223456789012\n"
                    "120.0000000")  # cut mid-number: 120.0000000 may have been 120.00000004...
    table = parse_report(str(path), columns=["Sat.ElapsedSecs", "Sat.Earth.SMA"], fixed_width=True, header=True,
                         left_justify=True)
    outcome = RunOutcome(0, OK)
    kept = drop_partial_row("RF", str(path), table, outcome)
    assert kept.column("Sat.ElapsedSecs").to_pylist() == [0.0, 60.0]
    assert outcome.ok and outcome.warnings == ["ReportFile RF is truncated (its last line is incomplete); the 2 "
                                               "complete rows are kept"]
    path.write_text(path.read_text() + "\n")  # whole lines: nothing dropped, nothing said
    outcome = RunOutcome(0, OK)
    assert drop_partial_row("RF", str(path), table, outcome).num_rows == 3 and outcome.warnings == []
