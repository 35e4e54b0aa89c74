"""A ReportFile column's type from its name and cells: epochs (Gregorian and ModJulian, with their time scale),
numbers, else text; and the fast Gregorian parsers behind the epochs."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TIME_SCALE_KEY = b"gmat_sweep.time_scale"
#: Field metadata key on epoch columns: ``Gregorian`` or ``ModJulian``.
EPOCH_FORMAT_KEY = b"gmat_sweep.epoch_format"
#: Name of the single column of the non-tabular fallback table.
#: GMAT's ModJulian zero: JD 2430000.0 (not the usual MJD zero of JD 2400000.5).
GMAT_MJD_EPOCH = np.datetime64("1941-01-05T12:00:00", "us")

_GREG_LEN = 24
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


# --------------------------------------------------------------------------
# typing


def epoch_kind(name: str) -> tuple[str, str] | None:
    """``("Gregorian" | "ModJulian", time_scale)`` for an epoch-named column."""
    for fmt in ("Gregorian", "ModJulian"):
        if name.endswith(fmt):
            return fmt, name.rsplit(".", 1)[-1][: -len(fmt)]
    return None


def epoch_field(name: str, fmt: str, scale: str) -> pa.Field:
    unit = "ms" if fmt == "Gregorian" else "us"
    meta = {EPOCH_FORMAT_KEY: fmt.encode()}
    if scale:
        meta = {TIME_SCALE_KEY: scale.encode(), **meta}
    return pa.field(name, pa.timestamp(unit), metadata=meta)


def dedupe(names: list[str]) -> list[str]:
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


def type_column(original: str, name: str, cells: pa.Array) -> tuple[pa.Field, pa.Array]:
    kind = epoch_kind(original)
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
            return epoch_field(name, *kind), stamps
    nonempty = pc.not_equal(cells, "")
    if not pc.any(nonempty).as_py():
        if kind is not None:
            field = epoch_field(name, *kind)
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
            return epoch_field(name, fmt, scale), stamps
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
        return parse_gregorian_rows(cells.to_pylist(), None if nonempty is None else nonempty.to_pylist())
    return parse_gregorian_vector(cells, nonempty)


def parse_gregorian_rows(texts: list[str], keep: list[bool] | None) -> pa.Array | None:
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


def parse_gregorian_vector(cells: pa.Array, nonempty: pa.Array | None = None) -> pa.Array | None:
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
