"""Turn GMAT ReportFile text into typed :mod:`pyarrow` tables.

GMAT writes ReportFile output (from a ``ReportFile`` subscriber or from the
``Report`` command) in several layouts that all look alike to a human but
need different parsing:

* **fixed width, left-justified** (the default: ``ColumnWidth = 23``,
  ``LeftJustify = On``, ``WriteHeaders = true``).  Each cell is padded to
  ``max(ColumnWidth, len(name), 24 for Gregorian epochs) + 3`` bytes, so cell
  values start where the header names start.
* **fixed width, right-justified** (``LeftJustify = Off``): values end where the
  header names end.
* **Report-command files** use slightly different widths for the header than for
  the data (the header cell of a Gregorian column is one byte narrower, and
  right-justified headers put the 3-space gutter after the name instead of
  before it), so the data drifts a few bytes away from the header.  The parser
  therefore does not trust the header positions blindly: it searches a small
  window around each header anchor for the position where the data cells really
  start/end, and checks every row against the result.
* **no header** (``WriteHeaders = false``): cells are ``ColumnWidth`` wide with
  no guaranteed gutter, so a 24-byte Gregorian epoch can touch its neighbour
  (``01 Jan 2026 11:59:28.00031041.99962962963``).  Rows are tokenised with a
  regular expression that treats ``DD Mon YYYY HH:MM:SS.mmm`` as one token.
* **delimited** (``FixedWidth = false``, ``Delimiter = ','`` ...): data rows are
  split on the delimiter; the header may be delimited or whitespace padded
  (the ``Report`` command writes a padded header above delimited data), and a
  delimited header is split outside parentheses so ``A(1,2)`` survives a comma
  delimiter.

Anything that no method reconciles (``Write`` command output, a ``Report`` of a
whole Array, rows whose values overflow into each other) is returned as a
one-column ``text`` table with schema metadata ``gmat_sweep.tabular = false``
instead of raising, so a sweep never loses a run's output to a parser error.

Typing: columns named ``*Gregorian`` become ``timestamp[ms]``, ``*ModJulian``
become ``timestamp[us]`` (GMAT's ModJulian counts days from JD 2430000.0 =
1941-01-05 12:00:00), both with field metadata naming the time scale; other
columns are ``float64`` if every non-empty cell is a number (``nan``/``-nan``/
``inf`` included) and ``string`` otherwise.

This module reads a report and writes Parquet; ``layout`` finds the cells and ``columns`` types them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ...atomic import write_bytes
from .columns import EPOCH_FORMAT_KEY, GMAT_MJD_EPOCH, TIME_SCALE_KEY, dedupe, epoch_field, epoch_kind, type_column
from .columns import parse_gregorian_rows, parse_gregorian_vector  # noqa: F401 - tests compare the two parsers
from .layout import (cut_at_header, looks_like_header, NotTabular, parse_delimited, parse_fixed, parse_tokens,
                     resolve_delimiter, split_header)

__all__ = [
    "COMPRESS_ROWS",
    "EPOCH_FORMAT_KEY",
    "GMAT_MJD_EPOCH",
    "LAYOUT_KEY",
    "TABULAR_KEY",
    "TEXT_COLUMN",
    "TIME_SCALE_KEY",
    "parse_report",
    "write_parquet",
]

#: Schema metadata key: ``b"true"`` for a parsed table, ``b"false"`` for the text fallback.
TABULAR_KEY = b"gmat_sweep.tabular"
#: Schema metadata key naming the layout that was detected (see ``parse_report``).
LAYOUT_KEY = b"gmat_sweep.layout"
#: Field metadata key on epoch columns: ``UTC``, ``TAI``, ``TT``, ``TDB``, ``A1``, ``UT1``...
TEXT_COLUMN = "text"
#: Reports of at least this many rows are written compressed (see ``write_parquet``).
COMPRESS_ROWS = 1000


def _header_key(line: bytes) -> list[bytes]:
    """A header line's names, whatever separates them (padding, a delimiter), for spotting repeats."""
    return [token for token in re.split(rb"[\s,;]+", line.strip()) if token]



def parse_report(
    path: str | os.PathLike[str],
    *,
    columns: Sequence[str] | None = None,
    fixed_width: bool | None = None,
    delimiter: str | None = None,
    header: bool | None = None,
    left_justify: bool | None = None,
) -> pa.Table:
    """Parse a GMAT ReportFile (or ``Report`` command output) into a typed table.

    Example: ``table = parse_report("leo.txt", columns=["Sat.UTCGregorian", "Sat.X"])``

    The keyword hints mirror the ReportFile resource's own settings (``Add``,
    ``FixedWidth``, ``Delimiter``, ``WriteHeaders``, ``LeftJustify``); pass what
    you know, leave the rest ``None`` and the layout is inferred from the text.
    A header line in the file wins over ``columns``: the file says what was
    actually written.  ``columns`` names the columns of a header-less file (they
    are ``col0``, ``col1``... without it) and of an empty file.

    Result:

    * Column names are kept in order; repeated names get ``.1``, ``.2``...
      (pandas style) so that Parquet can store them.
    * ``*Gregorian`` columns are ``timestamp[ms]`` (GMAT prints milliseconds; a
      leap second ``:60`` rolls into the next minute), ``*ModJulian`` columns are
      ``timestamp[us]`` rounded to the microsecond (the 16 significant digits
      GMAT prints resolve ~1 us at current epochs).  Both carry field metadata
      ``gmat_sweep.time_scale`` and ``gmat_sweep.epoch_format``; the time scale
      also stays in the column name.  An epoch-named column whose cells do not
      parse as epochs is typed like any other column.
    * Other columns are ``float64`` when every non-empty cell is a number
      (``nan``, ``-nan``, ``inf`` included; empty cells become null) and
      ``string`` otherwise.  A column that is blank in every row (an empty GMAT
      String) is ``string``.
    * An empty file, or a header with no data, gives zero rows with the known
      columns typed by name: epochs as above, everything else ``float64`` (most
      report parameters are Reals, so the empty table concatenates with other
      runs of the same mission).
    * Schema metadata ``gmat_sweep.tabular`` is ``b"true"``, and
      ``gmat_sweep.layout`` is one of ``fixed_width_left``,
      ``fixed_width_right``, ``delimited``, ``whitespace``, ``empty``.
    * If the rows cannot be reconciled into columns, the result is one
      ``string`` column ``text`` with one row per non-empty line, and schema
      metadata ``gmat_sweep.tabular = b"false"`` (layout ``text``).  No
      exception is raised for content; a missing file raises ``OSError``.

    Known ambiguity: without a header, values are split on whitespace, so a
    String cell containing spaces or an empty String cell cannot be placed; the
    file then falls back to text unless the token counts happen to agree.
    """
    raw = Path(path).read_bytes()
    lines_b = [line.rstrip(b"\r") for line in raw.split(b"\n")]
    lines_b = [line for line in lines_b if line.strip(b" \t\r\f\v")]
    names_hint = list(columns) if columns is not None else None
    if not lines_b:
        return _empty_table(names_hint or [], layout="empty")

    first = lines_b[0].decode("utf-8", "replace")
    has_header = header if header is not None else looks_like_header(first, names_hint)

    if has_header:
        # The Report command writes its header once per command; a file fed
        # by the same command in a loop or by two identical commands repeats it,
        # padded with spaces even where the ReportFile's own header is delimited.
        first_key = _header_key(lines_b[0])
        name = first_key[0] if first_key else b""  # a cheap test first: a repeat holds the first name
        body_b = [line for line in lines_b[1:] if name not in line or _header_key(line) != first_key]
    else:
        body_b = lines_b
    # The rows as text only where a path needs them: the fixed-width parsers work on the bytes.
    body = _decode(body_b) if fixed_width is not True or not has_header else []

    delim = resolve_delimiter(first if has_header else None, body, fixed_width, delimiter)
    names: list[str] | None = split_header(first, delim) if has_header else names_hint
    n = len(names) if names is not None else None

    try:
        if delim is not None:
            layout = "delimited"
            try:
                cells = parse_delimited(body, delim, n)
            except NotTabular:
                if delim != " ":
                    raise
                layout, cells = "whitespace", parse_tokens(body, n)
        elif has_header:
            assert names is not None
            fast = None if left_justify is False else cut_at_header(body_b, lines_b[0], len(names))
            if fast is not None:
                layout, cells = "fixed_width_left", fast
            else:
                left, cells = parse_fixed(body_b, lines_b[0], len(names), left_justify)
                layout = "fixed_width_left" if left else "fixed_width_right"
        else:
            layout, cells = "whitespace", parse_tokens(body, n)
    except NotTabular:
        return _text_table(_decode(lines_b))

    if names is None:
        names = [f"col{i}" for i in range(len(cells))]
    if not body_b:
        return _empty_table(names, layout=layout)
    return _build_table(names, cells, layout)


def _decode(lines: list[bytes]) -> list[str]:
    return [line.decode("utf-8", "replace") for line in lines]


def write_parquet(table: pa.Table, path: str | os.PathLike[str]) -> None:
    """Write ``table`` to Parquet, atomically.

    Example: ``write_parquet(parse_report("leo.txt"), "leo.parquet")``

    The file is written beside its destination and renamed into place, so a
    crashed or killed sweep worker never leaves a truncated Parquet file that a
    later reader would trust.  Schema and field metadata (time scales, the
    tabular flag) are kept, and so are column statistics (a dataset filter
    skips whole runs with them).  Tables of at least ``COMPRESS_ROWS`` rows are
    zstd-compressed (snappy if zstd is unavailable) and dictionary-encoded;
    smaller ones are neither: on a few kilobytes both save little and cost
    more than the rest of the write, once per run of a sweep.
    """
    compression = "none"
    large = table.num_rows >= COMPRESS_ROWS
    if large:
        compression = "zstd" if pa.Codec.is_available("zstd") else "snappy"
    # Encoding in memory and writing the bytes with one call is several times faster for the small files of a
    # sweep than letting Arrow open the path through its filesystem layer.
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=compression, use_dictionary=large)
    write_bytes(path, sink.getvalue())


# --------------------------------------------------------------------------
# tables


def _schema_metadata(tabular: bool, layout: str) -> dict[bytes, bytes]:
    return {TABULAR_KEY: b"true" if tabular else b"false", LAYOUT_KEY: layout.encode()}


def _build_table(names: list[str], cells: list[pa.Array], layout: str) -> pa.Table:
    unique = dedupe(names)
    fields, arrays = [], []
    for original, name, col in zip(names, unique, cells, strict=True):
        field, array = type_column(original, name, col)
        fields.append(field)
        arrays.append(array)
    schema = pa.schema(fields, metadata=_schema_metadata(True, layout))
    return pa.Table.from_arrays(arrays, schema=schema)


def _empty_table(names: list[str], *, layout: str) -> pa.Table:
    """Zero rows, columns typed by name alone: epochs by suffix, the rest float64."""
    fields = []
    for original, name in zip(names, dedupe(names), strict=True):
        kind = epoch_kind(original)
        fields.append(epoch_field(name, *kind) if kind else pa.field(name, pa.float64()))
    return pa.schema(fields, metadata=_schema_metadata(True, layout)).empty_table()


def _text_table(lines: list[str]) -> pa.Table:
    schema = pa.schema([pa.field(TEXT_COLUMN, pa.string())], metadata=_schema_metadata(False, "text"))
    return pa.Table.from_arrays([pa.array([line.rstrip() for line in lines], pa.string())], schema=schema)
