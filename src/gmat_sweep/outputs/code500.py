"""GSFC Code-500 ephemerides (binary) -> the ephemeris table.

The file is a sequence of 2800-byte records: two header records, then data records of 50 states each. A data
record starts with the date of its first state (``YYYMMDD``, years from 1900), its seconds of day and the step
between states in seconds, then the states in distance units of 10 000 km and time units of 864 s; unused slots
hold a sentinel (1e16). GMAT writes little-endian by default (``OutputFormat``), big-endian on request: the
header's time-system indicator (1 = A1, 2 = UTC) tells which.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import pyarrow as pa

from . import ephemeris

RECORD = 2800
STATES_PER_RECORD = 50
DUL_KM = 10000.0
DUL_PER_DUT_KM_S = 10000.0 / 864.0
SENTINEL = 1e15  # anything this large is the end-of-data sentinel, never a state in units of 10 000 km
_TIME_SYSTEMS = {1.0: "A1", 2.0: "UTC"}


def read_code500(path: str) -> tuple[pa.Table, list[str]]:
    """Read a Code-500 ephemeris.

    >>> tbl, warnings = read_code500("runs/0/EphC500.eph")
    """
    with open(path, "rb") as handle:
        data = handle.read()
    if len(data) < 2 * RECORD:
        raise ephemeris.UnknownFormat("Code-500 file shorter than its two header records")
    order = next((o for o in ("<", ">") if float(np.frombuffer(data, f"{o}f8", 1, 16)[0]) in _TIME_SYSTEMS), None)
    if order is None:
        raise ephemeris.UnknownFormat("Code-500 file whose time-system indicator is neither A1 nor UTC")
    time_system = _TIME_SYSTEMS[float(np.frombuffer(data, f"{order}f8", 1, 16)[0])]
    warnings: list[str] = []
    times: list[np.ndarray] = []
    states: list[np.ndarray] = []
    offset = 2 * RECORD
    while offset < len(data):
        if offset + RECORD > len(data):
            warnings.append(f"{path}: the last data record is cut short; the ephemeris is truncated")
            break
        head = np.frombuffer(data, f"{order}f8", 4 + 6 * STATES_PER_RECORD, offset)
        block = head[4:].reshape(STATES_PER_RECORD, 6)
        used = int(np.argmax(np.abs(block[:, 0]) >= SENTINEL)) if (np.abs(block[:, 0]) >= SENTINEL).any() \
            else STATES_PER_RECORD
        start = _start(head[0], head[2])
        steps = np.rint(np.arange(used) * head[3] * 1e6).astype(np.int64).astype("timedelta64[us]")
        times.append(start + steps)
        states.append(_to_km(block[:used]))
        offset += RECORD
        if used < STATES_PER_RECORD:
            break
    meta = {"format": "Code-500", "central_body": "Earth", "frame": "MJ2000Eq", "time_system": time_system}
    if warnings:
        meta["truncated"] = "true"
    return (ephemeris.table(np.concatenate(times) if times else np.zeros(0, "datetime64[us]"),
                            np.concatenate(states) if states else np.zeros((0, 6)), meta), warnings)


def _to_km(block: np.ndarray) -> np.ndarray:
    return np.hstack([block[:, :3] * DUL_KM, block[:, 3:] * DUL_PER_DUT_KM_S])


def _start(yyymmdd: float, seconds_of_day: float) -> np.datetime64:
    packed = int(round(yyymmdd))
    day = _dt.datetime(1900 + packed // 10000, packed // 100 % 100, packed % 100)
    return np.datetime64(day, "us") + np.timedelta64(int(round(seconds_of_day * 1e6)), "us")
