"""Override rendering, path checks, include handling and line mapping (no engine needed)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from gmat_sweep.gmat.script import (ScriptError, check_path, gmat_literal, load_script, override_lines, prepare)


@pytest.mark.parametrize("value, text", [
    (7100.0, "7100.0"), (8, "8"), (True, "true"), (False, "false"), (np.float64(0.1), "0.1"), (np.int64(3), "3"),
    ("X-1", "'X-1'"), (dt.datetime(2026, 1, 1, 12, 0, 0, 500000), "'01 Jan 2026 12:00:00.500'"),
    ([1, 2.5, 3], "[1 2.5 3]"), (["Earth", "Luna"], "{Earth, Luna}"),
])
def test_literals(value, text):
    assert gmat_literal(value) == text


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "it's", object(), {"a": 1}])
def test_bad_literals(value):
    with pytest.raises(ScriptError):
        gmat_literal(value, "Sat.SMA")


@pytest.mark.parametrize("path", ["Sat.SMA", "TOF", "FM.GravityField.Earth.Degree", "A(1,2)", "A(3)"])
def test_good_paths(path):
    assert check_path(path) == path


@pytest.mark.parametrize("path", ["", "=1", "Sat SMA", "Sat.", ".SMA", "1Sat.SMA", "Sat.SMA=3", None, 5])
def test_bad_paths(path):
    with pytest.raises(ScriptError, match="not a GMAT parameter path"):
        check_path(path)


def test_whole_array_and_epoch_overrides():
    arrays = {"Gains": (1, 3), "M": (2, 2)}
    lines = [line for _, line in override_lines(
        {"Gains": [1, 2, 3], "M": [[1, 2], [3, 4]], "Sat.Epoch": dt.datetime(2026, 1, 2)}, arrays)]
    assert lines[:3] == ["GMAT Gains(1,1) = 1;", "GMAT Gains(1,2) = 2;", "GMAT Gains(1,3) = 3;"]
    assert "GMAT M(2,1) = 3;" in lines
    assert lines[-1] == "GMAT Sat.Epoch.UTCGregorian = '02 Jan 2026 00:00:00.000';"
    with pytest.raises(ScriptError, match="1x3 Array"):
        override_lines({"Gains": [1, 2]}, arrays)


def test_includes_are_read_recursively_and_hash_covers_them(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.script").write_text("#Include 'b.script'\nCreate Spacecraft A;\n")
    (tmp_path / "sub" / "b.script").write_text("Create Spacecraft B;\n")
    main = tmp_path / "main.script"
    main.write_text("#Include 'sub/a.script'\nBeginMissionSequence;\n")
    source = load_script(main)
    assert sorted(source.includes) == [str(tmp_path / "sub" / "a.script"), str(tmp_path / "sub" / "b.script")]
    before = source.sha256
    (tmp_path / "sub" / "b.script").write_text("Create Spacecraft C;\n")
    assert load_script(main).sha256 != before


def test_missing_and_circular_includes(tmp_path):
    main = tmp_path / "main.script"
    main.write_text("#Include 'nope.script'\n")
    with pytest.raises(ScriptError, match="not found"):
        load_script(main)
    main.write_text("#Include 'main.script'\n")
    with pytest.raises(ScriptError, match="circular"):
        load_script(main)


def test_missing_script_and_binary_file(tmp_path):
    with pytest.raises(ScriptError, match="script not found"):
        load_script(tmp_path / "nope.script")
    (tmp_path / "bin.script").write_bytes(b"\x00\x01\x02")
    with pytest.raises(ScriptError, match="binary"):
        load_script(tmp_path / "bin.script")


def test_line_numbers_map_back_to_the_users_script(tmp_path):
    path = tmp_path / "m.script"
    path.write_text("Create Spacecraft Sat;\n%comment\nBeginMissionSequence;\nPropagate X;\n")
    prepared = prepare(load_script(path), {"Sat.SMA": 7000, "Sat.ECC": 0.1}, ["Sat.SMA"], "/tmp/c.txt")
    lines = prepared.text.splitlines()
    assert lines[2] == "GMAT Sat.SMA = 7000;" and lines[3] == "GMAT Sat.ECC = 0.1;"
    assert prepared.describe_line(1) == "line 1"
    assert prepared.describe_line(3) == "override Sat.SMA"
    assert prepared.describe_line(4) == "override Sat.ECC"
    begin = lines.index("BeginMissionSequence;") + 1
    assert prepared.describe_line(begin) == "line 3"
    assert prepared.describe_line(begin + 1) == "line 4"
    assert lines[-1] == "Report GmatSweepCollect Sat.SMA;"
