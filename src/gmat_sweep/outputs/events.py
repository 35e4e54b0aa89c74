"""Event-locator reports (ContactLocator, EclipseLocator) -> one table row per event.

Both reports are text: a ``Target:`` (contact) or ``Spacecraft:`` (eclipse) line, then tables whose rows start
with a UTC start and stop epoch (``01 Jan 2000 13:18:45.268``) and a duration in seconds. A contact report repeats
its table under each ``Observer:`` line; an eclipse report adds the occulting body, the eclipse type, the total
event's number and its total duration to each row. Summary lines (``Number of events : 2``) are not rows.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping, Sequence

import pyarrow as pa

from ..gmat.script import CREATE_LINE

LOCATOR_TYPES = {"ContactLocator": "EventLocator", "EclipseLocator": "EventLocator"}
_EPOCH = r"(\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2}\.\d+)"
_ROW = re.compile(rf"^\s*{_EPOCH}\s+{_EPOCH}\s+(\S+)\s*(.*)$")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                       "Dec"), 1)}
SCHEMA = pa.schema([
    pa.field("locator", pa.string()), pa.field("kind", pa.string()), pa.field("target", pa.string()),
    pa.field("observer", pa.string()), pa.field("event", pa.string()), pa.field("start", pa.timestamp("ms")),
    pa.field("stop", pa.timestamp("ms")), pa.field("duration", pa.float64()), pa.field("event_number", pa.int64()),
    pa.field("total_duration", pa.float64()),
], metadata={b"gmat_sweep.time_system": b"UTC"})


def locators(texts: Sequence[str]) -> dict[str, str]:
    """The event locators a script creates: name -> type."""
    found: dict[str, str] = {}
    for text in texts:
        for line in text.splitlines():
            match = CREATE_LINE.match(line)
            if match and match.group(1) in LOCATOR_TYPES:
                for name in match.group(2).split(","):
                    if name.strip():
                        found[name.strip()] = match.group(1)
    return found


def plugin_problems(texts: Sequence[str], engine: Mapping[str, str]) -> list[str]:
    """One line per locator type the script needs that the engine (described by its fingerprint) lacks."""
    if engine.get("engine") != "embedded":
        return []  # a GMAT install brings its plugins; if one is missing there, GMAT says so when loading
    kinds = dict.fromkeys(locators(texts).values())
    return [f"{kind} needs GMAT's {LOCATOR_TYPES[kind]} plugin, which the embedded engine lacks: set GMAT_ROOT to "
            "a GMAT install" for kind in kinds]


def read_events(path: str, locator: str, kind: str) -> tuple[pa.Table, list[str]]:
    """Read a ContactLocator or EclipseLocator report.

    >>> tbl, warnings = read_events("runs/0/CL.report", "CL", "ContactLocator")
    """
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = handle.read().splitlines()
    rows: list[dict] = []
    warnings: list[str] = []
    target = observer = None
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        for prefix in ("Target:", "Spacecraft:"):
            if stripped.startswith(prefix):
                target = stripped[len(prefix):].strip()
        if stripped.startswith("Observer:"):
            observer = stripped[len("Observer:"):].strip()
        match = _ROW.match(line)
        if not match:
            if re.match(r"^\s*\d{1,2} [A-Z][a-z]{2} \d{4}", line):
                warnings.append(f"{path}: line {number} is incomplete ({stripped[:60]!r}); the report is truncated, "
                                f"{len(rows)} events read")
                break
            continue
        start, stop, duration, rest = match.groups()
        extra = rest.split()
        row = {"locator": locator, "kind": kind, "target": target, "observer": observer, "event": "contact",
               "start": _epoch(start), "stop": _epoch(stop), "duration": _float(duration), "event_number": None,
               "total_duration": None}
        if kind == "EclipseLocator" or len(extra) >= 2:
            row["observer"] = extra[0] if extra else None  # the occulting body
            row["event"] = extra[1] if len(extra) > 1 else None
            row["event_number"] = int(extra[2]) if len(extra) > 2 and extra[2].isdigit() else None
            row["total_duration"] = _float(extra[3]) if len(extra) > 3 else None
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=SCHEMA), warnings


def _epoch(text: str) -> _dt.datetime:
    day, month, year, clock = text.split()
    hours, minutes, seconds = clock.split(":")
    whole, _, fraction = seconds.partition(".")
    return _dt.datetime(int(year), _MONTHS[month], int(day), int(hours), int(minutes), int(whole),
                        int((fraction + "000000")[:6]))


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
