"""Designs: factorial order, stable run ids, explicit samples, and the malformed inputs users write."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, strategies as st

from gmat_sweep.design import Design, DesignError, Grid, Samples, make_design


def test_grid_is_a_full_factorial_with_the_last_parameter_fastest():
    grid = Grid({"Sat.SMA": [7000.0, 7100.0], "Sat.INC": [28.5, 51.6, 97.0]})
    assert len(grid) == 6
    assert [tuple(r.values()) for r in grid] == list(itertools.product([7000.0, 7100.0], [28.5, 51.6, 97.0]))
    assert grid[4] == {"Sat.SMA": 7100.0, "Sat.INC": 51.6}


@given(st.dictionaries(st.sampled_from(["A", "B.C", "D.E.F", "G"]),
                       st.lists(st.integers(-5, 5), min_size=1, max_size=4), min_size=1))
def test_grid_rows_match_itertools_product_and_roundtrip(grid):
    design = Grid(grid)
    assert [tuple(r.values()) for r in design] == list(itertools.product(*grid.values()))
    again = Design.from_dict(design.to_dict())
    assert list(again) == list(design)


def test_numpy_values_and_datetimes_roundtrip():
    epoch = dt.datetime(2026, 1, 1, 12)
    design = Grid({"Sat.SMA": np.linspace(7000, 7300, 4), "Sat.Epoch": [epoch]})
    assert type(design[0]["Sat.SMA"]) is float
    assert Design.from_dict(design.to_dict())[3] == {"Sat.SMA": 7300.0, "Sat.Epoch": epoch}


def test_samples_from_dataframe_and_list():
    frame = pd.DataFrame({"Sat.SMA": [7000.0, 7100.0], "TOF": [600, 900]})
    assert Samples(frame)[1] == {"Sat.SMA": 7100.0, "TOF": 900}
    rows = [{"Sat.SMA": 7000.0, "TOF": 600}, {"Sat.SMA": 7100.0, "TOF": 900}]
    design = Samples(rows)
    assert list(design) == rows and Design.from_dict(design.to_dict())[1] == rows[1]


@pytest.mark.parametrize("grid, message", [
    ({}, "the grid is empty"),
    ({"Sat.SMA": []}, "has no values"),
    ({"Sat.SMA": 7000}, "must be a list"),
    ({"Sat.SMA": "7000"}, "must be a list"),
    ({"Sat SMA": [1]}, "not a GMAT parameter path"),
    ({"=1": [1]}, "not a GMAT parameter path"),
    ({"Sat.SMA": [float("nan")]}, "non-finite"),
    ({"Sat.SMA": [{"a": 1}]}, "values must be"),
    ([("Sat.SMA", [1])], "must be a mapping"),
])
def test_malformed_grids(grid, message):
    with pytest.raises(DesignError, match=message):
        Grid(grid)


def test_same_parameter_twice():
    with pytest.raises(DesignError, match="appears twice"):
        Grid({"Sat.SMA": [1], " Sat.SMA": [2]})


@pytest.mark.parametrize("samples, message", [
    ([], "no rows"),
    (pd.DataFrame({"not a path": [1]}), "not a GMAT path"),
    ([{"Sat.SMA": 1}, {"Sat.INC": 2}], "no value for"),
    ("rows.csv", "DataFrame or a list of dicts"),
    ([1, 2], "must be a dict"),
])
def test_malformed_samples(samples, message):
    with pytest.raises(DesignError, match=message):
        Samples(samples)


def test_make_design_needs_exactly_one():
    with pytest.raises(DesignError, match="nothing to sweep"):
        make_design()
    with pytest.raises(DesignError, match="not both"):
        make_design({"A": [1]}, [{"A": 1}])


def test_columns_give_the_table_the_rows_give():
    epoch = dt.datetime(2026, 1, 1, 12)
    grid = Grid({"Sat.SMA": [7000, 7100.5], "Sat.Epoch": [epoch, epoch + dt.timedelta(hours=1)],
                 "Burn.Element1": [True, False, True], "Sat.Name": ["a", "b"]})
    samples = Samples([{"A.X": 1, "A.Y": "p"}, {"A.X": 2.5, "A.Y": "q"}])
    recorded = Design.from_dict(grid.to_dict())
    for design in (grid, samples, recorded):
        rows = pd.DataFrame(list(design), columns=design.parameters)
        pd.testing.assert_frame_equal(pd.DataFrame(design.columns(0, len(design)), columns=design.parameters), rows)
        assert [design[i] for i in range(len(design))] == list(grid if design is recorded else design)
    assert recorded.difference(grid.to_dict()) is None and recorded.difference(Grid({"Sat.SMA": [1]}).to_dict())
