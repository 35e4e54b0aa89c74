"""Where a ReportFile's cells are: header or not, delimiters, the fixed-width grid (with the drift of Report-command
files), epochs glued to their neighbours. Returns each column's cells as text; ``columns`` types them."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_GREG = r"\d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2}\.\d{3}"
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
# Delimiters worth guessing when the caller gives no hint (GMAT accepts any
# character, but these are the ones people use).
_DELIMITER_CANDIDATES = ("\t", ",", ";", "|")
# How far (bytes) the data of a column may drift from its header anchor.
_DRIFT_BEHIND = 3
_DRIFT_AHEAD = 8
_GUTTER = 3  # GMAT pads every header-mode cell with at least 3 spaces
_BLANK = 32  # bytes <= space count as blank in the fixed-width grid


class NotTabular(Exception):
    """Raised internally when a parsing method cannot reconcile the rows."""



# --------------------------------------------------------------------------
# layout detection


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def looks_like_header(line: str, names_hint: list[str] | None) -> bool:
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


def resolve_delimiter(
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
        header_names = split_header(header_line, None)
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


def split_header(line: str, delim: str | None) -> list[str]:
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


def parse_tokens(lines: list[str], n: int | None) -> list[pa.Array]:
    """Whitespace tokens with Gregorian epochs kept whole; every row must agree."""
    rows = [line.split() for line in _protect_epochs(lines, _GREG_ISOLATE)]
    return _restore_epochs(_columns_from_rows(rows, n))


def parse_delimited(lines: list[str], delim: str, n: int | None) -> list[pa.Array]:
    if delim == " ":
        rows = [line.split(" ") for line in _protect_epochs(lines, _GREG_PROTECT)]
        return _restore_epochs(_columns_from_rows(rows, n))
    return _columns_from_rows([line.split(delim) for line in lines], n)


def _columns_from_rows(rows: list[list[str]], n: int | None) -> list[pa.Array]:
    if not rows:
        return [pa.array([], pa.string()) for _ in range(n or 0)]
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise NotTabular(f"rows have {sorted(widths)} fields")
    width = widths.pop()
    if n is not None and width != n:
        raise NotTabular(f"rows have {width} fields, expected {n}")
    return [pc.utf8_trim_whitespace(pa.array(col, pa.string())) for col in zip(*rows)]


def cut_at_header(body: list[bytes], header: bytes, n: int) -> list[pa.Array] | None:
    """The ReportFile resource's own layout in one pass, or ``None`` to leave the file to :func:`parse_fixed`.

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


def parse_fixed(
    body: list[bytes], header: bytes, n: int, left_justify: bool | None
) -> tuple[bool, list[pa.Array]]:
    """Cut fixed-width rows at column positions found from the header and the data.

    Works on the raw bytes because GMAT pads with ``setw``, which counts bytes
    (a UTF-8 string cell is wider in bytes than in characters).  Returns
    ``(left_justified, columns)``.
    """
    spans = [(m.start(), m.end()) for m in _HEADER_TOKEN.finditer(header)]
    if len(spans) != n:
        raise NotTabular("header tokens do not match the column names")
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
            raise NotTabular("column positions collapsed")
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
                raise NotTabular(f"data row {r} does not fit the header columns")
            for i, token in enumerate(tokens):
                if token.start() >= bounds[i + 1] or token.end() <= bounds[i]:
                    raise NotTabular(f"data row {r}: a value is outside its column")
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
