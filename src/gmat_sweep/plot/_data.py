"""What the plots read: one value per run, or one series per run, from a sweep's tables. No matplotlib here.

A column is looked up by name among the design's parameters, the per-run values (``duration`` and ``collect``
names), and the columns of the sweep's reports; a name that is nowhere gets an error listing what there is.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..records import FAILED, OK

#: How one value per run is taken from a report column: the final row by default.
REDUCERS = ("last", "first", "min", "max", "mean")


class PlotError(ValueError):
    """A plot cannot be drawn as asked; the message says what would work instead."""


def open_sweep(s: Any) -> Any:
    """A Sweep from a Sweep, the DataFrame ``sweep()`` returned, an out folder or an archive bundle."""
    from ..sweep import Sweep

    if isinstance(s, Sweep):
        return s
    if isinstance(s, pd.DataFrame) and "sweep" in s.attrs:
        return getattr(s.attrs["sweep"], "sweep", s.attrs["sweep"])
    if isinstance(s, (str, os.PathLike)):
        return Sweep.from_manifest(s)
    raise PlotError(f"expected a Sweep, an out folder or the DataFrame sweep() returned, got {type(s).__name__}")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


class Columns:
    """A sweep's columns by name; reports are read once, when a column of theirs is first asked for."""

    def __init__(self, sweep: Any) -> None:
        self.sweep = sweep
        self.summary = sweep.summary()
        self.parameters = list(sweep.design.parameters)
        self.per_run_names = ["duration"] + [c for c in sweep.collect if c in self.summary.columns]
        self._reports: dict[str, pd.DataFrame] = {}

    def report(self, name: str) -> pd.DataFrame:
        if name not in self._reports:
            self._reports[name] = self.sweep.results(report=name)
        return self._reports[name]

    def report_columns(self, name: str) -> list[str]:
        frame = self.report(name)
        return [c for c in frame.columns if c not in self.parameters and c != "status"]

    def find(self, column: str, report: str | None = None) -> str | None:
        """Where ``column`` lives: ``None`` for parameters and per-run values, else the report's name."""
        if column in self.parameters or column in self.per_run_names:
            return None
        for name in [report] if report is not None else self.sweep.reports:
            if name not in self.sweep.reports:
                raise PlotError(f"no report named {report!r}; the sweep's reports are: "
                                f"{', '.join(self.sweep.reports) or 'none'}")
            if column in self.report_columns(name):
                return name
        raise PlotError(f"no column {column!r} in the sweep at {self.sweep.out}; it has {self.describe(report)}")

    def describe(self, report: str | None = None) -> str:
        parts = [f"parameters {_names(self.parameters)}", f"per-run values {_names(self.per_run_names)}"]
        for name in [report] if report else self.sweep.reports:
            parts.append(f"report {name}: {_names(self.report_columns(name))}")
        return "; ".join(parts)

    def per_run(self, column: str, report: str | None = None, reduce: str = "last") -> pd.Series:
        """One value per run id (NaN where a run has none): a parameter, a per-run value, or a report column
        reduced over each run's rows (``reduce``: last, first, min, max or mean)."""
        where = self.find(column, report)
        if where is None:
            return self.summary[column].rename(column)
        if reduce not in REDUCERS:
            raise PlotError(f"reduce={reduce!r}: use one of {', '.join(REDUCERS)}")
        values = self.report(where)[column]
        if reduce != "last" and reduce != "first" and not pd.api.types.is_numeric_dtype(values):
            raise PlotError(f"reduce={reduce!r} needs a numeric column; {column!r} holds {values.dtype}")
        reduced = values.groupby(level="run_id").agg(reduce)
        return reduced.reindex(self.summary.index).rename(column)

    def numeric(self, column: str, report: str | None = None, reduce: str = "last") -> pd.Series:
        values = self.per_run(column, report, reduce)
        if pd.api.types.is_datetime64_any_dtype(values):
            return values
        converted = pd.to_numeric(values, errors="coerce")
        if converted.notna().sum() == 0 and values.notna().any():
            raise PlotError(f"{column!r} is not numeric (values like {values.dropna().iloc[0]!r}); "
                            "plot a numeric column")
        return converted.astype(float)

    def series(self, column: str, report: str | None = None) -> pd.DataFrame:
        """Every ok run's rows of a report column: run_id, time (or row number), elapsed seconds, value."""
        where = self.find(column, report)
        if where is None:
            raise PlotError(f"{column!r} has one value per run, not a value over time; plot it with "
                            "histogram() or heatmap(), or give a report column")
        frame = self.report(where)
        frame = frame[frame["status"] == OK][[column]].reset_index()
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise PlotError(f"{column!r} is not numeric ({frame[column].dtype}); plot a numeric column")
        frame = frame.dropna(subset=[column])
        timed = pd.api.types.is_datetime64_any_dtype(frame["time"])
        if timed:
            start = frame.groupby("run_id")["time"].transform("min")
            frame["elapsed"] = (frame["time"] - start).dt.total_seconds()
        else:
            frame["elapsed"] = frame.groupby("run_id").cumcount().astype(float)
        frame.attrs["timed"] = timed
        return frame.rename(columns={column: "value"})

    def status(self) -> pd.Series:
        return self.summary["status"]

    def errors(self) -> pd.Series:
        failed = self.summary[self.summary["status"] == FAILED]
        return failed["error"].fillna("").map(error_key)


def error_key(message: str) -> str:
    """The part of GMAT's message that names the kind of failure: its first line, shortened."""
    first = (message or "failed").strip().splitlines()[0] if (message or "").strip() else "failed"
    first = first.removeprefix("the mission run failed: ")  # every mission failure says it; the rest is GMAT's
    return first if len(first) <= 90 else first[:87] + "..."


def positions(values: Sequence[Any]) -> tuple[np.ndarray, list[Any] | None]:
    """Numbers to place values at: the values themselves when numeric, else their order (with tick labels)."""
    if all(is_number(v) for v in values):
        return np.asarray(values, dtype=float), None
    labels = list(dict.fromkeys(str(v) for v in values))
    return np.asarray([labels.index(str(v)) for v in values], dtype=float), labels


def time_unit(span_seconds: float) -> tuple[float, str]:
    for scale, name in ((86400.0, "days"), (3600.0, "hours"), (60.0, "minutes")):
        if span_seconds >= 3 * scale:
            return scale, name
    return 1.0, "s"


def _names(names: Sequence[str], limit: int = 20) -> str:
    if not names:
        return "(none)"
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")
