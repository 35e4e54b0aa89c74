"""CCSDS Orbit Ephemeris Message (OEM, KVN text) -> the ephemeris table.

GMAT writes one or more ``META_START``/``META_STOP`` blocks, each followed by data lines of an ISO epoch and
six numbers (km, km/s). A file cut off mid-line keeps the complete lines before the cut, with a warning.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from . import ephemeris


def read_oem(path: str) -> tuple[pa.Table, list[str]]:
    """Read a CCSDS-OEM file.

    >>> tbl, warnings = read_oem("runs/0/OEM.oem"); tbl.column_names
    ['time', 'X', 'Y', 'Z', 'VX', 'VY', 'VZ']
    """
    meta: dict[str, str] = {"format": "CCSDS-OEM"}
    epochs: list[str] = []
    rows: list[list[float]] = []
    warnings: list[str] = []
    in_meta = in_covariance = False
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = handle.read().splitlines()
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("COMMENT"):
            continue
        if line == "META_START":
            in_meta = True
            continue
        if line == "META_STOP":
            in_meta = False
            continue
        if line in ("COVARIANCE_START", "COVARIANCE_STOP"):
            in_covariance = line == "COVARIANCE_START"
            continue
        if in_meta:
            key, _, value = line.partition("=")
            _take_meta(meta, key.strip(), value.strip())
            continue
        if in_covariance or "=" in line:
            continue  # the header's version, creation date and originator
        cells = line.split()
        try:
            values = [float(c) for c in cells[1:7]]
        except ValueError:
            values = []
        if len(values) != 6 or len(cells) not in (7, 10):
            warnings.append(f"{path}: line {number} is incomplete ({line[:60]!r}); the ephemeris is truncated, "
                            f"{len(rows)} states read")
            meta["truncated"] = "true"
            break
        epochs.append(cells[0])
        rows.append(values)
    times = np.array([e.rstrip("Z") for e in epochs], dtype="datetime64[us]")
    return ephemeris.table(times, np.array(rows, dtype=np.float64).reshape(-1, 6), meta), warnings


def _take_meta(meta: dict[str, str], key: str, value: str) -> None:
    names = {"OBJECT_NAME": "object", "CENTER_NAME": "central_body", "REF_FRAME": "frame",
             "TIME_SYSTEM": "time_system"}
    if key in names:
        previous = meta.get(names[key])
        # Segments normally share these; a file that changes them mid-way says so in the metadata.
        meta[names[key]] = value if previous in (None, value) else f"{previous},{value}"
