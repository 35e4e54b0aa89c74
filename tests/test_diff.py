"""diff: a planted change is found where it was planted, an identical pair passes, different designs are refused."""

from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gmat_sweep
from gmat_sweep import Sweep
from gmat_sweep.analysis.diff import DesignMismatch
from gmat_sweep.backends import LocalPool
from seeing import grid_sweep, mission


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The same sweep run twice, into two folders."""
    base = tmp_path_factory.mktemp("diff")
    with LocalPool(max_workers=2) as pool:
        return grid_sweep(base, pool, "a"), grid_sweep(base, pool, "b")


def copy_of(sweep, folder):
    shutil.copytree(sweep.out, folder)
    return folder


def test_the_same_sweep_run_twice_is_equal(pair):
    a, b = pair
    result = gmat_sweep.diff(a, b, rtol=0, atol=0)  # GMAT is deterministic: equal to the last bit
    assert result.equal and not result.only_in_a and not result.only_in_b and result.status_changes.empty
    assert set(result.columns["column"]) >= {"Sat.Earth.SMA", "Sat.Earth.Altitude", "Sat.UTCGregorian",
                                             "Sat.Earth.ECC"}  # the last one is the collected value
    assert (result.columns["max_abs"].fillna(0) == 0).all() and (result.columns["rows"] > 0).all()
    assert str(result).endswith("equal within tolerance")


def test_a_planted_value_change_is_found_in_its_run_and_column(pair, tmp_path):
    a, _ = pair
    b = copy_of(a, tmp_path / "b")
    path = b / "runs" / "3" / "Track.parquet"
    table = pq.read_table(path).to_pandas()
    table.loc[17, "Sat.Earth.Altitude"] += 0.25
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), path)
    result = gmat_sweep.diff(a, b, rtol=1e-9)
    assert not result.equal
    row = result.columns.set_index("column").loc["Sat.Earth.Altitude"]
    expected = a.results().loc[3]["Sat.Earth.Altitude"].iloc[17]
    assert row["differing"] == 1 and row["run_abs"] == 3 and row["run_rel"] == 3
    assert row["max_abs"] == pytest.approx(0.25, rel=1e-9)
    assert row["max_rel"] == pytest.approx(0.25 / (expected + 0.25), rel=1e-9)
    others = result.columns[result.columns["column"] != "Sat.Earth.Altitude"]
    assert (others["differing"] == 0).all()
    # Within a loose enough tolerance, the same pair passes.
    assert gmat_sweep.diff(a, b, atol=0.3).equal
    assert "DIFFERS Track.Sat.Earth.Altitude: max abs 0.25 (run 3)" in str(result)


def test_a_changed_script_shows_where_results_moved_most(pair, tmp_path):
    a, _ = pair
    script = mission(tmp_path / "edited")
    script.write_text(script.read_text().replace("GMAT Sat.Cd = 2.2;", "GMAT Sat.Cd = 2.6;"))
    with LocalPool(max_workers=2) as pool:
        b = Sweep(script, grid=a.design.grid, out=tmp_path / "b", collect=a.collect).run(pool, progress=False)
    result = gmat_sweep.diff(a, b)
    row = result.columns.set_index("column").loc["Sat.Earth.SMA"]
    gap = (a.results()["Sat.Earth.SMA"] - b.results()["Sat.Earth.SMA"]).abs()
    assert row["max_abs"] == gap.max() and row["run_abs"] == gap.groupby(level="run_id").max().idxmax()
    # More drag, lower orbit: the largest drop is in the lowest orbit, which meets the densest air.
    assert a.summary().loc[row["run_abs"], "Sat.SMA"] == 6778.137
    assert not result.equal


def test_runs_only_in_one_and_status_changes_are_listed(pair, tmp_path):
    a, _ = pair
    b = copy_of(a, tmp_path / "b")
    lines = (b / "manifest.jsonl").read_text().splitlines()
    kept = []
    for line in lines:
        entry = json.loads(line)
        if entry.get("run_id") == 4:
            continue  # run 4 never finished in B
        if entry.get("run_id") == 1:
            entry.update(status="failed", error="worker lost: killed")
        kept.append(json.dumps(entry))
    (b / "manifest.jsonl").write_text("\n".join(kept) + "\n")
    result = gmat_sweep.diff(a, b)
    assert result.only_in_a == [4] and result.only_in_b == []
    assert result.status_changes.loc[1, ["status_a", "status_b"]].tolist() == ["ok", "failed"]
    assert not result.equal and "run 1: ok -> failed (worker lost: killed)" in str(result)


def test_sweeps_of_different_designs_are_refused_saying_how_they_differ(pair, tmp_path):
    a, _ = pair
    with LocalPool(max_workers=2) as pool:
        grid = dict(a.design.grid, **{"Sat.INC": [28.5, 51.6]})
        b = Sweep(a.source.path, grid=grid, out=tmp_path / "b", collect=a.collect).run(pool, progress=False)
    with pytest.raises(DesignMismatch, match=r"Sat.INC takes 3 values \[28.5, 51.6, 97.8\] in A but 2 values"):
        gmat_sweep.diff(a, b)
