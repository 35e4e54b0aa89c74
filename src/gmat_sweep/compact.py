"""Compacting a sweep's many small per-run Parquet files into one file per output.

A 100 000-run sweep leaves 100 000 files per report; opening each costs a reader more than its few kilobytes of
data. ``compact()`` writes ``compact/<output>.parquet`` with every ok run's rows (in run order, the parameters as
columns) and, in the file's own metadata, the ids it covers; readers take those runs from it and any other ok run
(one finished later by ``resume`` or ``extend``) from its own file. The per-run files stay: they remain the record of
each run, and a compact file that is missing or stale only costs speed, never rows.

A sweep compacts itself when it finishes with at least :data:`AUTO_RUNS` ok runs outside the compact files, and
reading one that was left so (killed, or written by an older version) compacts it first. A compaction after a
``resume`` or ``extend`` copies the runs the old file held from it and adds only the new runs' files. The new file
is written under a temporary name and moved over the old one: a compaction killed midway leaves the old file (or
none) and a temporary file that the next compaction removes, never a file whose rows and ids disagree.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import abandoned, replacing
from .design import Design
from .layout import run_dir
from .reading import arrow_type, file_schema
from .records import OK

FOLDER = "compact"
PARAMETERS_KEY = b"gmat_sweep.parameters"
#: The run ids a compact file holds, as ``[[start, stop], ...]`` ranges, in the file's own metadata: the rows and
#: the ids that describe them are replaced together.
RUNS_KEY = b"gmat_sweep.runs"
#: A sweep (or a read of one) with at least this many ok runs outside the compact files compacts it. Below it,
#: opening the per-run files costs less than writing a compact file would.
AUTO_RUNS = 1000
_ROWS_PER_GROUP = 1 << 20
_RUN_ID = "run_id"


def path_of(out: str, key: str) -> str:
    """``compact/<key>.parquet`` (a ``kind:name`` key becomes ``kind.name``)."""
    return os.path.join(out, FOLDER, key.replace(":", ".") + ".parquet")


def covered(out: str, key: str) -> frozenset[int]:
    """The run ids the compact file of ``key`` holds; empty when there is none."""
    try:
        metadata = pq.read_schema(path_of(out, key)).metadata or {}
    except (OSError, pa.ArrowInvalid):
        return frozenset()
    if RUNS_KEY in metadata:
        return frozenset(_expand(json.loads(metadata[RUNS_KEY])))
    try:  # a compact file written before the ids moved into it has them beside it
        with open(path_of(out, key) + ".runs.json") as handle:
            return frozenset(json.load(handle))
    except (OSError, ValueError):
        return frozenset()


def ok_ids(entries: Mapping[int, Mapping[str, Any]], key: str) -> list[int]:
    return [i for i in sorted(entries) if entries[i].get("status") == OK and key in (entries[i].get("outputs") or {})]


def output_keys(entries: Mapping[int, Mapping[str, Any]]) -> list[str]:
    """Every output any ok run produced, in first-seen order."""
    keys: dict[str, None] = {}
    for i in sorted(entries):
        if entries[i].get("status") == OK:
            keys.update(dict.fromkeys(entries[i].get("outputs") or ()))
    return list(keys)


def loose(out: str, entries: Mapping[int, Mapping[str, Any]]) -> int:
    """How many ok runs have an output that no compact file holds (what a reader would open one by one)."""
    runs: set[int] = set()
    for key in output_keys(entries):
        held = covered(out, key)
        runs.update(i for i in ok_ids(entries, key) if i not in held)
    return len(runs)


def compact(out: str, design: Design, entries: Mapping[int, Mapping[str, Any]]) -> list[str]:
    """Bring one compact file per output up to date with the sweep's ok runs; returns the compact files.

    >>> compact(sweep.out, sweep.design, sweep.manifest.entries)
    ['.../compact/OrbitReport.parquet']
    """
    _remove_abandoned(out)
    written = []
    for key in output_keys(entries):
        ids = ok_ids(entries, key)
        held = covered(out, key)
        new = [i for i in ids if i not in held]
        files = _RunFiles(out, key, entries, new)
        keep = sorted(held.intersection(ids))
        if held and not files and len(keep) == len(held):
            written.append(path_of(out, key))  # already up to date: nothing new, nothing to drop
        elif files or keep:
            written.append(_write(out, key, design, keep, files))
    return written


def auto(out: str, design: Design, entries: Mapping[int, Mapping[str, Any]]) -> list[str]:
    """Compact when at least :data:`AUTO_RUNS` ok runs lie outside the compact files; a folder that cannot be
    written (a read-only copy) is read from its per-run files as before."""
    if AUTO_RUNS is None or loose(out, entries) < AUTO_RUNS:
        return []
    try:
        return compact(out, design, entries)
    except (OSError, pa.ArrowException):
        # Read-only, full, or runs whose columns nothing unifies: the per-run files still give every row.
        return []


class _RunFiles(Sequence[tuple[int, str]]):
    """``(run id, file)`` of output ``key`` of the runs ``ids`` whose file exists (an ok run's file can be lost: it
    is read around), each path made when it is asked for: 100 000 of them held would cost ~15 MB."""

    def __init__(self, out: str, key: str, entries: Mapping[int, Mapping[str, Any]], ids: Sequence[int]) -> None:
        self._prefix, self._entries, self._key = run_dir(out, 0)[:-1], entries, key
        self.ids = [i for i in ids if os.path.exists(self._path(i))]

    def _path(self, run_id: int) -> str:
        return f"{self._prefix}{run_id}{os.sep}{self._entries[run_id]['outputs'][self._key]}"

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [(i, self._path(i)) for i in self.ids[index]]
        return self.ids[index], self._path(self.ids[index])

    def paths(self) -> Sequence[str]:
        return _Paths(self)


class _Paths(Sequence[str]):
    def __init__(self, files: _RunFiles) -> None:
        self._files = files

    def __len__(self) -> int:
        return len(self._files)

    def __getitem__(self, index: Any) -> Any:
        found = self._files[index]
        return [f for _, f in found] if isinstance(index, slice) else found[1]


def _write(out: str, key: str, design: Design, keep: Sequence[int], files: _RunFiles) -> str:
    target = path_of(out, key)
    old = pq.ParquetFile(target) if keep else None
    old_parameters = parameters_in(old.schema_arrow) if old is not None else []
    own = [pa.schema([f for f in old.schema_arrow if f.name not in old_parameters])] if old is not None else []
    schema = pa.unify_schemas(own + ([file_schema(files.paths())] if files else []),
                              promote_options="permissive")
    # The output's own metadata (an ephemeris's frame and central body) is the same in every run: keep the first's.
    first = old.schema_arrow if old is not None else pq.read_schema(files[0][1])
    schema = schema.with_metadata({k: v for k, v in (first.metadata or {}).items()
                                   if k not in (PARAMETERS_KEY, RUNS_KEY)})
    parameters = [p for p in design.parameters if p not in schema.names]
    values: dict[str, list[Any]] = {p: [] for p in parameters}
    for i in files.ids:  # a run's row at a time: 100 000 rows held as dicts would cost ~20 MB
        row = design[i]
        for p in parameters:
            values[p].append(row[p])
    param_fields = [_parameter_field(p, values.get(p, []), old) for p in parameters]
    ids = sorted(set(keep) | set(files.ids))
    full = pa.schema(list(schema) + param_fields,
                     metadata={**(schema.metadata or {}), PARAMETERS_KEY: json.dumps(parameters).encode(),
                               RUNS_KEY: json.dumps(_ranges(ids)).encode()})
    os.makedirs(os.path.dirname(target), exist_ok=True)
    # Durable: the file's bytes are on disk before its name says it is complete.
    with replacing(target, durable=True) as tmp:
        # Dictionary encoding only where values repeat (text): on float columns it found nothing to share, made
        # the file larger, and held a dictionary of every value of the row group (+57 MB at 100 000 runs).
        text = [f.name for f in full if not (pa.types.is_floating(f.type) or pa.types.is_integer(f.type))]
        with pq.ParquetWriter(tmp, full, compression="zstd", use_dictionary=text) as writer:
            pending: list[pa.Table] = []
            size = 0
            for table in _merged(_kept(old, keep, full), _new(files, schema, full, values)):
                pending.append(table)
                size += table.num_rows
                if size >= _ROWS_PER_GROUP:
                    writer.write_table(pa.concat_tables(pending), row_group_size=_ROWS_PER_GROUP)
                    pending, size = [], 0
            if pending:
                writer.write_table(pa.concat_tables(pending), row_group_size=_ROWS_PER_GROUP)
        if old is not None:
            old.close()
    with contextlib.suppress(FileNotFoundError):
        os.remove(target + ".runs.json")  # an older layout's list; the file now carries its own
    _give_back_memory()
    return target


def _parameter_field(name: str, values: Sequence[Any], old: pq.ParquetFile | None) -> pa.Field:
    kinds = []
    if old is not None and name in old.schema_arrow.names:
        kinds.append(old.schema_arrow.field(name).type)
    if values:
        try:
            kinds.append(pa.array(values).type)  # every value: a grid of 7000 and 7100.5 is a float column
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            kinds.append(arrow_type(list(values)))
    fields = [pa.schema([pa.field(name, t)]) for t in kinds]
    return pa.unify_schemas(fields, promote_options="permissive").field(name)


def _kept(old: pq.ParquetFile | None, keep: Sequence[int], full: pa.Schema) -> Iterator[pa.Table]:
    """The rows of the ``keep`` runs from the old compact file, in its (run) order, a batch at a time."""
    if old is None:
        return
    wanted = np.asarray(keep, dtype=np.int64)
    for batch in old.iter_batches(batch_size=1 << 16):
        table = pa.Table.from_batches([batch])
        mask = np.isin(table.column(_RUN_ID).to_numpy(), wanted)
        yield _conform(table if mask.all() else table.filter(pa.array(mask)), full)


def _new(files: Sequence[tuple[int, str]], schema: pa.Schema, full: pa.Schema, values: Mapping[str, list[Any]],
         chunk: int = 512) -> Iterator[pa.Table]:
    """The new runs' rows with their parameters, in run order, ``chunk`` files at a time."""
    params = [f for f in full if f.name not in schema.names]
    for start in range(0, len(files), chunk):
        part = files[start:start + chunk]
        # One contiguous table per chunk: the chunk's hundreds of few-row tables are freed now, not held (~1.8 KB
        # each) until a row group is full.
        table = pa.concat_tables([_conform(_read_small(f), schema) for _, f in part]).combine_chunks()
        ids = table.column(_RUN_ID).to_numpy()
        if len(ids) > 1 and (np.diff(ids) < 0).any():
            table = table.take(pa.array(np.argsort(ids, kind="stable")))
            ids = table.column(_RUN_ID).to_numpy()
        chunk_ids = np.array([i for i, _ in part], dtype=np.int64)
        positions = pa.array(np.searchsorted(chunk_ids, ids))
        for field in params:
            column = pa.array(values[field.name][start:start + chunk], field.type).take(positions)
            table = table.append_column(field, column)
        yield table.replace_schema_metadata(full.metadata)


def _read_small(path: str) -> pa.Table:
    """One run's Parquet file, read whole into memory and decoded on this thread: a run's report is a few kilobytes,
    and both an Arrow dataset scan and ``pq.read_table`` cost ~5x more CPU per file in scheduling and ranged reads
    than the decoding itself (0.06 against 0.3 ms a file)."""
    with open(path, "rb") as handle:
        data = handle.read()
    return pq.ParquetFile(pa.BufferReader(data), pre_buffer=False).read(use_threads=False)


def _merged(a: Iterator[pa.Table], b: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """Two streams of tables, each in run order and with no run in common, as one stream in run order (a resume
    fills ids between those the old file holds)."""
    x, y = next(a, None), next(b, None)
    while x is not None and y is not None:
        if not x.num_rows:
            x = next(a, None)
            continue
        if not y.num_rows:
            y = next(b, None)
            continue
        if y.column(_RUN_ID)[0].as_py() < x.column(_RUN_ID)[0].as_py():
            x, y, a, b = y, x, b, a  # x: the stream whose next run comes first
        cut = int(np.searchsorted(x.column(_RUN_ID).to_numpy(), y.column(_RUN_ID)[0].as_py()))
        yield x.slice(0, cut)
        x = x.slice(cut)
    for table, rest in ((x, a), (y, b)):
        if table is not None:
            yield table
            yield from rest


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    if table.schema.equals(schema, check_metadata=False):
        return table.replace_schema_metadata(schema.metadata)
    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names
               else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def _ranges(ids: Sequence[int]) -> list[list[int]]:
    """Sorted ids as ``[start, stop)`` ranges: a finished 100 000-run sweep is ``[[0, 100000]]``."""
    ranges: list[list[int]] = []
    for i in ids:
        if ranges and ranges[-1][1] == i:
            ranges[-1][1] = i + 1
        else:
            ranges.append([i, i + 1])
    return ranges


def _expand(ranges: Sequence[Sequence[int]]) -> Iterator[int]:
    for start, stop in ranges:
        yield from range(start, stop)


def _remove_abandoned(out: str) -> None:
    """Delete the temporary files of compactions killed midway (their process is gone)."""
    for path in abandoned(os.path.join(out, FOLDER)):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _give_back_memory() -> None:
    """Return what the compaction freed to the system. Reading 100 000 small files leaves ~300 MB free but held in
    glibc's per-thread arenas (Arrow's reader threads), which a reader that compacts first then needs for its table:
    ``malloc_trim`` hands it back (elsewhere than glibc, nothing to do)."""
    pa.default_memory_pool().release_unused()
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def parameters_in(schema: pa.Schema) -> list[str]:
    """The parameter columns a compact file added (not part of the output's own table)."""
    raw = (schema.metadata or {}).get(PARAMETERS_KEY)
    return json.loads(raw) if raw else []
