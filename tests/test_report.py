"""Tests for gmat_sweep.gmat.report: literal GMAT samples, a round-trip property, the real engine.

The literal samples are copied from files written by the GMAT R2026a engine
(gmatpy 0.2.1) so that the quirks they show are real: Report-command headers
that are narrower than their data, Gregorian epochs glued to their neighbours
when there is no header, whitespace headers above delimited data.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gmat_sweep.gmat import report as report_module
from gmat_sweep.gmat.report import (
    COMPRESS_ROWS,
    EPOCH_FORMAT_KEY,
    LAYOUT_KEY,
    TABULAR_KEY,
    TIME_SCALE_KEY,
    parse_report,
    write_parquet,
)

LEO_COLUMNS = ["Sat.UTCGregorian", "Sat.UTCModJulian", "Sat.Earth.SMA", "Sat.Earth.ECC", "Sat.X"]
T0 = dt.datetime(2026, 1, 1, 11, 59, 28)
T1 = dt.datetime(2026, 1, 1, 12, 0, 28)


def write(tmp_path: Path, lines: list[str] | str, name: str = "report.txt", *, newline: str = "\n") -> Path:
    path = tmp_path / name
    text = lines if isinstance(lines, str) else newline.join(lines) + newline
    path.write_bytes(text.encode("utf-8"))
    return path


def meta(table: pa.Table) -> dict[bytes, bytes]:
    return dict(table.schema.metadata or {})


# --------------------------------------------------------------------------
# literal samples

DEFAULT_LEFT = [
    "Sat.UTCGregorian           Sat.UTCModJulian          Sat.Earth.SMA             Sat.Earth.ECC             Sat.X                     ",
    "01 Jan 2026 11:59:28.000   31041.99962962963         6999.999999999998         0.001000000000000227      6449.19609307114          ",
    "01 Jan 2026 12:00:28.000   31042.00032407407         6999.745583417132         0.0009654501305213851     6404.8381719668           ",
]
RIGHT = [
    "           Sat.UTCGregorian          Sat.UTCModJulian             Sat.Earth.SMA             Sat.Earth.ECC                     Sat.X",
    "   01 Jan 2026 11:59:28.000         31041.99962962963         6999.999999999998      0.001000000000000227          6449.19609307114",
    "   01 Jan 2026 12:00:28.000         31042.00032407407         6999.745583417132     0.0009654501305213851           6404.8381719668",
]
NO_HEADER = [  # WriteHeaders = false: 23-wide cells, the 24-byte epoch touches the next value
    "01 Jan 2026 11:59:28.00031041.99962962963      6999.999999999998      0.001000000000000227   6449.19609307114",
    "01 Jan 2026 12:00:28.00031042.00032407407      6999.745583417132      0.0009654501305213851  6404.8381719668",
]


def assert_leo_two_rows(table: pa.Table) -> None:
    assert table.column_names == LEO_COLUMNS
    assert table.num_rows == 2
    assert table.schema.field("Sat.UTCGregorian").type == pa.timestamp("ms")
    assert table.schema.field("Sat.UTCModJulian").type == pa.timestamp("us")
    for name in LEO_COLUMNS[2:]:
        assert table.schema.field(name).type == pa.float64()
    assert table.column("Sat.UTCGregorian").to_pylist() == [T0, T1]
    assert table.column("Sat.Earth.SMA").to_pylist() == [6999.999999999998, 6999.745583417132]
    assert table.column("Sat.Earth.ECC").to_pylist() == [0.001000000000000227, 0.0009654501305213851]
    assert table.column("Sat.X").to_pylist() == [6449.19609307114, 6404.8381719668]
    mjd = table.column("Sat.UTCModJulian").to_pylist()
    for got, want in zip(mjd, [T0, T1], strict=True):
        assert abs(got - want) <= dt.timedelta(microseconds=1)


def test_fixed_width_left_justified_default(tmp_path: Path) -> None:
    table = parse_report(write(tmp_path, DEFAULT_LEFT))
    assert_leo_two_rows(table)
    assert meta(table)[TABULAR_KEY] == b"true"
    assert meta(table)[LAYOUT_KEY] == b"fixed_width_left"


def test_fixed_width_with_all_hints(tmp_path: Path) -> None:
    table = parse_report(
        write(tmp_path, DEFAULT_LEFT),
        columns=LEO_COLUMNS,
        fixed_width=True,
        delimiter=" ",
        header=True,
        left_justify=True,
    )
    assert_leo_two_rows(table)


def test_fixed_width_right_justified_is_detected(tmp_path: Path) -> None:
    table = parse_report(write(tmp_path, RIGHT))
    assert_leo_two_rows(table)
    assert meta(table)[LAYOUT_KEY] == b"fixed_width_right"


def test_fixed_width_right_justified_with_hint(tmp_path: Path) -> None:
    assert_leo_two_rows(parse_report(write(tmp_path, RIGHT), left_justify=False, fixed_width=True))


def test_no_header_with_column_hint(tmp_path: Path) -> None:
    table = parse_report(write(tmp_path, NO_HEADER), columns=LEO_COLUMNS, header=False)
    assert_leo_two_rows(table)
    assert meta(table)[LAYOUT_KEY] == b"whitespace"


def test_no_header_is_detected_and_named_generically(tmp_path: Path) -> None:
    table = parse_report(write(tmp_path, NO_HEADER))
    assert table.column_names == ["col0", "col1", "col2", "col3", "col4"]
    # Without names nothing says "epoch": the epoch stays text, numbers are numbers.
    assert table.column("col0").to_pylist() == ["01 Jan 2026 11:59:28.000", "01 Jan 2026 12:00:28.000"]
    assert table.column("col2").to_pylist() == [6999.999999999998, 6999.745583417132]


def test_no_header_right_justified_number_glued_to_epoch(tmp_path: Path) -> None:
    lines = [
        "01 Jan 2026 11:59:28.000                    inf      -1.23456789e-12301 Jan 2026 12:00:05.000      6999.999999999998",
        "01 Jan 2026 12:00:28.000                   -inf      -1.23456789e-12301 Jan 2026 12:01:05.000      6999.745583417132",
    ]
    names = ["Sat.UTCGregorian", "v", "w", "Sat.TAIGregorian", "Sat.Earth.SMA"]
    table = parse_report(write(tmp_path, lines), columns=names, header=False, left_justify=False)
    assert table.column_names == names
    assert table.column("v").to_pylist() == [math.inf, -math.inf]
    assert table.column("w").to_pylist() == [-1.23456789e-123] * 2
    assert table.column("Sat.TAIGregorian").to_pylist() == [
        dt.datetime(2026, 1, 1, 12, 0, 5),
        dt.datetime(2026, 1, 1, 12, 1, 5),
    ]


def test_no_header_padding_is_not_a_space_delimiter(tmp_path: Path) -> None:
    # Found by the property test: a 24-byte epoch glued to a 22-byte number,
    # padded to 23: the trailing space must not read as an empty last field.
    line = "01 Jan 2000 00:00:00.000-1.300683401835711e+16 "
    table = parse_report(write(tmp_path, [line]), columns=["Sat.UTCGregorian", "Sat.X"])
    assert table.to_pylist() == [{"Sat.UTCGregorian": dt.datetime(2000, 1, 1), "Sat.X": -1.300683401835711e16}]
    # and with the pad gone, the glued epoch alone says "fixed width"
    table = parse_report(write(tmp_path, [line.rstrip()]))
    assert table.to_pylist() == [{"col0": "01 Jan 2000 00:00:00.000", "col1": -1.300683401835711e16}]


def test_no_header_token_count_disagrees_with_columns_falls_back_to_text(tmp_path: Path) -> None:
    table = parse_report(write(tmp_path, NO_HEADER), columns=LEO_COLUMNS[:4], header=False)
    assert meta(table)[TABULAR_KEY] == b"false"


@pytest.mark.parametrize("delim", [",", ";", "\t", "|"])
@pytest.mark.parametrize("hinted", [True, False])
def test_delimited_with_delimited_header(tmp_path: Path, delim: str, hinted: bool) -> None:
    rows = [[part for part in line.split("  ") if part.strip()] for line in DEFAULT_LEFT]
    lines = [delim.join(part.strip() for part in row) for row in rows]
    assert lines[1].startswith(f"01 Jan 2026 11:59:28.000{delim}31041")
    hints = {"fixed_width": False, "delimiter": delim} if hinted else {}
    table = parse_report(write(tmp_path, lines), **hints)
    assert_leo_two_rows(table)
    assert meta(table)[LAYOUT_KEY] == b"delimited"


def test_delimited_data_under_whitespace_header(tmp_path: Path) -> None:
    # As written by the Report command into a ReportFile with FixedWidth = false.
    lines = [
        "Sat.Earth.SMA             TOI.Element1              Sat.UTCGregorian          S",
        "6999.6215034256375,0,01 Jan 2000 12:09:28.000,hello",
        "7001.5,-0.5,01 Jan 2000 12:19:28.000,world",
    ]
    for hints in ({}, {"fixed_width": False, "delimiter": ","}):
        table = parse_report(write(tmp_path, lines), **hints)
        assert table.column_names == ["Sat.Earth.SMA", "TOI.Element1", "Sat.UTCGregorian", "S"]
        assert table.column("Sat.Earth.SMA").to_pylist() == [6999.6215034256375, 7001.5]
        assert table.column("TOI.Element1").to_pylist() == [0.0, -0.5]
        assert table.column("Sat.UTCGregorian").to_pylist() == [
            dt.datetime(2000, 1, 1, 12, 9, 28),
            dt.datetime(2000, 1, 1, 12, 19, 28),
        ]
        assert table.column("S").to_pylist() == ["hello", "world"]
        assert table.schema.field("S").type == pa.string()


def test_report_command_delimited_repeats_its_header(tmp_path: Path) -> None:
    lines = [
        "Sat.UTCGregorian          Sat.Earth.SMA             s                         v",
        "01 Jan 2026 12:09:28.000,6998.652150305856,hello world,0",
        "Sat.UTCGregorian          Sat.Earth.SMA             s                         v",
        "01 Jan 2026 12:10:28.000,6998.5,hello world,1",
    ]
    table = parse_report(write(tmp_path, lines))
    assert table.num_rows == 2
    assert table.column("s").to_pylist() == ["hello world", "hello world"]
    assert table.column("v").to_pylist() == [0.0, 1.0]


def test_delimited_header_keeps_array_element_names_whole(tmp_path: Path) -> None:
    lines = [
        "Sat.UTCGregorian,v,s,e,A(1,2),Sat.A1ModJulian",
        "01 Jan 2026 11:59:28.000,inf,hello world,,-2.5e-07,31042.00005826831",
        "01 Jan 2026 12:00:28.000,nan,hello world,,-2.5e-07,31042.00075271275",
    ]
    table = parse_report(write(tmp_path, lines))
    assert table.column_names == ["Sat.UTCGregorian", "v", "s", "e", "A(1,2)", "Sat.A1ModJulian"]
    assert table.column("e").to_pylist() == ["", ""]  # an empty GMAT String stays a string
    assert table.column("A(1,2)").to_pylist() == [-2.5e-07, -2.5e-07]
    field = table.schema.field("Sat.A1ModJulian")
    assert field.metadata == {TIME_SCALE_KEY: b"A1", EPOCH_FORMAT_KEY: b"ModJulian"}


def test_space_delimited_report_command(tmp_path: Path) -> None:
    lines = [
        "Sat.UTCGregorian          Sat.Earth.SMA             s                         v",
        "01 Jan 2026 11:59:28.000 6999.999999999998 hello -12.5",
        "01 Jan 2026 12:00:28.000 6999.5 world 12.5",
    ]
    for hints in ({}, {"fixed_width": False, "delimiter": " "}):
        table = parse_report(write(tmp_path, lines), **hints)
        assert table.column("Sat.UTCGregorian").to_pylist() == [T0, T1]
        assert table.column("s").to_pylist() == ["hello", "world"]
        assert table.column("v").to_pylist() == [-12.5, 12.5]


def test_space_delimited_keeps_empty_string_cells(tmp_path: Path) -> None:
    lines = [
        "Sat.UTCGregorian s e Sat.Earth.SMA",
        "01 Jan 2026 11:59:28.000 hello  6999.999999999998",
    ]
    table = parse_report(write(tmp_path, lines), fixed_width=False, delimiter=" ")
    assert table.to_pylist() == [
        {"Sat.UTCGregorian": T0, "s": "hello", "e": "", "Sat.Earth.SMA": 6999.999999999998}
    ]


REPORT_RIGHT = [  # Report command, LeftJustify = Off: the data sits 4..7 bytes right of the header
    "       Sat.UTCGregorian          Sat.TAIGregorian           Sat.TTGregorian                         v           Sat.A1Gregorian                         v",
    "   01 Jan 2026 11:59:28.000   01 Jan 2026 12:00:05.000   01 Jan 2026 12:00:37.184                     -12.5   01 Jan 2026 12:00:05.034                     -12.5",
    "       Sat.UTCGregorian          Sat.TAIGregorian           Sat.TTGregorian                         v           Sat.A1Gregorian                         v",
    "   01 Jan 2026 11:59:28.000   01 Jan 2026 12:00:05.000   01 Jan 2026 12:00:37.184                     -12.5   01 Jan 2026 12:00:05.034                     -12.5",
]
REPORT_LEFT = [  # Report command, default: the data drifts one byte right per Gregorian column
    "Sat.UTCGregorian          Sat.TAIGregorian          Sat.TTGregorian           v                         Sat.A1Gregorian           v",
    "01 Jan 2026 11:59:28.000   01 Jan 2026 12:00:05.000   01 Jan 2026 12:00:37.184   -12.5                     01 Jan 2026 12:00:05.034   -12.5",
    "Sat.UTCGregorian          Sat.TAIGregorian          Sat.TTGregorian           v                         Sat.A1Gregorian           v",
    "01 Jan 2026 11:59:28.000   01 Jan 2026 12:00:05.000   01 Jan 2026 12:00:37.184   -12.5                     01 Jan 2026 12:00:05.034   -12.5",
]


@pytest.mark.parametrize(("lines", "layout"), [(REPORT_LEFT, b"fixed_width_left"), (REPORT_RIGHT, b"fixed_width_right")])
def test_report_command_header_drift_and_time_scales(tmp_path: Path, lines: list[str], layout: bytes) -> None:
    table = parse_report(write(tmp_path, lines))
    assert meta(table)[LAYOUT_KEY] == layout
    assert table.column_names == [
        "Sat.UTCGregorian",
        "Sat.TAIGregorian",
        "Sat.TTGregorian",
        "v",
        "Sat.A1Gregorian",
        "v.1",
    ]
    assert table.num_rows == 2
    row = table.to_pylist()[0]
    assert row == {
        "Sat.UTCGregorian": T0,
        "Sat.TAIGregorian": dt.datetime(2026, 1, 1, 12, 0, 5),
        "Sat.TTGregorian": dt.datetime(2026, 1, 1, 12, 0, 37, 184000),
        "v": -12.5,
        "Sat.A1Gregorian": dt.datetime(2026, 1, 1, 12, 0, 5, 34000),
        "v.1": -12.5,
    }
    for name, scale in [("Sat.UTCGregorian", b"UTC"), ("Sat.TAIGregorian", b"TAI"), ("Sat.TTGregorian", b"TT"), ("Sat.A1Gregorian", b"A1")]:
        field = table.schema.field(name)
        assert field.type == pa.timestamp("ms")
        assert field.metadata == {TIME_SCALE_KEY: scale, EPOCH_FORMAT_KEY: b"Gregorian"}
    assert table.schema.field("v").metadata is None


def test_strings_nan_inf_empty_cells_fixed_width(tmp_path: Path) -> None:
    lines = [
        "Sat.UTCGregorian           v                         w                         s                         e                         A(1,2)                    Sat.TDBGregorian           Sat.Earth.SMA",
        "01 Jan 2026 11:59:28.000   inf                       nan                       hello world                                         -2.5e-07                  01 Jan 2026 12:01:07.184   6999.999999999998",
        "01 Jan 2026 12:00:28.000   -inf                      -nan                      hello                                               1e+70                     01 Jan 2026 12:02:07.184",
    ]
    table = parse_report(write(tmp_path, lines))
    assert table.schema.field("v").type == pa.float64()
    assert table.column("v").to_pylist() == [math.inf, -math.inf]
    w = table.column("w").to_pylist()
    assert table.schema.field("w").type == pa.float64() and all(math.isnan(x) for x in w)
    assert table.column("s").to_pylist() == ["hello world", "hello"]
    assert table.schema.field("e").type == pa.string()
    assert table.column("e").to_pylist() == ["", ""]
    assert table.column("A(1,2)").to_pylist() == [-2.5e-07, 1e70]
    assert table.schema.field("Sat.TDBGregorian").metadata[TIME_SCALE_KEY] == b"TDB"
    assert table.column("Sat.Earth.SMA").to_pylist() == [6999.999999999998, None]  # blank -> null


def test_windows_style_nan_spellings(tmp_path: Path) -> None:
    lines = ["a,b", "-nan(ind),1.#INF", "1.#QNAN,-1.#INF", "2.5,3"]
    table = parse_report(write(tmp_path, lines))
    a, b = table.column("a").to_pylist(), table.column("b").to_pylist()
    assert math.isnan(a[0]) and math.isnan(a[1]) and a[2] == 2.5
    assert b == [math.inf, -math.inf, 3.0]


def test_mixed_numbers_and_words_is_a_string_column(tmp_path: Path) -> None:
    table = parse_report(write(tmp_path, ["x,s", "1,2", "2,two"]))
    assert table.schema.field("x").type == pa.float64()
    assert table.schema.field("s").type == pa.string()
    assert table.column("s").to_pylist() == ["2", "two"]


def test_gregorian_named_column_with_bad_epoch_stays_string(tmp_path: Path) -> None:
    lines = ["Sat.UTCGregorian,x", "31 Feb 2026 00:00:00.000,1", "01 Jan 2026 00:00:00.000,2"]
    table = parse_report(write(tmp_path, lines))
    assert table.schema.field("Sat.UTCGregorian").type == pa.string()
    assert table.schema.field("Sat.UTCGregorian").metadata is None


def test_gregorian_parsing_details(tmp_path: Path) -> None:
    epochs = [
        "29 Feb 2024 23:59:59.999",
        "31 Dec 1999 00:00:00.001",
        "05 Jan 1941 12:00:00.000",
        "30 Jun 2015 23:59:60.000",  # UTC leap second rolls into the next minute
    ]
    table = parse_report(write(tmp_path, ["Sat.UTCGregorian", *epochs]))
    assert table.column(0).to_pylist() == [
        dt.datetime(2024, 2, 29, 23, 59, 59, 999000),
        dt.datetime(1999, 12, 31, 0, 0, 0, 1000),
        dt.datetime(1941, 1, 5, 12),
        dt.datetime(2015, 7, 1),
    ]
    assert table.column(0).to_pylist()[0] == pd.to_datetime(epochs[0], format="%d %b %Y %H:%M:%S.%f")


def _epoch_texts() -> st.SearchStrategy[str]:
    """GMAT-shaped epochs with every field allowed out of range, some with one character replaced."""
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Foo", "jan"]
    shaped = st.builds(
        lambda d, m, y, hh, mm, ss, ms: f"{d:02d} {m} {y:04d} {hh:02d}:{mm:02d}:{ss:02d}.{ms:03d}",
        st.integers(0, 32), st.sampled_from(months), st.integers(0, 9999), st.integers(0, 25), st.integers(0, 61),
        st.integers(0, 61), st.integers(0, 999))

    @st.composite
    def mutated(draw: st.DrawFn) -> str:
        text = draw(shaped)
        at = draw(st.integers(0, len(text) - 1))
        return text[:at] + draw(st.sampled_from([" ", ":", ".", "0", "9", "a", "\u0663", "\x00"])) + text[at + 1:]

    return st.one_of(shaped, shaped, mutated(), st.text(max_size=26))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_epoch_texts(), st.booleans()), min_size=1, max_size=8), st.booleans())
def test_gregorian_loop_and_vector_agree(rows: list[tuple[str, bool]], masked: bool) -> None:
    from gmat_sweep.gmat.report import parse_gregorian_rows, parse_gregorian_vector

    texts = [text for text, _ in rows]
    keep = [flag for _, flag in rows] if masked else None
    loop = parse_gregorian_rows(texts, keep)
    vector = parse_gregorian_vector(pa.array(texts, pa.string()), None if keep is None else pa.array(keep))
    assert (loop is None) == (vector is None), (texts, keep, loop, vector)
    if loop is not None:
        assert loop.equals(vector), (texts, loop, vector)


def test_modjulian_epoch_and_precision(tmp_path: Path) -> None:
    lines = ["Sat.A1ModJulian,Sat.TAIModJulian", "21545,0", "21545.00000001157,-1.5", "nan,0"]
    table = parse_report(write(tmp_path, lines))
    a1 = table.column("Sat.A1ModJulian")
    assert table.schema.field("Sat.A1ModJulian").type == pa.timestamp("us")
    assert a1.to_pylist()[0] == dt.datetime(2000, 1, 1, 12)  # GMAT's J2000 is A1 MJD 21545
    assert a1.to_pylist()[1] == dt.datetime(2000, 1, 1, 12, 0, 0, 1000)  # ~1 ms, kept to the us
    assert a1.to_pylist()[2] is None
    tai = table.column("Sat.TAIModJulian").to_pylist()
    assert tai[0] == dt.datetime(1941, 1, 5, 12)
    assert tai[1] == dt.datetime(1941, 1, 4)
    assert table.schema.field("Sat.TAIModJulian").metadata[TIME_SCALE_KEY] == b"TAI"


def test_modjulian_named_text_column_stays_text(tmp_path: Path) -> None:
    table = parse_report(write(tmp_path, ["Sat.UTCModJulian,x", "soon,1"]))
    assert table.schema.field("Sat.UTCModJulian").type == pa.string()


def test_duplicate_names_get_pandas_suffixes(tmp_path: Path) -> None:
    lines = ["Sat.X,Sat.Y,Sat.X,Sat.X,Sat.X.1", "1,2,3,4,5"]
    table = parse_report(write(tmp_path, lines))
    assert table.column_names == ["Sat.X", "Sat.Y", "Sat.X.1", "Sat.X.2", "Sat.X.1.1"]
    assert table.to_pylist() == [{"Sat.X": 1.0, "Sat.Y": 2.0, "Sat.X.1": 3.0, "Sat.X.2": 4.0, "Sat.X.1.1": 5.0}]
    assert table.column_names == list(pd.io.common.dedup_names(["Sat.X", "Sat.Y", "Sat.X", "Sat.X", "Sat.X.1"], False))


def test_duplicate_epoch_names_keep_their_type(tmp_path: Path) -> None:
    lines = ["Sat.UTCGregorian           Sat.UTCGregorian", "01 Jan 2026 11:59:28.000   01 Jan 2026 11:59:28.000"]
    table = parse_report(write(tmp_path, lines))
    assert table.column_names == ["Sat.UTCGregorian", "Sat.UTCGregorian.1"]
    assert table.schema.field("Sat.UTCGregorian.1").type == pa.timestamp("ms")
    assert table.schema.field("Sat.UTCGregorian.1").metadata[TIME_SCALE_KEY] == b"UTC"


def test_empty_file_with_known_columns(tmp_path: Path) -> None:
    table = parse_report(write(tmp_path, ""), columns=[*LEO_COLUMNS, "Sat.X"])
    assert table.num_rows == 0
    assert table.column_names == [*LEO_COLUMNS, "Sat.X.1"]
    assert table.schema.field("Sat.UTCGregorian").type == pa.timestamp("ms")
    assert table.schema.field("Sat.UTCModJulian").type == pa.timestamp("us")
    assert table.schema.field("Sat.UTCModJulian").metadata[EPOCH_FORMAT_KEY] == b"ModJulian"
    assert table.schema.field("Sat.X").type == pa.float64()
    assert meta(table) == {TABULAR_KEY: b"true", LAYOUT_KEY: b"empty"}


def test_empty_file_without_columns(tmp_path: Path) -> None:
    table = parse_report(write(tmp_path, "\n  \n"))
    assert table.num_rows == 0 and table.num_columns == 0
    assert meta(table)[TABULAR_KEY] == b"true"


def test_header_only_file(tmp_path: Path) -> None:
    table = parse_report(write(tmp_path, DEFAULT_LEFT[:1]))
    assert table.num_rows == 0
    assert table.column_names == LEO_COLUMNS
    assert table.schema.field("Sat.UTCGregorian").type == pa.timestamp("ms")
    assert table.schema.field("Sat.Earth.SMA").type == pa.float64()


@pytest.mark.parametrize("delim", [",", ";", "\t", "|"])
def test_header_only_delimited_file(tmp_path: Path, delim: str) -> None:
    table = parse_report(write(tmp_path, [delim.join(["Sat.UTCGregorian", "A(1,2)", "Sat.X"])]))
    assert table.num_rows == 0
    assert table.column_names == ["Sat.UTCGregorian", "A(1,2)", "Sat.X"]
    assert meta(table)[LAYOUT_KEY] == b"delimited"


def test_header_in_file_wins_over_column_hint(tmp_path: Path) -> None:
    table = parse_report(write(tmp_path, DEFAULT_LEFT), columns=["a", "b"])
    assert table.column_names == LEO_COLUMNS


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        parse_report(tmp_path / "nope.txt")


def test_crlf_line_endings(tmp_path: Path) -> None:
    assert_leo_two_rows(parse_report(write(tmp_path, DEFAULT_LEFT, newline="\r\n")))
    assert_leo_two_rows(parse_report(write(tmp_path, NO_HEADER, newline="\r\n"), columns=LEO_COLUMNS))


def test_utf8_string_cells_are_cut_by_bytes(tmp_path: Path) -> None:
    # GMAT pads with setw, which counts bytes: "héllo wörld" is 13 bytes wide.
    cells = [["s", "x"], ["héllo wörld", "1.5"], ["plain", "2.5"]]
    body = b"\n".join(b"".join(c.encode().ljust(26) for c in row) for row in cells) + b"\n"
    path = tmp_path / "utf8.txt"
    path.write_bytes(body)
    table = parse_report(path)
    assert table.column("s").to_pylist() == ["héllo wörld", "plain"]
    assert table.column("x").to_pylist() == [1.5, 2.5]


WRITE_COMMAND = [
    "Create Spacecraft Sat;",
    "GMAT Sat.DateFormat = UTCGregorian;",
    "GMAT Sat.Epoch = '01 Jan 2026 12:09:28.000';",
    "GMAT Sat.CoordinateSystem = EarthMJ2000Eq;",
    "GMAT Sat.OrbitErrorCovariance = [ 1e+70 0 0 0 0 0 ; 0 1e+70 0 0 0 0 ];",
]
ARRAY_REPORT = ["A", "0 0", "0 0", "Sat.UTCGregorian          A(1,1)", "01 Jan 2026 12:09:28.000   0"]
OVERFLOW = [  # a 54-byte String overflows its 26-byte cell and glues to the next value
    "Sat.UTCGregorian           s                         v                         e                         Sat.TAIGregorian           Sat.Earth.SMA",
    "01 Jan 2026 11:59:28.000   a long string value with spaces, commas; and more text-12.5                                               01 Jan 2026 12:00:05.000   6999.999999999998",
]


@pytest.mark.parametrize("lines", [WRITE_COMMAND, ARRAY_REPORT, OVERFLOW], ids=["write", "array", "overflow"])
def test_non_tabular_falls_back_to_text(tmp_path: Path, lines: list[str]) -> None:
    table = parse_report(write(tmp_path, ["", *lines, "   "]))
    assert table.column_names == ["text"]
    assert table.schema.field("text").type == pa.string()
    assert table.column("text").to_pylist() == [line.rstrip() for line in lines]
    assert meta(table)[TABULAR_KEY] == b"false"
    assert meta(table)[LAYOUT_KEY] == b"text"


def test_write_parquet_round_trip_keeps_metadata(tmp_path: Path) -> None:
    table = parse_report(write(tmp_path, DEFAULT_LEFT))
    out = tmp_path / "out.parquet"
    write_parquet(table, out)
    assert not list(tmp_path.glob(".*.tmp"))
    back = pq.read_table(out)
    assert back.equals(table, check_metadata=True)
    assert back.schema.field("Sat.UTCGregorian").metadata[TIME_SCALE_KEY] == b"UTC"
    assert pq.ParquetFile(out).metadata.row_group(0).column(0).compression == "UNCOMPRESSED"
    assert pq.ParquetFile(out).metadata.row_group(0).column(1).statistics is not None


def test_write_parquet_that_fails_leaves_no_temporary_file(tmp_path: Path) -> None:
    table = parse_report(write(tmp_path, DEFAULT_LEFT))
    (tmp_path / "taken.parquet").mkdir()  # the rename onto a folder fails after the bytes were written
    with pytest.raises(OSError):
        write_parquet(table, tmp_path / "taken.parquet")
    assert not list(tmp_path.glob(".*.tmp")) and not any((tmp_path / "taken.parquet").iterdir())


def test_write_parquet_compresses_large_tables(tmp_path: Path) -> None:
    rows = COMPRESS_ROWS
    table = parse_report(write(tmp_path, [DEFAULT_LEFT[0]] + [DEFAULT_LEFT[1 + i % 2] for i in range(rows)]))
    write_parquet(table, tmp_path / "big.parquet")
    back = pq.ParquetFile(tmp_path / "big.parquet")
    assert back.metadata.row_group(0).column(1).compression in {"ZSTD", "SNAPPY"}
    assert back.read().equals(table, check_metadata=True)


def test_write_parquet_text_fallback_and_duplicates(tmp_path: Path) -> None:
    for name, lines in [("text", WRITE_COMMAND), ("dups", REPORT_LEFT)]:
        table = parse_report(write(tmp_path, lines, name=f"{name}.txt"))
        write_parquet(table, str(tmp_path / f"{name}.parquet"))
        assert pq.read_table(tmp_path / f"{name}.parquet").equals(table, check_metadata=True)


def test_large_fixed_width_report_is_vectorised(tmp_path: Path) -> None:
    rows = 30_000
    lines = [DEFAULT_LEFT[0]] + [DEFAULT_LEFT[1 + i % 2] for i in range(rows)]
    table = parse_report(write(tmp_path, lines))
    assert table.num_rows == rows
    assert table.column("Sat.UTCGregorian")[rows - 1].as_py() == T1


# --------------------------------------------------------------------------
# property: render a random table the way GMAT would, parse it back

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
GREG_NAMES = ["Sat.UTCGregorian", "Sat.TAIGregorian", "Sat.TTGregorian", "Sat.A1Gregorian", "Sat.TDBGregorian"]
FLOAT_NAMES = ["Sat.X", "Sat.Earth.SMA", "v", "A(1,2)", "Sat.EarthMJ2000Eq.VX", "VeryLongVariableNameThatIsLongerThanColumnWidth"]
FORMATS = [
    "fixed_left",
    "fixed_right",
    "noheader_left",
    "noheader_right",
    "report_left",
    "report_right",
    "delimited",
    "delimited_padded_header",
    "space",
]


def gmat_number(x: float) -> str:
    return format(x, ".16g")  # C++ ostream with setprecision(16)


def gmat_gregorian(t: dt.datetime) -> str:
    return f"{t.day:02d} {MONTHS[t.month - 1]} {t.year:04d} {t:%H:%M:%S}.{t.microsecond // 1000:03d}"


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


finite = st.floats(min_value=-1e99, max_value=1e99).filter(lambda x: x == 0 or abs(x) >= 1e-99)
numbers = st.one_of(finite, st.sampled_from([math.nan, math.inf, -math.inf]))
epochs = st.datetimes(min_value=dt.datetime(1950, 1, 1), max_value=dt.datetime(2100, 1, 1)).map(
    lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)
)
words = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-+", min_size=1, max_size=20).filter(
    lambda s: not is_number(s)
)
# Layouts that place cells by position or by a non-space delimiter can also
# carry String values with single spaces, and empty Strings.
phrases = st.one_of(
    st.just(""),
    st.lists(words.filter(lambda w: len(w) <= 6), min_size=1, max_size=3).map(" ".join),
)
RICH_STRING_FORMATS = {"fixed_left", "fixed_right", "report_left", "report_right", "delimited", "delimited_padded_header"}


@st.composite
def gmat_tables(draw: st.DrawFn, rich_strings: bool = False) -> tuple[list[str], list[str], list[list[str]], list[list]]:
    """Column kinds and names, rendered cells, and the typed values GMAT's text stands for."""
    n_rows = draw(st.integers(1, 12))
    kinds = ["greg"] + ["float"] * draw(st.integers(1, 4)) + draw(st.sampled_from([[], ["str"], ["mjd"], ["str", "mjd"]]))
    kinds = draw(st.permutations(kinds))
    names, cells, values = [], [], []
    for kind in kinds:
        if kind == "greg":
            names.append(draw(st.sampled_from(GREG_NAMES)))
            col = draw(st.lists(epochs, min_size=n_rows, max_size=n_rows))
            cells.append([gmat_gregorian(t) for t in col])
            values.append(col)
        elif kind == "float":
            names.append(draw(st.sampled_from(FLOAT_NAMES)))
            col = draw(st.lists(numbers, min_size=n_rows, max_size=n_rows))
            cells.append([gmat_number(x) for x in col])
            values.append([float(c) for c in cells[-1]])
        elif kind == "mjd":
            names.append("Sat.UTCModJulian")
            col = draw(st.lists(st.floats(0, 60000), min_size=n_rows, max_size=n_rows))
            cells.append([gmat_number(x) for x in col])
            days = np.array([float(c) for c in cells[-1]])
            stamps = np.datetime64("1941-01-05T12:00:00", "us") + np.rint(days * 86400e6).astype("timedelta64[us]")
            values.append(list(stamps))
        else:
            names.append("Str")
            col = draw(st.lists(phrases if rich_strings else words, min_size=n_rows, max_size=n_rows))
            cells.append(col)
            values.append(col)
    rows = [list(r) for r in zip(*cells, strict=True)]
    return kinds, names, rows, values


def render(fmt: str, names: list[str], kinds: list[str], rows: list[list[str]], width: int, delim: str, repeat_header: bool) -> str:
    """Lay out cells exactly as GMAT's ReportFile / Report command do."""
    greg = [k == "greg" for k in kinds]
    cell = [max(width, len(n), 24 if g else 0) + 3 for n, g in zip(names, greg, strict=True)]
    lines: list[str] = []
    if fmt == "fixed_left":
        lines.append("".join(n.ljust(w) for n, w in zip(names, cell, strict=True)))
        lines += ["".join(v.ljust(w) for v, w in zip(r, cell, strict=True)) for r in rows]
    elif fmt == "fixed_right":
        lines.append("".join(n.rjust(w) for n, w in zip(names, cell, strict=True)))
        lines += ["".join(v.rjust(w) for v, w in zip(r, cell, strict=True)) for r in rows]
    elif fmt == "noheader_left":
        lines += ["".join(v.ljust(width) for v in r) for r in rows]
    elif fmt == "noheader_right":
        lines += ["".join(v.rjust(width) for v in r) for r in rows]
    elif fmt in ("report_left", "report_right"):
        # The Report command sizes header cells without the 24-byte epoch rule,
        # and right-justified it puts the 3-space gutter after the name.
        hcell = [max(width, len(n)) for n in names]
        dcell = [c - 3 for c in cell]
        if fmt == "report_left":
            header = "".join(n.ljust(w + 3) for n, w in zip(names, hcell, strict=True))
            data = ["".join(v.ljust(w + 3) for v, w in zip(r, dcell, strict=True)) for r in rows]
        else:
            header = "".join(n.rjust(w) + "   " for n, w in zip(names, hcell, strict=True))
            data = ["".join("   " + v.rjust(w) for v, w in zip(r, dcell, strict=True)) for r in rows]
        for i, line in enumerate(data):
            if i == 0 or repeat_header:
                lines.append(header)
            lines.append(line)
    elif fmt == "delimited":
        lines.append(delim.join(names))
        lines += [delim.join(r) for r in rows]
    elif fmt == "delimited_padded_header":
        lines.append("".join(n.ljust(max(width, len(n)) + 3) for n in names))
        lines += [delim.join(r) for r in rows]
    elif fmt == "space":
        lines.append(" ".join(names))
        lines += [" ".join(r) for r in rows]
    return "\n".join(lines) + "\n"


def dedup(names: list[str]) -> list[str]:
    return list(pd.io.common.dedup_names(names, False))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.data(),
    fmt=st.sampled_from(FORMATS),
    width=st.sampled_from([23, 26]),
    delim=st.sampled_from([",", ";", "\t", "|"]),
    hinted=st.booleans(),
    repeat_header=st.booleans(),
)
def test_round_trip_every_layout(
    tmp_path: Path, data: st.DataObject, fmt: str, width: int, delim: str, hinted: bool, repeat_header: bool
) -> None:
    rich = fmt in RICH_STRING_FORMATS and data.draw(st.booleans(), label="rich strings")
    kinds, names, rows, values = data.draw(gmat_tables(rich), label="table")
    path = tmp_path / "prop.txt"
    path.write_text(render(fmt, names, kinds, rows, width, delim, repeat_header))
    has_header = not fmt.startswith("noheader")
    hints: dict = {"columns": names}
    if hinted:
        hints |= {
            "header": has_header,
            "fixed_width": fmt.startswith(("fixed", "noheader", "report")),
            "delimiter": " " if fmt == "space" else (delim if fmt.startswith("delimited") else " "),
            "left_justify": not fmt.endswith("right"),
        }
    elif has_header:
        hints = {}
    parsed = parse_report(path, **hints)

    assert meta(parsed)[TABULAR_KEY] == b"true", path.read_text()
    expected_types = {"greg": pa.timestamp("ms"), "float": pa.float64(), "mjd": pa.timestamp("us"), "str": pa.string()}
    assert parsed.column_names == dedup(names)
    assert [f.type for f in parsed.schema] == [expected_types[k] for k in kinds]
    expected = pa.Table.from_arrays(
        [pa.array(v, expected_types[k]) for v, k in zip(values, kinds, strict=True)], names=dedup(names)
    )
    pd.testing.assert_frame_equal(parsed.to_pandas(), expected.to_pandas())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), fmt=st.sampled_from(["fixed_left", "report_left", "fixed_right"]), width=st.sampled_from([23, 26]))
def test_header_cut_agrees_with_the_general_parser(tmp_path: Path, data: st.DataObject, fmt: str, width: int) -> None:
    """The one-pass cut for ReportFile output either declines or gives exactly the general parser's cells."""
    kinds, names, rows, _ = data.draw(gmat_tables(data.draw(st.booleans(), label="rich strings")), label="table")
    lines = [line.encode() for line in render(fmt, names, kinds, rows, width, ",", False).splitlines() if line.strip()]
    fast = report_module.cut_at_header(lines[1:], lines[0], len(names))
    if fmt == "fixed_left" and all(cell.strip() and "   " not in cell and cell.isascii() for row in rows for cell in row):
        assert fast is not None  # the common case really takes the fast path
    if fast is not None:
        _, general = report_module.parse_fixed(lines[1:], lines[0], len(names), True)
        assert [c.to_pylist() for c in fast] == [c.to_pylist() for c in general]


@pytest.mark.parametrize("row", [
    b"1.5000000002 2.5",  # a value in the gutter: fewer than 3 spaces before the next name
    b"1.5   7      2.5",   # two values in one cell
    b" 1.5         2.5",   # a value not where its name starts
    b"1.5",                # an empty last cell
    b"1.5\t         2.5",  # a byte GMAT's padding never writes
])
def test_header_cut_declines_what_it_cannot_prove(row: bytes) -> None:
    header, good = b"Sat.X        Sat.Y", b"1.5          2.5"
    assert [c.to_pylist() for c in report_module.cut_at_header([good], header, 2)] == [["1.5"], ["2.5"]]
    assert report_module.cut_at_header([good, row], header, 2) is None


# --------------------------------------------------------------------------
# the real GMAT engine (no mocks)

MISSION = """\
Create Spacecraft Sat;
GMAT Sat.DateFormat = UTCGregorian;
GMAT Sat.Epoch = '01 Jan 2026 11:59:28.000';
GMAT Sat.CoordinateSystem = EarthMJ2000Eq;
GMAT Sat.DisplayStateType = Keplerian;
GMAT Sat.SMA = 7000;
GMAT Sat.ECC = 0.001;
GMAT Sat.INC = 28.5;
Create ForceModel FM;
GMAT FM.CentralBody = Earth;
GMAT FM.PrimaryBodies = {{Earth}};
Create Propagator Prop;
GMAT Prop.FM = FM;
Create ReportFile RF;
GMAT RF.Filename = 'leo.txt';
{resources}
BeginMissionSequence;
{sequence}
"""
ADD = "GMAT RF.Add = {Sat.UTCGregorian, Sat.UTCModJulian, Sat.Earth.SMA, Sat.Earth.ECC, Sat.X};"
PROPAGATE = "Propagate Prop(Sat) {Sat.ElapsedSecs = 600};"
REPORT_LINE = "Report RF Sat.UTCGregorian Sat.UTCModJulian Sat.Earth.SMA Sat.Earth.ECC Sat.X;"
REPORT_LOOP = f"""\
Create Variable I;
BeginMissionSequence;
{REPORT_LINE}
For I = 1:1:5;
  Propagate Prop(Sat) {{Sat.ElapsedSecs = 120}};
  {REPORT_LINE}
EndFor;
"""
ENGINE_CASES: dict[str, tuple[str, str]] = {
    "default": (ADD, PROPAGATE),
    "right": (f"{ADD}\nGMAT RF.LeftJustify = Off;", PROPAGATE),
    "noheader": (f"{ADD}\nGMAT RF.WriteHeaders = false;", PROPAGATE),
    "comma": (f"{ADD}\nGMAT RF.FixedWidth = false;\nGMAT RF.Delimiter = ',';", PROPAGATE),
    "semicolon": (f"{ADD}\nGMAT RF.FixedWidth = false;\nGMAT RF.Delimiter = ';';", PROPAGATE),
    "precision12": (f"{ADD}\nGMAT RF.Precision = 12;", PROPAGATE),
    "report": ("", REPORT_LOOP),
    "report_right": ("GMAT RF.LeftJustify = Off;", REPORT_LOOP),
    "report_comma": ("GMAT RF.FixedWidth = false;\nGMAT RF.Delimiter = ',';", REPORT_LOOP),
    "write": ("", "Write Sat {Style = Script, ReportFile = RF}"),
}
# The hints a caller would read off the ReportFile resource.
ENGINE_HINTS: dict[str, dict] = {
    "default": {"columns": LEO_COLUMNS, "fixed_width": True, "header": True, "left_justify": True},
    "right": {"columns": LEO_COLUMNS, "fixed_width": True, "header": True, "left_justify": False},
    "noheader": {"columns": LEO_COLUMNS, "fixed_width": True, "header": False, "left_justify": True},
    "comma": {"columns": LEO_COLUMNS, "fixed_width": False, "delimiter": ",", "header": True},
    "semicolon": {"columns": LEO_COLUMNS, "fixed_width": False, "delimiter": ";", "header": True},
    "precision12": {"columns": LEO_COLUMNS},
    "report": {"fixed_width": True, "header": True},
    "report_right": {"fixed_width": True, "left_justify": False},
    "report_comma": {"fixed_width": False, "delimiter": ","},
    "write": {},
}

RUNNER = textwrap.dedent(
    """\
    import json, sys
    import gmatpy

    jobs = json.loads(sys.argv[1])
    status = {}
    with gmatpy.native_session() as api:
        api.UseLogFile(sys.argv[2])
        for name, script, out in jobs:
            if not api.LoadScript(script):
                status[name] = "load failed"
                continue
            api.GetObject("RF").SetField("Filename", out)
            status[name] = "ok" if api.RunScript() else "run failed"
    print(json.dumps(status))
    """
)


@pytest.fixture(scope="module")
def engine_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run every configuration through the real engine, in one fresh interpreter.

    A subprocess keeps GMAT's process-wide state out of the test process (and
    away from anything that forks later); the missions run one at a time.
    """
    root = tmp_path_factory.mktemp("gmat_reports")
    jobs = []
    for name, (resources, sequence) in ENGINE_CASES.items():
        script = root / f"{name}.script"
        text = MISSION.format(resources=resources, sequence=sequence)
        if sequence.count("BeginMissionSequence"):
            text = text.replace("BeginMissionSequence;\n", "", 1)
        script.write_text(text)
        jobs.append((name, str(script), str(root / f"{name}.txt")))
    runner = root / "run_gmat.py"
    runner.write_text(RUNNER)
    proc = subprocess.run(
        [sys.executable, str(runner), json.dumps(jobs), str(root / "gmat.log")],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout.strip().splitlines()[-1])
    assert status == {name: "ok" for name in ENGINE_CASES}, (status, (root / "gmat.log").read_text()[-3000:])
    return {name: root / f"{name}.txt" for name in ENGINE_CASES}


def check_leo(table: pa.Table, *, min_rows: int = 3, mjd_tolerance_us: int = 1000) -> None:
    assert meta(table)[TABULAR_KEY] == b"true"
    assert table.column_names == LEO_COLUMNS
    assert table.num_rows >= min_rows
    assert table.schema.field("Sat.UTCGregorian").type == pa.timestamp("ms")
    assert table.schema.field("Sat.UTCGregorian").metadata == {TIME_SCALE_KEY: b"UTC", EPOCH_FORMAT_KEY: b"Gregorian"}
    assert table.schema.field("Sat.UTCModJulian").type == pa.timestamp("us")
    assert table.schema.field("Sat.UTCModJulian").metadata == {TIME_SCALE_KEY: b"UTC", EPOCH_FORMAT_KEY: b"ModJulian"}
    assert table.column("Sat.UTCGregorian")[0].as_py() == T0
    greg = table.column("Sat.UTCGregorian").cast(pa.timestamp("us")).cast(pa.int64()).to_numpy()
    mjd = table.column("Sat.UTCModJulian").cast(pa.int64()).to_numpy()
    assert np.abs(greg - mjd).max() <= mjd_tolerance_us  # the two epoch columns agree
    assert np.all(np.diff(greg) > 0)
    sma = table.column("Sat.Earth.SMA").to_numpy()
    assert sma[0] == pytest.approx(7000, abs=1e-6)
    assert np.all(np.abs(sma - 7000) < 5)
    ecc = table.column("Sat.Earth.ECC").to_numpy()
    assert ecc[0] == pytest.approx(0.001, abs=1e-9)


@pytest.mark.parametrize("case", ["default", "right", "noheader", "comma", "semicolon", "precision12"])
@pytest.mark.parametrize("hinted", [True, False], ids=["hints", "inferred"])
def test_engine_report_file_layouts(engine_reports: dict[str, Path], case: str, hinted: bool) -> None:
    hints = ENGINE_HINTS[case] if hinted else {}
    if case == "noheader":
        hints = {**hints, "columns": LEO_COLUMNS}  # the only source of names
    table = parse_report(engine_reports[case], **hints)
    # 12 significant digits of ~3.1e4 days resolve 1e-7 day = 8.64 ms.
    check_leo(table, mjd_tolerance_us=5000 if case == "precision12" else 1000)
    expected_layout = {
        "default": b"fixed_width_left",
        "right": b"fixed_width_right",
        "noheader": b"whitespace",
        "comma": b"delimited",
        "semicolon": b"delimited",
        "precision12": b"fixed_width_left",
    }[case]
    assert meta(table)[LAYOUT_KEY] == expected_layout


def test_engine_layouts_give_equal_tables(engine_reports: dict[str, Path]) -> None:
    """Same mission, same Precision: every layout must give the identical table."""
    base = parse_report(engine_reports["default"], **ENGINE_HINTS["default"])
    for case in ["right", "noheader", "comma", "semicolon"]:
        other = parse_report(engine_reports[case], **ENGINE_HINTS[case])
        assert other.equals(base), case
        # and without any hint but the names of a header-less file
        inferred = parse_report(engine_reports[case], columns=LEO_COLUMNS)
        assert inferred.equals(base), case


def test_engine_precision_changes_values_only_within_precision(engine_reports: dict[str, Path]) -> None:
    """Precision = 12 prints 12 significant digits: equal to the default to ~1e-11 relative.

    This is the only precision difference between layouts of one mission.
    Gregorian epochs are always printed to the millisecond, so they are equal;
    ModJulian at 12 digits resolves 1e-7 day (8.64 ms) at today's epochs, so
    it is compared to within 5 ms (half a step, rounded up).
    """
    base = parse_report(engine_reports["default"])
    low = parse_report(engine_reports["precision12"])
    assert low.num_rows == base.num_rows
    assert low.column("Sat.UTCGregorian").equals(base.column("Sat.UTCGregorian"))
    for name in ["Sat.Earth.SMA", "Sat.Earth.ECC", "Sat.X"]:
        np.testing.assert_allclose(low.column(name).to_numpy(), base.column(name).to_numpy(), rtol=1e-11, atol=0)
    lo = low.column("Sat.UTCModJulian").cast(pa.int64()).to_numpy()
    hi = base.column("Sat.UTCModJulian").cast(pa.int64()).to_numpy()
    assert np.abs(lo - hi).max() <= 5000


@pytest.mark.parametrize("case", ["report", "report_right", "report_comma"])
def test_engine_report_command(engine_reports: dict[str, Path], case: str) -> None:
    text = engine_reports[case].read_text()
    assert text.count("Sat.UTCGregorian") == 2  # one header per Report command
    for hints in (ENGINE_HINTS[case], {}):
        table = parse_report(engine_reports[case], **hints)
        check_leo(table, min_rows=6)
        assert table.num_rows == 6
        steps = np.diff(table.column("Sat.UTCGregorian").cast(pa.int64()).to_numpy())
        assert list(steps) == [120_000] * 5
    # The first Report row is the same state the ReportFile subscriber printed first.
    first = parse_report(engine_reports[case]).slice(0, 1)
    assert first.equals(parse_report(engine_reports["default"]).slice(0, 1))


def test_engine_layouts_agree_across_report_command_variants(engine_reports: dict[str, Path]) -> None:
    tables = [parse_report(engine_reports[case]) for case in ["report", "report_right", "report_comma"]]
    assert tables[1].equals(tables[0], check_metadata=False)
    assert tables[2].equals(tables[0], check_metadata=False)


def test_engine_write_command_is_not_tabular(engine_reports: dict[str, Path], tmp_path: Path) -> None:
    table = parse_report(engine_reports["write"])
    assert meta(table)[TABULAR_KEY] == b"false"
    assert table.column_names == ["text"]
    lines = [line.rstrip() for line in engine_reports["write"].read_text().splitlines() if line.strip()]
    assert table.column("text").to_pylist() == lines
    assert lines[0] == "Create Spacecraft Sat;"
    write_parquet(table, tmp_path / "write.parquet")
    assert pq.read_table(tmp_path / "write.parquet").schema.metadata[TABULAR_KEY] == b"false"


def test_engine_report_to_parquet(engine_reports: dict[str, Path], tmp_path: Path) -> None:
    table = parse_report(engine_reports["default"], **ENGINE_HINTS["default"])
    write_parquet(table, tmp_path / "leo.parquet")
    back = pq.read_table(tmp_path / "leo.parquet")
    assert back.equals(table, check_metadata=True)
    frame = back.to_pandas()
    assert frame["Sat.UTCGregorian"].iloc[0] == pd.Timestamp("2026-01-01 11:59:28")


def test_report_command_header_repeated_in_a_delimited_file(tmp_path):
    # A ReportFile with Delimiter ',' and a Report command writing to the same file: GMAT pads the
    # command's header with spaces although the subscriber's own header is comma-delimited.
    path = tmp_path / "finals.txt"
    path.write_text("Sat.ElapsedSecs,Sat.Earth.RMAG\n0,7001.195234503745\n60,7001.628216240597\n"
                    "Sat.ElapsedSecs           Sat.Earth.RMAG            \n1800.000000209548,6999.608825942797\n")
    table = parse_report(path, columns=["Sat.ElapsedSecs", "Sat.Earth.RMAG"], fixed_width=False, delimiter=",",
                         header=True, left_justify=True)
    assert table.column_names == ["Sat.ElapsedSecs", "Sat.Earth.RMAG"]
    assert table.column("Sat.ElapsedSecs").to_pylist() == [0.0, 60.0, 1800.000000209548]
