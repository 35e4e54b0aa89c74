"""Compacting a sweep's many small per-run Parquet files into one file per output.

A 100 000-run sweep leaves 100 000 files per report; opening each costs a reader more than its few kilobytes of
data. ``compact()`` writes ``compact/<output>.parquet`` with every ok run's rows (in run order, the parameters as
columns) and, beside it, the ids it covers; readers take those runs from it and any other ok run (one finished
later by ``resume`` or ``extend``) from its own file. The per-run files stay: they remain the record of each run, and
a compact file that is missing or stale only costs speed, never rows.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import replacing, write_bytes
from .design import Design
from .layout import run_dir
from .reading import arrow_type
from .records import OK

FOLDER = "compact"
PARAMETERS_KEY = b"gmat_sweep.parameters"
_ROWS_PER_GROUP = 1 << 20


def path_of(out: str, key: str) -> str:
    """``compact/<key>.parquet`` (a ``kind:name`` key becomes ``kind.name``)."""
    return os.path.join(out, FOLDER, key.replace(":", ".") + ".parquet")


def covered(out: str, key: str) -> frozenset[int]:
    """The run ids the compact file of ``key`` holds; empty when there is none."""
    try:
        with open(path_of(out, key) + ".runs.json") as handle:
            return frozenset(json.load(handle))
    except (OSError, ValueError):
        return frozenset()


def ok_ids(entries: Mapping[int, Mapping[str, Any]], key: str) -> list[int]:
    return [i for i in sorted(entries) if entries[i].get("status") == OK and key in (entries[i].get("outputs") or {})]


def compact(out: str, design: Design, entries: Mapping[int, Mapping[str, Any]]) -> list[str]:
    """Write one compact file per output of the sweep's ok runs; returns the files written.

    >>> compact(sweep.out, sweep.design, sweep.manifest.entries)
    ['.../compact/OrbitReport.parquet']
    """
    keys: dict[str, None] = {}
    for i in sorted(entries):
        keys.update(dict.fromkeys((entries[i].get("outputs") or {}) if entries[i].get("status") == OK else ()))
    written = []
    for key in keys:
        ids = ok_ids(entries, key)
        files = [(i, os.path.join(run_dir(out, i), entries[i]["outputs"][key])) for i in ids]
        files = [(i, f) for i, f in files if os.path.exists(f)]
        if files:
            written.append(_write(out, key, design, files))
    return written


def _write(out: str, key: str, design: Design, files: Sequence[tuple[int, str]]) -> str:
    schema = pa.unify_schemas([pq.read_schema(f) for _, f in files], promote_options="permissive")
    parameters = [p for p in design.parameters if p not in schema.names]
    param_fields = [pa.field(p, arrow_type([design[files[0][0]][p]])) for p in parameters]
    full = pa.schema(list(schema) + param_fields,
                     metadata={**(schema.metadata or {}), PARAMETERS_KEY: json.dumps(parameters).encode()})
    target = path_of(out, key)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    pending: list[pa.Table] = []
    rows = 0
    with (replacing(target) as tmp, pq.ParquetWriter(tmp, full, compression="zstd") as writer,
          ThreadPoolExecutor(4) as threads):
        # Opening a small Parquet file is mostly waiting on the file system and Arrow's C++ (the GIL is released):
        # a few threads read ahead while this one appends.
        for run_id, read in _read_ahead(files, threads):
            table = _conform(read, schema)
            row = design[run_id]
            for field in param_fields:
                table = table.append_column(field, pa.array([row[field.name]] * table.num_rows, field.type))
            pending.append(table.replace_schema_metadata(full.metadata))
            rows += table.num_rows
            if rows >= _ROWS_PER_GROUP:
                writer.write_table(pa.concat_tables(pending), row_group_size=_ROWS_PER_GROUP)
                pending, rows = [], 0
        if pending:
            writer.write_table(pa.concat_tables(pending), row_group_size=_ROWS_PER_GROUP)
    # Written last: it is what readers trust.
    write_bytes(target + ".runs.json", json.dumps([i for i, _ in files]).encode())
    return target


def _read_ahead(files: Sequence[tuple[int, str]], threads: ThreadPoolExecutor, chunk: int = 256):  # noqa: ANN202
    """``(run_id, table)`` in order, read a chunk at a time so read-ahead never holds more than one chunk."""
    for start in range(0, len(files), chunk):
        part = files[start:start + chunk]
        yield from zip((i for i, _ in part), threads.map(pq.read_table, [f for _, f in part]))


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names
               else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)



def parameters_in(schema: pa.Schema) -> list[str]:
    """The parameter columns a compact file added (not part of the output's own table)."""
    raw = (schema.metadata or {}).get(PARAMETERS_KEY)
    return json.loads(raw) if raw else []
