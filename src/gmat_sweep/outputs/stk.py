"""STK ephemeris (``.e``, ``EphemerisTimePosVel``) -> the ephemeris table.

Epochs are seconds from the header's ``ScenarioEpoch`` (GMAT writes it as a UTC Gregorian date); distances are in
the header's ``DistanceUnit`` (kilometres or metres), converted to km and km/s.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import pyarrow as pa

from . import ephemeris

_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                       "Dec"), 1)}


def read_stk(path: str) -> tuple[pa.Table, list[str]]:
    """Read an STK-TimePosVel ``.e`` file.

    >>> tbl, warnings = read_stk("runs/0/STK.e"); tbl.schema.metadata[b"gmat_sweep.frame"]
    b'J2000'
    """
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = handle.read().splitlines()
    header: dict[str, str] = {}
    offsets: list[float] = []
    rows: list[list[float]] = []
    warnings: list[str] = []
    in_data = ended = False
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("END Ephemeris"):
            ended = True
            break
        if not in_data:
            if line.startswith("EphemerisTimePosVel"):
                in_data = True
            else:
                key, _, value = line.partition(" ")
                header[key] = value.strip()
            continue
        cells = line.split()
        try:
            values = [float(c) for c in cells]
        except ValueError:
            values = []
        if len(values) != 7:
            warnings.append(f"{path}: line {number} is incomplete ({line[:60]!r}); the ephemeris is truncated, "
                            f"{len(rows)} states read")
            break
        offsets.append(values[0])
        rows.append(values[1:])
    meta = {"format": "STK-TimePosVel", "central_body": header.get("CentralBody"),
            "frame": header.get("CoordinateSystem"), "time_system": "UTC"}
    if in_data and not ended and not warnings:
        warnings.append(f"{path}: no 'END Ephemeris' line; the ephemeris is truncated, {len(rows)} states read")
    if warnings:
        meta["truncated"] = "true"
    states = np.array(rows, dtype=np.float64).reshape(-1, 6)
    if header.get("DistanceUnit", "Meters").lower().startswith("meter"):
        states = states / 1000.0  # STK's default unit is the metre
    epoch = _scenario_epoch(header.get("ScenarioEpoch", ""))
    micros = np.rint(np.array(offsets, dtype=np.float64) * 1e6).astype(np.int64)
    times = np.datetime64(epoch, "us") + micros.astype("timedelta64[us]")
    return ephemeris.table(times, states, meta), warnings


def _scenario_epoch(text: str) -> _dt.datetime:
    """``01 Jan 2026 12:00:00.000`` -> datetime (no locale dependence, unlike strptime's %b)."""
    try:
        day, month, year, clock = text.split()
        hours, minutes, seconds = clock.split(":")
        whole, _, fraction = seconds.partition(".")
        micro = int((fraction + "000000")[:6])
        return _dt.datetime(int(year), _MONTHS[month[:3].title()], int(day), int(hours), int(minutes), int(whole),
                            micro)
    except (ValueError, KeyError):
        raise ephemeris.UnknownFormat(f"STK ephemeris with an unreadable ScenarioEpoch {text!r}") from None
