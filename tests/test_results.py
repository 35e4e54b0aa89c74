"""The table a sweep returns, on real runs: name clashes, reports without epochs, runs that disagree on a column's
type, and results that are read back from the runs' Parquet files rather than held by the driver."""

from __future__ import annotations

import gc
import types

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gmat_sweep import Sweep
from gmat_sweep.backends import LocalPool

# Idx > 3 fails inside the mission sequence, after the report has started: a failed run with rows on disk.
FAILS_ABOVE_3 = "Create Variable Idx;\nGMAT Idx = 1;\nBeginMissionSequence;"


@pytest.fixture(scope="module")
def pool():
    with LocalPool(max_workers=2) as shared:
        yield shared


def write(leo, old: str, new: str, tail: str = ""):
    leo.write_text(leo.read_text().replace(old, new) + tail)
    return leo


def test_a_report_column_named_like_a_parameter_is_prefixed_with_the_report(leo, tmp_path, pool):
    write(leo, "GMAT RF.Add = {Sat.UTCGregorian,", "GMAT RF.Add = {Sat.UTCGregorian, Sat.SMA,")
    df = Sweep(leo, grid={"Sat.SMA": [7000.0, 7100.0], "TOI.Element1": [0.0, 0.1]},
               out=tmp_path / "o").run(pool, False).results()
    assert list(df.columns) == ["Sat.SMA", "TOI.Element1", "Sat.UTCGregorian", "RF.Sat.SMA", "Sat.ElapsedSecs",
                                "Sat.Earth.SMA", "Sat.Earth.ECC", "status"]
    for run_id, (sma, dv) in enumerate([(7000.0, 0.0), (7000.0, 0.1), (7100.0, 0.0), (7100.0, 0.1)]):
        run = df.loc[run_id]
        assert (run["Sat.SMA"] == sma).all()  # the parameter, as swept
        assert run["RF.Sat.SMA"].tolist() == run["Sat.Earth.SMA"].tolist()  # the report's own column, whole
        if dv == 0.0:
            assert run["RF.Sat.SMA"].iloc[0] == pytest.approx(sma, rel=1e-12)
        else:
            assert run["RF.Sat.SMA"].iloc[0] > sma + 100  # the burn raised the orbit before the first row


def test_a_report_without_epochs_numbers_its_rows_and_runs_without_rows_have_no_time(leo, tmp_path, pool):
    write(leo, "GMAT RF.Add = {Sat.UTCGregorian, Sat.ElapsedSecs,", "GMAT RF.Add = {Sat.ElapsedSecs,")
    write(leo, "BeginMissionSequence;", FAILS_ABOVE_3, "Gains(1, Idx) = 1;\n")
    s = Sweep(leo, grid={"Idx": [1, 5], "TOF": [120]}, out=tmp_path / "o").run(pool, False)
    df = s.results()
    times = df.index.get_level_values("time")
    assert str(times.dtype) == "Int64"
    ok = df.loc[0]
    assert ok.index.tolist() == list(range(len(ok))) and len(ok) > 2
    assert ok["Sat.ElapsedSecs"].iloc[-1] == pytest.approx(120.0)
    failed = df.xs(1, level="run_id", drop_level=False)
    assert len(failed) == 1 and failed["status"].iloc[0] == "failed"
    assert failed.index.get_level_values("time").isna().all()  # <NA>, as NaT is for reports with epochs
    assert failed["Sat.ElapsedSecs"].isna().all()


def test_runs_that_disagree_on_a_columns_type_still_give_one_table(leo, tmp_path, pool):
    # A String that reads as a number in one run and as text in the other: the reader types them differently.
    write(leo, "GMAT RF.Add = {Sat.UTCGregorian,", "GMAT RF.Add = {Sat.UTCGregorian, Label,")
    s = Sweep(leo, grid={"Label": ["1.5", "abc"], "TOF": [60]}, out=tmp_path / "o").run(pool, False)
    types_on_disk = {str(pq.read_schema(tmp_path / "o" / "runs" / str(i) / "RF.parquet").field("Label").type)
                     for i in (0, 1)}
    assert types_on_disk == {"double", "string"}
    df = s.results()
    assert df.loc[0, "RF.Label"].tolist() == ["1.5"] * len(df.loc[0])
    assert df.loc[1, "RF.Label"].tolist() == ["abc"] * len(df.loc[1])
    assert (df["status"] == "ok").all() and df["Sat.ElapsedSecs"].dtype == float


def reachable_data(root: object) -> list[str]:
    """DataFrames, Series and Arrow tables reachable from ``root`` through its own objects (not modules, classes
    or functions, which would reach the whole program)."""
    found, seen, todo = [], set(), [root]
    skip = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType, types.MethodType)
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        if isinstance(obj, (pd.DataFrame, pd.Series, pa.Table, pa.RecordBatch)):
            found.append(type(obj).__name__)
            continue
        todo.extend(gc.get_referents(obj))
    return found


def test_results_are_read_from_the_runs_files_not_held_by_the_driver(leo, tmp_path, pool):
    out = tmp_path / "o"
    s = Sweep(leo, grid={"Sat.SMA": [7000.0, 7100.0, 7200.0], "TOF": [300]}, out=out).run(pool, False)
    first = s.results()
    assert len(first.loc[1]) > 1
    del first
    gc.collect()
    assert reachable_data(s) == []
    # Change what run 2 left on disk: the table follows the files.
    path = out / "runs" / "2" / "RF.parquet"
    table = pq.read_table(path)
    pq.write_table(table.slice(0, 2), path)
    (out / "runs" / "1" / "RF.parquet").unlink()
    again = s.results()
    assert len(again.loc[2]) == 2
    gone = again.xs(1, level="run_id")
    assert len(gone) == 1 and gone.index.isna().all() and gone["Sat.Earth.SMA"].isna().all()
    assert len(again.loc[0]) == len(table)
