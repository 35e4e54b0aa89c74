"""Turning a sweep's folder into DataFrames: the per-run Parquet files, joined with parameters and status.

Nothing is held in memory while a sweep runs; these functions read what the runs left on disk, lazily, through
``pyarrow.dataset``, so a 100 000-run sweep aggregates without the driver ever growing with the run count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from .design import Design
from .records import FAILED, OK

MISSING = "missing"
RUN_ID = "run_id"
TIME = "time"


def run_table(design: Design, entries: Mapping[int, Mapping[str, Any]],
              runs: Sequence[int] | None = None) -> pd.DataFrame:
    """One row per run id of the design (or of ``runs``, in id order): its parameters and status (``ok``,
    ``failed`` or ``missing``)."""
    if runs is None:
        ids = np.arange(len(design))
        # Column by column: a dict per run would cost ~1 s for 100 000 runs.
        values: Any = design.columns(0, len(design))
    else:
        ids = np.array(sorted({int(i) for i in runs if 0 <= int(i) < len(design)}), dtype=np.int64)
        values = [design[int(i)] for i in ids]
    frame = pd.DataFrame(values, index=pd.Index(ids, name=RUN_ID), columns=design.parameters)
    missing = {"status": MISSING}
    frame["status"] = [entries.get(i, missing)["status"] for i in ids.tolist()]
    return frame


def counts(size: int, entries: Mapping[int, Mapping[str, Any]]) -> dict[str, int]:
    """How many of run ids ``0..size-1`` are ok, failed and missing: from the manifest alone, no parameters."""
    found = {OK: 0, FAILED: 0}
    for run_id, entry in entries.items():
        if 0 <= run_id < size and entry.get("status") in found:
            found[entry["status"]] += 1
    return {OK: found[OK], FAILED: found[FAILED], MISSING: size - found[OK] - found[FAILED]}


def summary(design: Design, entries: Mapping[int, Mapping[str, Any]], collect: Sequence[str],
            runs: Sequence[int] | None = None) -> pd.DataFrame:
    """Parameters, status, timing, where it ran, collected values and error: one row per run (or per id of
    ``runs``)."""
    frame = run_table(design, entries, runs)
    rows = [entries.get(i, {}) for i in frame.index.tolist()]
    for column, key in (("start", "start"), ("end", "end")):
        # Through a float array: pandas converts a list of Python floats element by element (~0.6 s per 100 000).
        seconds = np.array([r.get(key, np.nan) for r in rows], dtype=float)
        frame[column] = pd.to_datetime(seconds, unit="s", utc=True)
    frame["duration"] = [r.get("duration", np.nan) for r in rows]
    frame["host"] = [r.get("host") for r in rows]
    frame["pid"] = pd.array([r.get("pid") for r in rows], dtype="Int64")
    frame["worker"] = [r.get("worker") for r in rows]
    for name in collect:
        column = name if name not in frame.columns else f"{name} (final)"
        values = [(r.get("collected") or {}).get(name) for r in rows]
        # Collected epochs are kept as GMAT printed them; in the table, Gregorian ones become timestamps as in reports.
        frame[column] = (pd.to_datetime(values, format="%d %b %Y %H:%M:%S.%f", errors="coerce")
                         if name.endswith("Gregorian") else values)
    from .reading import extras

    for name, values in extras(entries, frame.index).items():  # solver convergence, postprocess scalars
        frame[name if name not in frame.columns else f"{name} (extra)"] = values
    frame["error"] = [r.get("error") for r in rows]
    frame["warnings"] = [r.get("warnings") or [] for r in rows]
    return frame


def report_names(entries: Mapping[int, Mapping[str, Any]]) -> list[str]:
    """Every ReportFile any run produced, in the script's order (as the first run that has them lists them)."""
    names: list[str] = []
    for run_id in sorted(entries):
        for name in entries[run_id].get("outputs") or {}:
            if name not in names and ":" not in name:  # "kind:name" keys are ephemerides, solvers, events
                names.append(name)
    return names


def results(out: str, design: Design, entries: Mapping[int, Mapping[str, Any]], report: str | None = None,
            extra: pd.DataFrame | None = None, columns: Sequence[str] | None = None,
            runs: Sequence[int] | None = None) -> pd.DataFrame:
    """The tidy table: index ``(run_id, time)``, the parameters, every column of ``report``, and ``status``.

    ``time`` is the report's first epoch column (rows are in report order within a run); a failed or missing run
    is one row with ``time`` missing (NaT, or ``<NA>`` where ``time`` numbers the rows of a report without an epoch
    column) and empty report columns, never silently absent. Without any report, each run is
    one row. A report column named like a parameter is prefixed with the report's name (``RF.Sat.SMA``).
    ``columns`` and ``runs`` limit what is read from disk to those report columns and run ids.
    """
    wanted = runs
    runs = run_table(design, entries)
    if wanted is not None:
        runs = runs.loc[runs.index.isin(list(wanted))]
    if extra is not None:
        runs = runs.join(extra, how="left")
    names = report_names(entries)
    if report is None and names:
        report = names[0]
    if report is not None and report not in names:
        raise KeyError(f"no run produced a report named {report!r}; the sweep's reports are: "
                       f"{', '.join(names) or 'none (the script has no ReportFile, use summary() and collect=)'}")
    data = _read_report(out, entries, report, columns, wanted) if report else None
    if data is None or data.empty:
        frame = runs.copy()
        frame[TIME] = pd.NaT
        frame = frame.set_index(TIME, append=True)
        return frame[[c for c in frame.columns if c != "status"] + ["status"]]
    time_column = next((c for c in data.columns if c != RUN_ID and pd.api.types.is_datetime64_any_dtype(data[c])),
                       None)
    renames = {c: f"{report}.{c}" for c in data.columns if c in runs.columns and c != RUN_ID}
    data = data.rename(columns=renames)
    if time_column is not None:
        time_column = renames.get(time_column, time_column)
        data[TIME] = data[time_column]
    else:
        data[TIME] = data.groupby(RUN_ID).cumcount().astype("Int64")  # nullable: a run without rows gets <NA>
    have = set(data[RUN_ID].unique())
    absent = runs.index[~runs.index.isin(have)]
    if not len(absent):
        return _assemble(data, runs)
    if len(absent):
        filler = pd.DataFrame({RUN_ID: absent, TIME: pd.Series([None] * len(absent), dtype=data[TIME].dtype)})
        data = pd.concat([data, filler], ignore_index=True)
    data["_order"] = np.arange(len(data))
    frame = data.merge(runs, left_on=RUN_ID, right_index=True, how="left")
    frame = frame.sort_values([RUN_ID, "_order"], kind="stable").drop(columns="_order")
    report_columns = [c for c in data.columns if c not in (RUN_ID, TIME, "_order")]
    ordered = list(runs.columns.drop("status")) + report_columns + ["status"]
    return frame.set_index([RUN_ID, TIME])[ordered]


def _assemble(data: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The tidy table when every run has rows (rows are already in run order): built column by column so a big
    sweep's table is not copied by a merge, a sort and a reindex on its way out (peak memory ~ the table's size)."""
    positions = runs.index.get_indexer(data[RUN_ID])
    columns: dict[str, Any] = {c: runs[c].to_numpy()[positions] for c in runs.columns.drop("status")}
    for c in data.columns:
        if c not in (RUN_ID, TIME):
            columns[c] = data.pop(c).array  # the array itself: a Series would align on its own index
    columns["status"] = runs["status"].to_numpy()[positions]
    index = pd.MultiIndex.from_arrays([data.pop(RUN_ID), data.pop(TIME)], names=[RUN_ID, TIME])
    return pd.DataFrame(columns, index=index, copy=False)


def _read_report(out: str, entries: Mapping[int, Mapping[str, Any]], report: str,
                 columns: Sequence[str] | None = None, runs: Sequence[int] | None = None) -> pd.DataFrame | None:
    from .reading import load, output_files

    if columns is not None:
        files = output_files(out, entries, report, runs) or [_compact_file(out, report)]
        schema = ds.dataset(files[0], format="parquet").schema
        unknown = [c for c in columns if c not in schema.names]
        if unknown:
            raise KeyError(f"report {report!r} has no column {', '.join(map(repr, unknown))}; its columns are: "
                           f"{', '.join(n for n in schema.names if n != RUN_ID)}")
        # The time index comes from the report's first epoch column: read it too.
        time_column = next((f.name for f in schema if pa.types.is_timestamp(f.type)), None)
        columns = list(dict.fromkeys([*([time_column] if time_column else []), *columns, RUN_ID]))
    # Runs can disagree on a column's type (a column that is all-NaN in one run); load unifies permissively.
    table = load(out, entries, report, columns, runs)
    if table is None:
        return None
    from .reading import POOL

    return table.to_pandas(self_destruct=True, split_blocks=True, memory_pool=POOL)


def _compact_file(out: str, report: str) -> str:
    from .compact import path_of

    return path_of(out, report)
