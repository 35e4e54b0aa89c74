"""The one table shape every ephemeris reader returns, and the dispatch from a file to its reader.

An ephemeris table has one row per state: ``time`` (timestamp[us], in the file's own time system), then ``X``,
``Y``, ``Z`` in km and ``VX``, ``VY``, ``VZ`` in km/s. What the numbers mean (frame, central body, time system,
format, spacecraft) travels in the schema metadata under ``gmat_sweep.*`` keys, so the Parquet file is
self-describing.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa

STATE_COLUMNS = ("X", "Y", "Z", "VX", "VY", "VZ")
META_PREFIX = "gmat_sweep."
#: The metadata keys an ephemeris table carries (without the ``gmat_sweep.`` prefix).
META_KEYS = ("format", "object", "central_body", "frame", "time_system", "truncated")


class UnknownFormat(ValueError):
    """The file is not an ephemeris format gmat-sweep reads; the message names what it found."""


def table(times: Sequence[_dt.datetime] | np.ndarray, states: np.ndarray, meta: Mapping[str, str]) -> pa.Table:
    """Build the typed ephemeris table from epochs (datetime64 or datetimes) and an ``(n, 6)`` km, km/s array.

    >>> table(np.array(["2026-01-01T12:00"], "datetime64[us]"), np.zeros((1, 6)), {"frame": "EME2000"})
    """
    stamps = np.asarray(times, dtype="datetime64[us]")
    states = np.asarray(states, dtype=np.float64).reshape(-1, 6)
    fields = [pa.field("time", pa.timestamp("us"))] + [pa.field(c, pa.float64()) for c in STATE_COLUMNS]
    metadata = {f"{META_PREFIX}{k}".encode(): str(v).encode() for k, v in meta.items() if v is not None}
    schema = pa.schema(fields, metadata=metadata)
    arrays = [pa.array(stamps, pa.timestamp("us"))] + [pa.array(states[:, i]) for i in range(6)]
    return pa.Table.from_arrays(arrays, schema=schema)


def metadata(tbl: pa.Table | pa.Schema) -> dict[str, str]:
    """The ``gmat_sweep.*`` metadata of an ephemeris table, without the prefix."""
    schema = tbl.schema if isinstance(tbl, pa.Table) else tbl
    raw = schema.metadata or {}
    return {k.decode()[len(META_PREFIX):]: v.decode() for k, v in raw.items() if k.startswith(META_PREFIX.encode())}


def sniff(path: str) -> str:
    """The ephemeris format of ``path`` from its first bytes: ``CCSDS-OEM``, ``CCSDS-AEM``, ``STK-TimePosVel``,
    ``SPK`` or ``Code-500``; :class:`UnknownFormat` otherwise."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if not head:
        raise UnknownFormat("GMAT left the file empty")
    if head.startswith(b"DAF/SPK"):
        return "SPK"
    text = head.decode("latin-1").lstrip()
    if text.startswith("CCSDS_OEM_VERS"):
        return "CCSDS-OEM"
    if text.startswith("CCSDS_AEM_VERS"):
        return "CCSDS-AEM"
    if text.lower().startswith("stk.v."):
        return "STK-TimePosVel" if "EphemerisTimePosVel" in text or "BEGIN Ephemeris" in text else "STK"
    if path.lower().endswith(".eph") and len(head) >= 2800 and b"\0" in head:
        return "Code-500"
    first = text.splitlines()[0][:40] if text.strip() else "an empty file"
    raise UnknownFormat(f"unrecognised ephemeris format (starts with {first!r})")


def read(path: str) -> tuple[pa.Table, list[str]]:
    """Read any supported ephemeris file into the typed table; returns it and the warnings met on the way.

    >>> tbl, warnings = read("runs/0/OEM.oem")
    """
    kind = sniff(path)
    if kind == "CCSDS-OEM":
        from .oem import read_oem
        return read_oem(path)
    if kind == "STK-TimePosVel":
        from .stk import read_stk
        return read_stk(path)
    if kind == "SPK":
        from .spk import read_spk
        return read_spk(path)
    if kind == "Code-500":
        from .code500 import read_code500
        return read_code500(path)
    raise UnknownFormat(f"{kind} ephemerides are kept as written but not converted to a table")
