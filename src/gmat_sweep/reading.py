"""Reading a sweep's non-report tables (ephemerides, solver iterations, events) and the lazy dataset view.

Everything here reads the per-run Parquet files the workers wrote; nothing touches GMAT. ``dataset()`` is the
scalable path: a ``pyarrow.dataset.Dataset`` over the files with ``run_id`` in every file and the parameters
joined on demand, so pandas, polars and DuckDB read only the columns and runs they are asked for.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from .design import Design
from .layout import run_dir
from .records import OK

RUN_ID = "run_id"
#: Tables read for the driver come from malloc, not Arrow's jemalloc: they are turned into pandas (numpy, malloc)
#: with ``self_destruct``, and only then can what each column frees be reused for the next (a 100 000-run
#: results() peaked at ~2.0x its frame with jemalloc holding on to the freed table, ~1.5x with malloc).
POOL = pa.system_memory_pool()


def output_files(out: str, entries: Mapping[int, Mapping[str, Any]], key: str,
                 runs: Sequence[int] | None = None) -> list[str]:
    """The Parquet files of output ``key`` (a report name or ``kind:name``) of the ok runs, in run order."""
    wanted = None if runs is None else set(int(r) for r in runs)
    files = []
    for run_id in sorted(entries):
        if wanted is not None and run_id not in wanted:
            continue
        entry = entries[run_id]
        name = (entry.get("outputs") or {}).get(key)
        if name and entry.get("status") == OK:
            path = os.path.join(run_dir(out, run_id), name)
            if os.path.exists(path):
                files.append(path)
    return files


def names_of(entries: Mapping[int, Mapping[str, Any]], kind: str) -> list[str]:
    """Every ``kind:name`` output name any run produced, in first-seen order."""
    names: dict[str, None] = {}
    prefix = f"{kind}:"
    for run_id in sorted(entries):
        for key in entries[run_id].get("outputs") or {}:
            if key.startswith(prefix):
                names[key[len(prefix):]] = None
    return list(names)


def load(out: str, entries: Mapping[int, Mapping[str, Any]], key: str, columns: Sequence[str] | None = None,
         runs: Sequence[int] | None = None) -> pa.Table | None:
    """Output ``key``'s rows of the ok runs (all, or ``runs``), in run order; only ``columns`` when given.

    Runs held by the sweep's compact file are read from it, the others from their own files."""
    from . import compact

    wanted = None if runs is None else set(int(r) for r in runs)
    ids = [i for i in compact.ok_ids(entries, key) if wanted is None or i in wanted]
    held = compact.covered(out, key)
    from_compact = [i for i in ids if i in held]
    rest = [i for i in ids if i not in held]
    parts = []
    if from_compact:
        path = compact.path_of(out, key)
        data = ds.dataset(path, format="parquet")
        own = [n for n in data.schema.names if n not in compact.parameters_in(data.schema)]
        cols = own if columns is None else [c for c in columns if c in own]
        filter = None if len(from_compact) == len(held) else ds.field(RUN_ID).isin(from_compact)
        metadata = {k: v for k, v in (data.schema.metadata or {}).items() if k != compact.RUNS_KEY}
        parts.append(data.to_table(columns=cols, filter=filter, memory_pool=POOL).replace_schema_metadata(metadata))
    if rest:
        parts.append(read_table(output_files(out, entries, key, rest), columns))
    parts = [p for p in parts if p.num_columns]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    table = concat(parts)
    order = pc.sort_indices(table, [(RUN_ID, "ascending")])  # stable: rows keep their order in a run
    return table.take(order)


def read_table(files: Sequence[str], columns: Sequence[str] | None = None, filter: Any = None) -> pa.Table:
    """Concatenate per-run Parquet files, reading only ``columns`` (runs can disagree on a column's type or hold a
    column others lack: unify)."""
    try:
        # A dataset takes its schema from the first file: a column only later runs hold would be dropped.
        schema = file_schema(files) if len(files) > 1 else None
        return ds.dataset(list(files), format="parquet", schema=schema).to_table(columns=columns, filter=filter,
                                                                                 memory_pool=POOL)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        tables = [ds.dataset(f, format="parquet").to_table(columns=columns, filter=filter, memory_pool=POOL)
                  for f in files]
        return concat(tables)


def concat(tables: Sequence[pa.Table]) -> pa.Table:
    """One table of ``tables``, unifying types permissively; a column whose types nothing unifies (a String that
    reads as a number in some runs only) becomes text."""
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        clashing = _clashing(tables)
        return pa.concat_tables([_as_text(t, clashing) for t in tables], promote_options="permissive")


def _clashing(tables: Sequence[pa.Table]) -> set[str]:
    types: dict[str, set[pa.DataType]] = {}
    for table in tables:
        for name, kind in zip(table.column_names, table.schema.types, strict=True):
            if kind != pa.null():
                types.setdefault(name, set()).add(kind)
    return {name for name, kinds in types.items() if len(kinds) > 1}


def _as_text(table: pa.Table, names: set[str]) -> pa.Table:
    for name in names & set(table.column_names):
        index = table.column_names.index(name)
        table = table.set_column(index, table.field(name).with_type(pa.string()), table[name].cast(pa.string()))
    return table


def with_parameters(frame: pd.DataFrame, design: Design) -> pd.DataFrame:
    """Join each row's run parameters (by ``run_id``) in front of its own columns."""
    if frame.empty or not design.parameters:
        return frame
    ids = sorted(set(frame[RUN_ID]))
    params = pd.DataFrame([design[i] for i in ids], index=pd.Index(ids, name=RUN_ID), columns=design.parameters)
    params.columns = [c if c not in frame.columns else f"param.{c}" for c in params.columns]
    return params.join(frame.set_index(RUN_ID), how="right").reset_index()


def dataset(out: str, design: Design, entries: Mapping[int, Mapping[str, Any]], key: str,
            runs: Sequence[int] | None = None) -> ds.Dataset:
    """A lazy dataset over output ``key``'s files with the design's parameters as extra columns.

    The parameters are added by a per-file partition expression (constant per run), so they cost nothing until
    read and filters on them skip whole files."""
    from . import compact

    held = compact.covered(out, key)
    wanted = None if runs is None else set(int(r) for r in runs)
    ids = [i for i in compact.ok_ids(entries, key) if wanted is None or i in wanted]
    files = output_files(out, entries, key, [i for i in ids if i not in held])
    compact_file = compact.path_of(out, key) if any(i in held for i in ids) else None
    if not files and compact_file is None:
        raise KeyError(f"no ok run produced {key!r}")
    if not files:
        data = ds.dataset(compact_file, format="parquet")
        return data if wanted is None else data.filter(ds.field(RUN_ID).isin(sorted(wanted & held)))
    base = ds.dataset(files, format="parquet")
    schema = _unified_schema(base, files)
    fields = [pa.field(p, arrow_type([design[_run_of(files[0])][p]])) for p in design.parameters
              if p not in schema.names]
    if not fields:
        return ds.dataset(files, format="parquet", schema=schema)
    full = pa.schema(list(schema) + fields, metadata=schema.metadata)
    fmt, filesystem = ds.ParquetFileFormat(), pafs.LocalFileSystem()
    fragments = []
    if compact_file is not None:
        # The compact file holds its runs' parameters as real columns: it needs no partition expression.
        schema = pa.unify_schemas([schema, ds.dataset(compact_file, format="parquet").schema],
                                  promote_options="permissive")
        fragments.append(fmt.make_fragment(compact_file, filesystem=filesystem))
    for path in files:
        row = design[_run_of(path)]
        expression = None
        for f in fields:
            term = ds.field(f.name) == pa.scalar(row[f.name], f.type)
            expression = term if expression is None else expression & term
        fragments.append(fmt.make_fragment(path, filesystem=filesystem, partition_expression=expression))
    return ds.FileSystemDataset(fragments, full, fmt, filesystem)


def _run_of(path: str) -> int:
    return int(os.path.basename(os.path.dirname(path)))


def _unified_schema(base: ds.Dataset, files: Sequence[str]) -> pa.Schema:
    try:  # inspecting every file is cheap next to reading them, and catches a column typed differently by run
        return file_schema(files)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return base.schema


def file_schema(paths: Sequence[str]) -> pa.Schema:
    """The unified schema of many small Parquet files, every footer read by Arrow's threads (a Python loop of
    ``read_schema`` costs ~0.1 ms a file, this ~0.02 ms).

    >>> file_schema(["sweeps/sma/runs/0/RF.parquet", "sweeps/sma/runs/1/RF.parquet"]).names
    ['run_id', 'Sat.ElapsedSecs', 'Sat.Earth.SMA']
    """
    schemas = []
    # A few thousand files at a time: a factory holds ~1 KB per file until it is dropped (100 MB for 100 000 runs).
    for start in range(0, len(paths), _INSPECT_FILES):
        part = list(paths[start:start + _INSPECT_FILES])
        factory = ds.FileSystemDatasetFactory(pafs.LocalFileSystem(), part, ds.ParquetFileFormat())
        try:
            schemas.append(factory.inspect(promote_options="permissive", fragments=None))
        except TypeError:  # an older pyarrow: no promote_options
            schemas.extend(ds.dataset(p, format="parquet").schema for p in part)
    return schemas[0] if len(schemas) == 1 else pa.unify_schemas(schemas, promote_options="permissive")


_INSPECT_FILES = 4096


def arrow_type(values: list[Any]) -> pa.DataType:
    """The Arrow type of a parameter's column, from its first value (bool before int: a bool is an int)."""
    value = values[0]
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64()
    if isinstance(value, float):
        return pa.float64()
    return pa.infer_type(values)


def extras(entries: Mapping[int, Mapping[str, Any]], ids: Sequence[int]) -> dict[str, list[Any]]:
    """The ``extra`` summary values of each run (solver convergence, hook scalars), one list per name."""
    names: dict[str, None] = {}
    rows = [entries.get(i, {}).get("extra") for i in ids]
    if not any(rows):
        return {}
    rows = [row or {} for row in rows]
    for row in rows:
        names.update(dict.fromkeys(row))
    return {name: [row.get(name) for row in rows] for name in names}
