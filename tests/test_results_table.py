"""results.results(): the per-run report files joined with the design's parameters and each run's status.

The inputs are Parquet files written here, so every cell of the expected table is known: both ways the table is
built (every run has rows; some runs have none) must give it.
"""

from __future__ import annotations

import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gmat_sweep.design import Grid
from gmat_sweep.layout import run_dir
from gmat_sweep.results import results

DESIGN = Grid({"Sat.SMA": [7000.0, 7100.0, 7200.0]})
T0 = pd.Timestamp("2026-01-01 12:00:00")


def write_report(out: str, run_id: int, rows: int) -> None:
    """Run ``run_id``'s report: ``rows`` epochs a minute apart, Sat.X = run_id * 10 + row, and a column named
    like the swept parameter (the table must prefix it with the report's name)."""
    times = [T0 + pd.Timedelta(minutes=i) for i in range(rows)]
    table = pa.table({"Sat.UTCGregorian": pa.array(times, pa.timestamp("ms")),
                      "Sat.X": pa.array([run_id * 10.0 + i for i in range(rows)]),
                      "Sat.SMA": pa.array([7000.0 + run_id] * rows),
                      "run_id": pa.array([run_id] * rows, pa.int64())})
    os.makedirs(run_dir(out, run_id), exist_ok=True)
    pq.write_table(table, os.path.join(run_dir(out, run_id), "RF.parquet"))


def test_every_run_with_rows_gives_parameters_report_columns_and_status_in_run_order(tmp_path):
    out = str(tmp_path)
    for run_id, rows in ((0, 2), (1, 3), (2, 1)):
        write_report(out, run_id, rows)
    entries = {i: {"status": "ok", "outputs": {"RF": "RF.parquet"}} for i in range(3)}

    frame = results(out, DESIGN, entries)

    assert frame.index.names == ["run_id", "time"]
    assert list(frame.columns) == ["Sat.SMA", "Sat.UTCGregorian", "Sat.X", "RF.Sat.SMA", "status"]
    assert frame.index.get_level_values("run_id").tolist() == [0, 0, 1, 1, 1, 2]
    assert frame["Sat.SMA"].tolist() == [7000.0, 7000.0, 7100.0, 7100.0, 7100.0, 7200.0]
    assert frame["Sat.X"].tolist() == [0.0, 1.0, 10.0, 11.0, 12.0, 20.0]
    assert frame["RF.Sat.SMA"].tolist() == [7000.0, 7000.0, 7001.0, 7001.0, 7001.0, 7002.0]
    assert frame.index.get_level_values("time")[4] == T0 + pd.Timedelta(minutes=2)
    assert set(frame["status"]) == {"ok"}


def test_failed_and_missing_runs_are_one_row_each_with_empty_report_columns(tmp_path):
    out = str(tmp_path)
    write_report(out, 1, 2)
    entries = {0: {"status": "failed", "outputs": {}}, 1: {"status": "ok", "outputs": {"RF": "RF.parquet"}}}

    frame = results(out, DESIGN, entries)

    assert list(frame.columns) == ["Sat.SMA", "Sat.UTCGregorian", "Sat.X", "RF.Sat.SMA", "status"]
    assert frame.index.get_level_values("run_id").tolist() == [0, 1, 1, 2]
    assert frame["status"].tolist() == ["failed", "ok", "ok", "missing"]
    assert frame["Sat.SMA"].tolist() == [7000.0, 7100.0, 7100.0, 7200.0]
    assert frame["Sat.X"].iloc[[1, 2]].tolist() == [10.0, 11.0]
    assert frame["Sat.X"].iloc[[0, 3]].isna().all()
    assert pd.isna(frame.index.get_level_values("time")[0]) and pd.isna(frame.index.get_level_values("time")[3])


def test_both_ways_of_building_the_table_agree_on_the_runs_they_share(tmp_path):
    every, some = tmp_path / "every", tmp_path / "some"
    for run_id in range(3):
        write_report(str(every), run_id, 2)
    write_report(str(some), 0, 2)
    write_report(str(some), 1, 2)
    ok = {"status": "ok", "outputs": {"RF": "RF.parquet"}}

    whole = results(str(every), DESIGN, {i: ok for i in range(3)})
    partial = results(str(some), DESIGN, {0: ok, 1: ok})

    shared = partial.loc[[0, 1]]
    pd.testing.assert_frame_equal(whole.loc[[0, 1]], shared, check_dtype=False)
