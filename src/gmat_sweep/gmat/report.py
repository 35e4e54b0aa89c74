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
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..atomic import write_bytes

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
TIME_SCALE_KEY = b"gmat_sweep.time_scale"
#: Field metadata key on epoch columns: ``Gregorian`` or ``ModJulian``.
EPOCH_FORMAT_KEY = b"gmat_sweep.epoch_format"
#: Name of the single column of the non-tabular fallback table.
TEXT_COLUMN = "text"
#: Reports of at least this many rows are written compressed (see ``write_parquet``).
COMPRESS_ROWS = 1000
#: GMAT's ModJulian zero: JD 2430000.0 (not the usual MJD zero of JD 2400000.5).
GMAT_MJD_EPOCH = np.datetime64("1941-01-05T12:00:00", "us")

_GREG = r"\d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2}\.\d{3}"
_GREG_LEN = 24
_GREG_SEARCH = re.compile(_GREG)
_GREG_GLUED = re.compile(rf"(?<=\S){_GREG}|{_GREG}(?=\S)")
# Tokens: a Gregorian epoch is one token; anything else is a whitespace-free
# run, cut short where an epoch begins (without a header GMAT glues values to
# a 24-byte epoch: "-1.5e-12301 Jan 2026 ..." and "...28.00031041.99").
_TOKEN_BYTES = re.compile(rf"{_GREG}|\S+?(?={_GREG}|\s|$)".encode())
# The fast equivalent for whole files: replace the spaces inside each epoch by
# NUL and put a space on both sides of it, then split on whitespace.
_GREG_PARTS = re.compile(r"(\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}:\d{2}:\d{2}\.\d{3})")
_GREG_PROTECT = "\\1\x00\\2\x00\\3\x00\\4"
_GREG_ISOLATE = f" {_GREG_PROTECT} "
_HEADER_TOKEN = re.compile(rb"\S+")
_NOT_PRINTABLE = re.compile(rb"[^\x20-\x7e\n]")
_HEADER_SPLIT = re.compile(r"[\s,;|]+")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBER = {name: number for number, name in enumerate(_MONTHS, 1)}
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_GREG_EXACT = rf"[0-9]{{2}} (?:{'|'.join(_MONTHS)}) [0-9]{{4}} [0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}\.[0-9]{{3}}"
_GREG_COLUMN = re.compile(rf"(?:{_GREG_EXACT}\n)*{_GREG_EXACT}")  # cells joined by newlines, each exactly an epoch
_GREG_DAYS: dict[str, int] = {}  # "01 Jan 2026" -> days since 1970
# Below this many rows a Python loop parses Gregorian epochs faster than numpy.
_GREG_VECTOR_ROWS = 512
_MONTH_KEYS = np.array([(ord(m[0]) << 16) | (ord(m[1]) << 8) | ord(m[2]) for m in _MONTHS])
_MONTH_ORDER = np.argsort(_MONTH_KEYS)
_MONTH_SORTED = _MONTH_KEYS[_MONTH_ORDER]
# The byte layout of "01 Jan 2026 12:00:00.000": where the digits and separators are, and what each digit is worth
# in (day, year, hour, minute, second, millisecond).
_GREG_FILLER = "01 Jan 2000 00:00:00.000"
_GREG_DIGITS = [0, 1, 7, 8, 9, 10, 12, 13, 15, 16, 18, 19, 21, 22, 23]
_GREG_SEPARATORS = [2, 6, 11, 14, 17, 20]
_GREG_SEPARATOR_BYTES = np.frombuffer(b"  ::.", np.uint8)[[0, 0, 1, 2, 3, 4]]
_GREG_PLACES = np.array([[10 ** (len(field) - 1 - field.index(p)) if p in field else 0 for field in
                          [(0, 1), (7, 8, 9, 10), (12, 13), (15, 16), (18, 19), (21, 22, 23)]] for p in _GREG_DIGITS])
# Delimiters worth guessing when the caller gives no hint (GMAT accepts any
# character, but these are the ones people use).
_DELIMITER_CANDIDATES = ("\t", ",", ";", "|")
# How far (bytes) the data of a column may drift from its header anchor.
_DRIFT_BEHIND = 3
_DRIFT_AHEAD = 8
_GUTTER = 3  # GMAT pads every header-mode cell with at least 3 spaces
_BLANK = 32  # bytes <= space count as blank in the fixed-width grid


def _header_key(line: bytes) -> list[bytes]:
    """A header line's names, whatever separates them (padding, a delimiter), for spotting repeats."""
    return [token for token in re.split(rb"[\s,;]+", line.strip()) if token]


class _NotTabular(Exception):
    """Raised internally when a parsing method cannot reconcile the rows."""


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
    has_header = header if header is not None else _looks_like_header(first, names_hint)

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

    delim = _resolve_delimiter(first if has_header else None, body, fixed_width, delimiter)
    names: list[str] | None = _split_header(first, delim) if has_header else names_hint
    n = len(names) if names is not None else None

    try:
        if delim is not None:
            layout = "delimited"
            try:
                cells = _parse_delimited(body, delim, n)
            except _NotTabular:
                if delim != " ":
                    raise
                layout, cells = "whitespace", _parse_tokens(body, n)
        elif has_header:
            assert names is not None
            fast = None if left_justify is False else _cut_at_header(body_b, lines_b[0], len(names))
            if fast is not None:
                layout, cells = "fixed_width_left", fast
            else:
                left, cells = _parse_fixed(body_b, lines_b[0], len(names), left_justify)
                layout = "fixed_width_left" if left else "fixed_width_right"
        else:
            layout, cells = "whitespace", _parse_tokens(body, n)
    except _NotTabular:
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
# layout detection


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _looks_like_header(line: str, names_hint: list[str] | None) -> bool:
    """Guess whether the first line is a header: names, never numbers or epochs.

    A row made only of non-numeric strings is indistinguishable from a header;
    it is taken as one (GMAT's default is WriteHeaders = true) unless the
    caller says ``header=False``.
    """
    stripped = line.strip()
    if names_hint is not None:
        if stripped.split() == names_hint:
            return True
        if any(_split_outside_parens(stripped, d) == names_hint for d in _DELIMITER_CANDIDATES):
            return True
    if _GREG_SEARCH.search(stripped):
        return False
    tokens = [t for t in _HEADER_SPLIT.split(stripped) if t]
    return bool(tokens) and not any(_is_float(t) for t in tokens)


def _resolve_delimiter(
    header_line: str | None,
    body: list[str],
    fixed_width: bool | None,
    delimiter: str | None,
) -> str | None:
    """Return the delimiter for a delimited file, or ``None`` for fixed width.

    ``" "`` means single-space delimited (``FixedWidth = false`` with GMAT's
    default delimiter).  Without hints: a delimited header decides; rows
    showing the >= 3-space gutter of fixed-width output are fixed width;
    otherwise a delimiter that every data row has equally often is used, and
    failing that a single space if no row shows any padding.  (So without
    hints an empty String cell in a space-delimited file reads as padding.)
    """
    if fixed_width is True:
        return None
    header_names = None
    if header_line is not None:
        header_names = _split_header(header_line, None)
    if fixed_width is False:
        if delimiter:
            return delimiter
        return _header_delimiter(header_line) or _body_delimiter(body, None) or " "
    # fixed_width unknown
    if delimiter and not delimiter.isspace():
        if _header_delimiter(header_line, (delimiter,)):
            return delimiter
        if body and _consistent_count(body, delimiter, len(header_names) if header_names else None):
            return delimiter
    guess = _header_delimiter(header_line)
    if guess is not None:
        return guess
    if not body or any("   " in line.strip() for line in body):
        return None
    guess = _body_delimiter(body, header_names)
    if guess is None and (header_names is None or len(header_names) > 1) and not _padded(body):
        return " "
    return guess


def _padded(lines: list[str]) -> bool:
    """Fixed-width traits, never seen with a space delimiter.

    Double, leading or trailing spaces are padding, and an epoch touching its
    neighbour is a 24-byte value in a narrower fixed-width cell.
    """
    if any("  " in line or line[:1] == " " or line[-1:] == " " for line in lines):
        return True
    return _GREG_GLUED.search("\n".join(lines)) is not None


def _header_delimiter(header_line: str | None, candidates: Sequence[str] = _DELIMITER_CANDIDATES) -> str | None:
    """The delimiter of a delimited header: names never contain spaces, a padded header does."""
    if header_line is None:
        return None
    stripped = header_line.strip()
    if "\t" in candidates and "\t" in stripped and " " not in stripped:
        return "\t"  # GMAT pads fixed-width output with spaces, never tabs
    if _has_space(stripped):
        return None
    for cand in candidates:
        if len(_split_outside_parens(stripped, cand)) > 1:
            return cand
    return None


def _body_delimiter(body: list[str], header_names: list[str] | None) -> str | None:
    n = len(header_names) if header_names and len(header_names) > 1 else None
    for cand in _DELIMITER_CANDIDATES:
        if body and _consistent_count(body, cand, n):
            return cand
    return None


def _has_space(text: str) -> bool:
    return any(ch.isspace() for ch in text)


def _consistent_count(lines: list[str], delim: str, n: int | None) -> bool:
    counts = {line.count(delim) for line in lines}
    if len(counts) != 1:
        return False
    count = counts.pop()
    return count >= 1 and (n is None or count == n - 1)


def _split_outside_parens(text: str, delim: str) -> list[str]:
    """Split ``text`` on ``delim`` except inside parentheses (``A(1,2)``)."""
    if delim not in text:
        return [text]
    parts: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(depth - 1, 0)
        elif ch == delim and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _split_header(line: str, delim: str | None) -> list[str]:
    """Header names: delimited if the header has no spaces, else whitespace separated.

    GMAT parameter names never contain spaces, and a padded header (written
    by the Report command even above delimited data) always does.
    """
    stripped = line.strip()
    if delim and not delim.isspace() and not _has_space(stripped):
        return [part.strip() for part in _split_outside_parens(stripped, delim)]
    return stripped.split()


# --------------------------------------------------------------------------
# row parsers: each returns one pyarrow string array per column


def _protect_epochs(lines: list[str], replacement: str) -> list[str]:
    """One regex pass over the whole text rather than one per line (3x faster)."""
    return _GREG_PARTS.sub(replacement, "\n".join(lines)).split("\n")


def _restore_epochs(cols: list[pa.Array]) -> list[pa.Array]:
    return [pc.replace_substring(col, "\x00", " ") for col in cols]


def _parse_tokens(lines: list[str], n: int | None) -> list[pa.Array]:
    """Whitespace tokens with Gregorian epochs kept whole; every row must agree."""
    rows = [line.split() for line in _protect_epochs(lines, _GREG_ISOLATE)]
    return _restore_epochs(_columns_from_rows(rows, n))


def _parse_delimited(lines: list[str], delim: str, n: int | None) -> list[pa.Array]:
    if delim == " ":
        rows = [line.split(" ") for line in _protect_epochs(lines, _GREG_PROTECT)]
        return _restore_epochs(_columns_from_rows(rows, n))
    return _columns_from_rows([line.split(delim) for line in lines], n)


def _columns_from_rows(rows: list[list[str]], n: int | None) -> list[pa.Array]:
    if not rows:
        return [pa.array([], pa.string()) for _ in range(n or 0)]
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise _NotTabular(f"rows have {sorted(widths)} fields")
    width = widths.pop()
    if n is not None and width != n:
        raise _NotTabular(f"rows have {width} fields, expected {n}")
    return [pc.utf8_trim_whitespace(pa.array(col, pa.string())) for col in zip(*rows)]


def _cut_at_header(body: list[bytes], header: bytes, n: int) -> list[pa.Array] | None:
    """The ReportFile resource's own layout in one pass, or ``None`` to leave the file to :func:`_parse_fixed`.

    A left-justified ReportFile puts every value exactly where its header name starts, after GMAT's 3-space
    gutter. When every cell of every row is like that (printable ASCII, not empty, no gap inside) the cuts are
    the header's own positions and the general search would find the same ones, at a tenth of the cost: this is
    the layout nearly every run of a sweep writes.
    """
    starts = [m.start() for m in _HEADER_TOKEN.finditer(header)]
    if len(starts) != n or not body or starts[0] != 0 or _NOT_PRINTABLE.search(b"\n".join(body)):
        return None
    columns = []
    for lo, hi in zip(starts, [*starts[1:], None], strict=True):
        cells = [row[lo:hi] for row in body]
        if hi is not None and not all(cell.endswith(b"   ") for cell in cells):
            return None  # a value reaches into the gutter: left to the general search
        values = [cell.rstrip(b" ") for cell in cells]
        joined = b"\n".join(values)
        if not all(values) or joined[:1] == b" " or b"\n " in joined or b"   " in joined:
            return None  # an empty cell, a value off its column or two values in one cell
        columns.append(pa.array(joined.decode("ascii").split("\n"), pa.string()))
    return columns


def _parse_fixed(
    body: list[bytes], header: bytes, n: int, left_justify: bool | None
) -> tuple[bool, list[pa.Array]]:
    """Cut fixed-width rows at column positions found from the header and the data.

    Works on the raw bytes because GMAT pads with ``setw``, which counts bytes
    (a UTF-8 string cell is wider in bytes than in characters).  Returns
    ``(left_justified, columns)``.
    """
    spans = [(m.start(), m.end()) for m in _HEADER_TOKEN.finditer(header)]
    if len(spans) != n:
        raise _NotTabular("header tokens do not match the column names")
    if not body:
        return left_justify is not False, [pa.array([], pa.string()) for _ in range(n)]

    rows = len(body)
    width = max(max(len(line) for line in body), spans[-1][1]) + _GUTTER + 1
    grid = np.frombuffer(b"".join(line.ljust(width) for line in body), np.uint8)
    grid = grid.reshape(rows, width)
    filled = grid > _BLANK
    blank = ~filled
    before = np.zeros_like(filled)
    before[:, 1:] = filled[:, :-1]
    starts = filled & ~before  # a token starts at p
    ends = before & blank  # a token ends just before p
    # A true cell edge has GMAT's >= 3-space gutter on its outer side; a space
    # inside an epoch or a String value is a single one.
    pad = np.ones((rows, _GUTTER), dtype=bool)
    blank_l = np.concatenate([pad, blank], axis=1)
    blank_r = np.concatenate([blank, pad], axis=1)
    gutter_before = np.logical_and.reduce([blank_l[:, k : k + width] for k in range(_GUTTER)])
    gutter_after = np.logical_and.reduce([blank_r[:, k : k + width] for k in range(_GUTTER)])
    left_score = (starts & gutter_before).sum(axis=0)
    right_score = (ends & gutter_after).sum(axis=0)

    left_pos = _align([s for s, _ in spans], left_score)
    right_pos = _align([e for _, e in spans], right_score)
    if left_justify is None:
        lsum = int(left_score[left_pos].sum())
        rsum = int(right_score[right_pos].sum())
        left = lsum > rsum or (lsum == rsum and not header[:1].isspace())
    else:
        left = left_justify

    if left:
        anchors = left_pos
        bounds = [0, *left_pos[1:], width]
        edge = starts
    else:
        anchors = right_pos
        bounds = [0, *right_pos[:-1], width]
        edge = ends

    counts = np.zeros((rows, width + 1), dtype=np.int32)
    np.cumsum(filled, axis=1, out=counts[:, 1:])
    gaps = np.zeros((rows, width + 1), dtype=np.int32)
    np.cumsum(gutter_after, axis=1, out=gaps[:, 1:])
    row_index = np.arange(rows)
    bad = np.zeros(rows, dtype=bool)
    for i in range(n):
        lo, hi = bounds[i], bounds[i + 1]
        if hi <= lo:
            raise _NotTabular("column positions collapsed")
        if i > 0:
            bad |= filled[:, lo - 1] & filled[:, lo]  # a token straddles the cut
        nonempty = counts[:, hi] > counts[:, lo]
        bad |= nonempty & ~edge[:, anchors[i]]
        # Two values in one cell show up as a >= 3-space gap inside it.
        cell = filled[:, lo:hi]
        first = lo + np.argmax(cell, axis=1)
        last = hi - 1 - np.argmax(cell[:, ::-1], axis=1)
        inner = gaps[row_index, np.maximum(last - _GUTTER + 1, first + 1)] - gaps[row_index, first + 1]
        bad |= nonempty & (last - first > _GUTTER) & (inner > 0)

    cols = []
    for i in range(n):
        lo, hi = bounds[i], bounds[i + 1]
        cell = np.ascontiguousarray(grid[:, lo:hi]).view(f"S{hi - lo}").ravel()
        cols.append(_decode_cells(cell))

    if bad.any():
        # Rows where a value overflowed its cell and shifted the rest of the
        # row (GMAT never truncates).  Take their tokens in order, but only if
        # each token still overlaps its own column: an empty String cell next
        # to a String with a space would otherwise shift values silently.
        patched = [col.to_pylist() for col in cols]
        for r in np.flatnonzero(bad):
            tokens = list(_TOKEN_BYTES.finditer(body[r]))
            if len(tokens) != n:
                raise _NotTabular(f"data row {r} does not fit the header columns")
            for i, token in enumerate(tokens):
                if token.start() >= bounds[i + 1] or token.end() <= bounds[i]:
                    raise _NotTabular(f"data row {r}: a value is outside its column")
                patched[i][r] = token.group().decode("utf-8", "replace")
        cols = [pa.array(col, pa.string()) for col in patched]
    return left, cols


def _align(anchors: list[int], score: np.ndarray) -> list[int]:
    """Find each column's real edge near its header anchor, carrying the drift.

    The Report command's header is a few bytes narrower than its data (one
    byte per Gregorian column, three more when right-justified), so the offset
    accumulates from left to right.  Each edge is searched in a small window
    after the previous edge; the best-scoring position wins, ties go to the
    position closest to the expected one.
    """
    out: list[int] = []
    drift = 0
    prev = -1
    size = len(score)
    for i, anchor in enumerate(anchors):
        expected = anchor + drift
        lo = max(prev + 1, expected - _DRIFT_BEHIND, 0)
        hi = expected + _DRIFT_AHEAD
        if i + 1 < len(anchors):
            hi = min(hi, anchors[i + 1] + drift - 1)
        hi = min(hi, size - 1)
        if hi < lo:
            pos = min(max(expected, lo), size - 1)
        else:
            window = score[lo : hi + 1]
            best = window.max()
            if best == 0:
                pos = min(max(expected, lo), hi)
            else:
                candidates = np.flatnonzero(window == best) + lo
                pos = int(candidates[np.argmin(np.abs(candidates - expected))])
        out.append(pos)
        drift = pos - anchor
        prev = pos
    return out


def _decode_cells(cells: np.ndarray) -> pa.Array:
    """Fixed-width byte cells to trimmed UTF-8 strings (invalid bytes replaced)."""
    binary = pa.array(cells, pa.binary())
    try:
        text = binary.cast(pa.string())
    except pa.ArrowInvalid:
        text = pa.array([c.decode("utf-8", "replace") for c in cells.tolist()], pa.string())
    return pc.utf8_trim_whitespace(text)


# --------------------------------------------------------------------------
# typing


def _epoch_kind(name: str) -> tuple[str, str] | None:
    """``("Gregorian" | "ModJulian", time_scale)`` for an epoch-named column."""
    for fmt in ("Gregorian", "ModJulian"):
        if name.endswith(fmt):
            return fmt, name.rsplit(".", 1)[-1][: -len(fmt)]
    return None


def _epoch_field(name: str, fmt: str, scale: str) -> pa.Field:
    unit = "ms" if fmt == "Gregorian" else "us"
    meta = {EPOCH_FORMAT_KEY: fmt.encode()}
    if scale:
        meta = {TIME_SCALE_KEY: scale.encode(), **meta}
    return pa.field(name, pa.timestamp(unit), metadata=meta)


def _dedupe(names: list[str]) -> list[str]:
    """Make names unique the way pandas does: ``x``, ``x.1``, ``x.2``..."""
    used: set[str] = set()
    seen: dict[str, int] = {}
    out = []
    for name in names:
        candidate = name
        if candidate in used:
            k = seen.get(name, 0)
            while candidate in used:
                k += 1
                candidate = f"{name}.{k}"
            seen[name] = k
        used.add(candidate)
        out.append(candidate)
    return out


def _type_column(original: str, name: str, cells: pa.Array) -> tuple[pa.Field, pa.Array]:
    kind = _epoch_kind(original)
    if kind is None:
        # Most columns are numbers in every row: one cast settles them (an empty cell makes it fail).
        try:
            return pa.field(name, pa.float64()), pc.cast(cells, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    elif kind[0] == "Gregorian" and not cells.null_count:
        # A sweep's usual epoch column, every cell an epoch, without the compute calls below (a blank cell fails
        # this parse and is then handled there).
        stamps = _parse_gregorian(cells)
        if stamps is not None:
            return _epoch_field(name, *kind), stamps
    nonempty = pc.not_equal(cells, "")
    if not pc.any(nonempty).as_py():
        if kind is not None:
            field = _epoch_field(name, *kind)
            return field, pa.nulls(len(cells), field.type)
        return pa.field(name, pa.string()), cells
    if kind is not None:
        fmt, scale = kind
        if fmt == "Gregorian":
            stamps = _parse_gregorian(cells, nonempty)
        else:
            numbers = _parse_floats(cells, nonempty)
            stamps = None if numbers is None else _modjulian_to_timestamp(numbers)
        if stamps is not None:
            return _epoch_field(name, fmt, scale), stamps
    numbers = _parse_floats(cells, nonempty)
    if numbers is not None:
        return pa.field(name, pa.float64()), numbers
    return pa.field(name, pa.string()), cells


def _parse_floats(cells: pa.Array, nonempty: pa.Array) -> pa.Array | None:
    """float64 if every non-empty cell is a number, else ``None``; blanks become null."""
    values = pc.if_else(nonempty, cells, pa.scalar(None, pa.string()))
    try:
        return pc.cast(values, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # Spellings of nan/inf from other C runtimes ("-nan(ind)", "1.#QNAN", "1.#INF").
    values = pc.replace_substring_regex(
        values, r"(?i)^([+-]?)(?:nan\(\w*\)|1\.#(?:QNAN|SNAN|IND)\d*)$", r"\1nan"
    )
    values = pc.replace_substring_regex(values, r"(?i)^([+-]?)1\.#INF\d*$", r"\1inf")
    try:
        return pc.cast(values, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _parse_gregorian(cells: pa.Array, nonempty: pa.Array | None = None) -> pa.Array | None:
    """``DD Mon YYYY HH:MM:SS.mmm`` to timestamp[ms].

    Hand-rolled on GMAT's fixed layout instead of strptime: it is locale
    independent (GMAT always writes English month names) and rejects anything
    that is not exactly GMAT's format.  Returns ``None`` if any non-empty cell
    is not an epoch or names an impossible date.  ``nonempty`` marks the cells
    to parse (the others become null); ``None`` means every cell.

    Two implementations that agree on every input (a test checks): a loop for
    the short reports a sweep writes once per run, and a vectorised one for
    long reports.  The loop is the faster below a few hundred rows, more so
    right after a GMAT run, when the CPU caches hold none of numpy's code.
    """
    if len(cells) < _GREG_VECTOR_ROWS:
        return _parse_gregorian_rows(cells.to_pylist(), None if nonempty is None else nonempty.to_pylist())
    return _parse_gregorian_vector(cells, nonempty)


def _parse_gregorian_rows(texts: list[str], keep: list[bool] | None) -> pa.Array | None:
    kept = texts if keep is None else [text for text, k in zip(texts, keep, strict=True) if k]
    # One regex pass over the joined cells checks that each is exactly GMAT's layout (each is 24 characters long,
    # so none can shift against the pattern); the fields are then at fixed offsets.
    if kept and (any(len(text) != _GREG_LEN for text in kept) or not _GREG_COLUMN.fullmatch("\n".join(kept))):
        return None
    stamps: list[int | None] = []
    for i, text in enumerate(texts):
        if keep is not None and not keep[i]:
            stamps.append(None)
            continue
        days = _GREG_DAYS.get(text[:11])
        if days is None:
            days = _civil_days(int(text[7:11]), _MONTH_NUMBER[text[3:6]], int(text[:2]))
            if days is None:
                return None
            if len(_GREG_DAYS) < 4096:  # a sweep's reports share a few dates; keep the memo small
                _GREG_DAYS[text[:11]] = days
        hours, minutes, seconds = int(text[12:14]), int(text[15:17]), int(text[18:20])
        if hours > 23 or minutes > 59 or seconds > 60:
            return None
        stamps.append(days * 86_400_000 + ((hours * 60 + minutes) * 60 + seconds) * 1000 + int(text[21:24]))
    return pa.array(stamps, pa.timestamp("ms"))


def _civil_days(year: int, month: int, day: int) -> int | None:
    """Days from 1970-01-01 to a proleptic Gregorian date (numpy's calendar), ``None`` for an impossible one."""
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= day <= _MONTH_DAYS[month - 1] + (month == 2 and leap):
        return None
    y = year - (month <= 2)
    era = y // 400
    year_of_era = y - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _parse_gregorian_vector(cells: pa.Array, nonempty: pa.Array | None = None) -> pa.Array | None:
    texts = cells.to_pylist()
    mask = None
    if nonempty is not None and nonempty.false_count:
        mask = ~np.asarray(nonempty.to_numpy(zero_copy_only=False), dtype=bool)
        texts = [text if keep else _GREG_FILLER for text, keep in zip(texts, ~mask, strict=True)]
    if any(len(text) != _GREG_LEN for text in texts):
        return None
    try:
        raw = "".join(texts).encode("ascii")
    except UnicodeEncodeError:
        return None
    g = np.frombuffer(raw, np.uint8).reshape(-1, _GREG_LEN)
    digits = g[:, _GREG_DIGITS].astype(np.int64) - 48
    if (digits < 0).any() or (digits > 9).any() or (g[:, _GREG_SEPARATORS] != _GREG_SEPARATOR_BYTES).any():
        return None
    key = (g[:, 3].astype(np.int64) << 16) | (g[:, 4].astype(np.int64) << 8) | g[:, 5]
    slot = np.clip(np.searchsorted(_MONTH_SORTED, key), 0, 11)
    if not np.all(_MONTH_SORTED[slot] == key):
        return None
    day, year, hour, minute, second, milli = (digits @ _GREG_PLACES).T
    if (day < 1).any() or (hour > 23).any() or (minute > 59).any() or (second > 60).any():
        return None
    months = ((year - 1970) * 12 + _MONTH_ORDER[slot]).astype("datetime64[M]")
    dates = months.astype("datetime64[D]") + (day - 1).astype("timedelta64[D]")
    if not np.all(dates.astype("datetime64[M]") == months):
        return None  # e.g. 31 Feb
    offset = ((hour * 60 + minute) * 60 + second) * 1000 + milli
    stamps = dates.astype("datetime64[ms]") + offset.astype("timedelta64[ms]")
    return pa.array(stamps, pa.timestamp("ms"), mask=mask)


def _modjulian_to_timestamp(days: pa.Array) -> pa.Array | None:
    """GMAT ModJulian days (from JD 2430000.0) to timestamp[us], rounded to 1 us.

    Done in float64 days * 86400e6 then rounded to int64: at today's epochs
    that product is ~2.7e15, exact to well under a microsecond, and the 16
    significant digits GMAT prints carry ~1 us anyway.  Non-finite or null
    days become null.
    """
    values = days.to_numpy(zero_copy_only=False).astype(np.float64)
    good = np.isfinite(values) & (np.abs(values) < 1e8)
    micros = np.rint(np.where(good, values, 0.0) * 86400e6).astype(np.int64)
    stamps = GMAT_MJD_EPOCH + micros.astype("timedelta64[us]")
    return pa.array(stamps, pa.timestamp("us"), mask=~good)


# --------------------------------------------------------------------------
# tables


def _schema_metadata(tabular: bool, layout: str) -> dict[bytes, bytes]:
    return {TABULAR_KEY: b"true" if tabular else b"false", LAYOUT_KEY: layout.encode()}


def _build_table(names: list[str], cells: list[pa.Array], layout: str) -> pa.Table:
    unique = _dedupe(names)
    fields, arrays = [], []
    for original, name, col in zip(names, unique, cells, strict=True):
        field, array = _type_column(original, name, col)
        fields.append(field)
        arrays.append(array)
    schema = pa.schema(fields, metadata=_schema_metadata(True, layout))
    return pa.Table.from_arrays(arrays, schema=schema)


def _empty_table(names: list[str], *, layout: str) -> pa.Table:
    """Zero rows, columns typed by name alone: epochs by suffix, the rest float64."""
    fields = []
    for original, name in zip(names, _dedupe(names), strict=True):
        kind = _epoch_kind(original)
        fields.append(_epoch_field(name, *kind) if kind else pa.field(name, pa.float64()))
    return pa.schema(fields, metadata=_schema_metadata(True, layout)).empty_table()


def _text_table(lines: list[str]) -> pa.Table:
    schema = pa.schema([pa.field(TEXT_COLUMN, pa.string())], metadata=_schema_metadata(False, "text"))
    return pa.Table.from_arrays([pa.array([line.rstrip() for line in lines], pa.string())], schema=schema)
