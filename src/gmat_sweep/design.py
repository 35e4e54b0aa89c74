"""Designs: which runs a sweep makes. A grid or an explicit table of samples -> rows with stable run ids.

A grid is expanded as a full factorial in the order its parameters are given, the last parameter varying
fastest (like nested for-loops, or ``itertools.product``): ``{"A": [1, 2], "B": [x, y]}`` gives run 0 = (1, x),
1 = (1, y), 2 = (2, x), 3 = (2, y). Rows are computed on demand, so a 100 000-run grid costs no memory.
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .gmat.script import ScriptError, check_path, plain


class DesignError(ScriptError):
    """A grid or sample table is malformed; the message says how to fix it."""


def to_json(value: Any) -> Any:
    """A JSON-safe form of a parameter value; datetimes are tagged so they come back as datetimes."""
    value = plain(value)
    if isinstance(value, _dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


def from_json(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"datetime"}:
        return _dt.datetime.fromisoformat(value["datetime"])
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


#: Design kinds defined in the designs package (random and space-filling), read back by ``Design.from_dict``.
KINDS = ("monte_carlo", "latin_hypercube", "sobol", "saltelli")


class Design:
    """An ordered, indexable set of parameter rows. ``design[run_id]`` is that run's overrides."""

    kind: str = ""
    parameters: list[str]

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, run_id: int) -> dict[str, Any]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self[i] for i in range(len(self)))

    def columns(self, start: int, stop: int) -> dict[str, Any]:
        """The values of run ids ``start..stop-1``, one array or list per parameter (what a table of many runs is
        built from, without a dict per run).

        >>> Grid({"Sat.SMA": [7000.0, 7100.0], "Sat.INC": [28.5, 51.6]}).columns(0, 4)["Sat.INC"].tolist()
        [28.5, 51.6, 28.5, 51.6]
        """
        rows = [self[i] for i in range(start, stop)]
        return {p: [row[p] for row in rows] for p in self.parameters}

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Design:
        if data.get("kind") == "grid":
            return Grid._recorded(data)
        if data.get("kind") == "samples":
            return Samples([{k: from_json(v) for k, v in row.items()} for row in data["rows"]])
        from .designs import from_dict  # the random and space-filling designs

        if data.get("kind") in KINDS:
            return from_dict(data)
        raise DesignError(f"unknown design kind {data.get('kind')!r} in the manifest")

    def distinct_values(self) -> dict[str, list[Any]]:
        """Each parameter's distinct values, in first-seen order (what a preflight check must try)."""
        raise NotImplementedError

    def difference(self, recorded: Mapping[str, Any]) -> str | None:
        """What differs from the design recorded in a manifest, or ``None`` when it is the same design."""
        return None if self.to_dict() == recorded else "the design"

    def describe(self) -> str:
        return f"{self.kind}, n={len(self)}"


class Grid(Design):
    """Full factorial over ``grid`` (parameter -> list of values); the last parameter varies fastest.

    >>> Grid({"Sat.SMA": [7000.0, 7100.0], "Sat.INC": [28.5, 51.6]})[1]
    {'Sat.SMA': 7000.0, 'Sat.INC': 51.6}
    """

    kind = "grid"

    def __init__(self, grid: Mapping[str, Sequence[Any]]) -> None:
        if not isinstance(grid, Mapping):
            raise DesignError("grid must be a mapping of GMAT path -> list of values, e.g. {'Sat.SMA': [7000, 7100]}")
        if not grid:
            raise DesignError("the grid is empty: give at least one parameter with at least one value, "
                              "e.g. grid={'Sat.SMA': [7000, 7100]}")
        self.grid: dict[str, list[Any]] = {}
        for path, values in grid.items():
            path = _unique_path(path, self.grid)
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) and not hasattr(values, "tolist"):
                raise DesignError(f"grid[{path!r}] must be a list of values, got {values!r}; "
                                  f"write grid={{{path!r}: [{values!r}]}} for a single value")
            values = [plain(v) for v in (values.tolist() if hasattr(values, "tolist") else values)]
            if not values:
                raise DesignError(f"grid[{path!r}] has no values; give at least one")
            for v in values:
                _check_value(path, v)
            self.grid[path] = values
        self._index()

    @classmethod
    def _recorded(cls, data: Mapping[str, Any]) -> Grid:
        """The grid a manifest recorded. Its values were checked when the sweep began, so they are only decoded
        (a datetime's tag; most grids have none): checking a 100 000-value grid again would cost a second."""
        grid = cls.__new__(cls)
        grid.grid = {k: [from_json(v) for v in vs] if any(isinstance(v, (dict, list)) for v in vs) else list(vs)
                     for k, vs in data["grid"].items()}
        grid._index()
        grid._record = data
        return grid

    def _index(self) -> None:
        self.parameters = list(self.grid)
        self._sizes = [len(v) for v in self.grid.values()]
        self._len = math.prod(self._sizes)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, run_id: int) -> dict[str, Any]:
        if not 0 <= run_id < self._len:
            raise IndexError(run_id)
        row: dict[str, Any] = {}
        for path, size in zip(reversed(self.parameters), reversed(self._sizes)):
            run_id, index = divmod(run_id, size)
            row[path] = self.grid[path][index]
        return {p: row[p] for p in self.parameters}

    def columns(self, start: int, stop: int) -> dict[str, Any]:
        import numpy as np
        import pandas as pd

        ids = np.arange(start, stop)
        columns: dict[str, Any] = {}
        for path, size in zip(reversed(self.parameters), reversed(self._sizes)):
            ids, index = np.divmod(ids, size)
            # A Series of the distinct values gives the column the dtype a table of the rows would infer.
            columns[path] = pd.Series(self.grid[path]).to_numpy()[index]
        return {p: columns[p] for p in self.parameters}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "grid", "grid": {k: [to_json(v) for v in vs] for k, vs in self.grid.items()}}

    def difference(self, recorded: Mapping[str, Any]) -> str | None:
        # The grid read from this very record is the same design: no need to encode and compare every value.
        if recorded is getattr(self, "_record", None):
            return None
        return super().difference(recorded)

    def distinct_values(self) -> dict[str, list[Any]]:
        return {k: list(v) for k, v in self.grid.items()}


class Samples(Design):
    """Explicit rows, one run each, in the order given: a DataFrame or a list of dicts.

    >>> Samples([{"Sat.SMA": 7000.0, "TOF": 600}, {"Sat.SMA": 7100.0, "TOF": 900}])[1]["TOF"]
    900
    """

    kind = "samples"

    def __init__(self, samples: Any) -> None:
        if hasattr(samples, "to_dict") and hasattr(samples, "columns"):
            records = samples.to_dict(orient="records")
        elif isinstance(samples, Sequence) and not isinstance(samples, (str, bytes)):
            records = list(samples)
        else:
            raise DesignError("samples must be a pandas DataFrame or a list of dicts (one dict per run)")
        if not records:
            raise DesignError("samples has no rows; give at least one run")
        columns: list[str] = []
        for row in records:
            if not isinstance(row, Mapping):
                raise DesignError(f"each sample must be a dict of GMAT path -> value, got {row!r}")
            for key in row:
                if key not in columns:
                    columns.append(key)
        for key in columns:
            try:
                check_path(key)
            except ScriptError as exc:
                raise DesignError(f"samples column {key!r} is not a GMAT path: {exc}") from None
        self.parameters = columns
        self.rows = []
        for number, row in enumerate(records):
            missing = [c for c in columns if c not in row or _is_missing(row[c])]
            if missing:
                raise DesignError(f"sample row {number} has no value for {', '.join(missing)}; every row must set "
                                  "every column (split the sweep if runs change different fields)")
            clean = {c: plain(row[c]) for c in columns}
            for c, v in clean.items():
                _check_value(c, v)
            self.rows.append(clean)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, run_id: int) -> dict[str, Any]:
        return dict(self.rows[run_id])

    def columns(self, start: int, stop: int) -> dict[str, Any]:
        rows = self.rows[start:stop]
        return {p: [row[p] for row in rows] for p in self.parameters}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "samples", "rows": [{k: to_json(v) for k, v in r.items()} for r in self.rows]}

    def distinct_values(self) -> dict[str, list[Any]]:
        seen: dict[str, dict[str, Any]] = {p: {} for p in self.parameters}
        for row in self.rows:
            for p, v in row.items():
                seen[p].setdefault(repr(v), v)
        return {p: list(v.values()) for p, v in seen.items()}


def make_design(grid: Mapping[str, Sequence[Any]] | None = None, samples: Any = None) -> Design:
    """The design for ``sweep(grid=..., samples=...)``: exactly one of the two."""
    if grid is not None and samples is not None:
        raise DesignError("give either grid= or samples=, not both (a grid is a full factorial; samples are "
                          "explicit rows). To combine them, build the rows yourself and pass samples=.")
    if grid is None and samples is None:
        raise DesignError("nothing to sweep: give grid={'Sat.SMA': [...]} or samples=[{...}, ...]")
    return Grid(grid) if grid is not None else Samples(samples)


def _unique_path(path: Any, seen: Mapping[str, Any]) -> str:
    try:
        path = check_path(path)
    except ScriptError as exc:
        raise DesignError(str(exc)) from None
    if path in seen:
        raise DesignError(f"parameter {path!r} appears twice in the grid; give it once with all its values")
    return path


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _check_value(path: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise DesignError(f"{path} = {value}: GMAT cannot take a non-finite number; give a finite value")
    if not isinstance(value, (numbers.Real, str, _dt.datetime, list)):
        raise DesignError(f"{path} = {value!r}: values must be numbers, strings, booleans, datetimes or lists")
