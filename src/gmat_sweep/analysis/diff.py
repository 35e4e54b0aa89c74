"""Compare two sweeps of the same design: which runs only one has, which changed status, and per report column
the largest absolute and relative difference and the run where it occurs.

Rows are matched by run id and position within the run (GMAT writes a run's report rows in a fixed order), so a
changed step size shows up as a row count difference rather than as a misleading value difference. Epoch columns
are compared in seconds from the earliest epoch of that column in ``a``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..records import OK

COLLECTED = "(collected)"
_COLUMNS = ["report", "column", "rows", "differing", "max_abs", "run_abs", "max_rel", "run_rel"]


class DesignMismatch(ValueError):
    """The two sweeps ran different designs, so their runs do not correspond; the message says how they differ."""


@dataclass
class SweepDiff:
    """What :func:`diff` found. ``equal`` is True when nothing differs beyond the tolerances."""

    a: str
    b: str
    rtol: float
    atol: float
    only_in_a: list[int] = field(default_factory=list)
    only_in_b: list[int] = field(default_factory=list)
    status_changes: pd.DataFrame = field(default_factory=pd.DataFrame)
    columns: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=_COLUMNS))
    notes: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not (self.only_in_a or self.only_in_b or len(self.status_changes) or self.notes
                    or (self.columns["differing"] > 0).any())

    def __str__(self) -> str:
        lines = [f"A: {self.a}", f"B: {self.b}"]
        for side, ids in (("A", self.only_in_a), ("B", self.only_in_b)):
            if ids:
                lines.append(f"runs only in {side} ({len(ids)}): {_ids(ids)}")
        for run_id, row in self.status_changes.iterrows():
            why = row["error_b"] if row["status_b"] != OK else row["error_a"]
            lines.append(f"run {run_id}: {row['status_a']} -> {row['status_b']}" + (f" ({_short(why)})" if why else ""))
        lines += self.notes
        differing = self.columns[self.columns["differing"] > 0]
        lines.append(f"{len(self.columns)} columns compared (rtol={self.rtol:g}, atol={self.atol:g}); "
                     f"{len(differing)} differ beyond the tolerance")
        for _, row in self.columns.iterrows():
            mark = "DIFFERS" if row["differing"] else "ok     "
            if pd.notna(row["max_abs"]) and row["max_abs"] > 0:
                where = (f"max abs {row['max_abs']:.6g} (run {row['run_abs']}), max rel {row['max_rel']:.3g} "
                         f"(run {row['run_rel']})")
            else:
                where = f"first difference in run {row['run_abs']}" if row["differing"] else "identical"
            count = f"  [{row['differing']} of {row['rows']} rows]" if row["differing"] else ""
            lines.append(f"  {mark} {row['report']}.{row['column']}: {where}{count}")
        lines.append("equal within tolerance" if self.equal else "NOT equal")
        return "\n".join(lines)


def diff(a: Any, b: Any, rtol: float = 1e-9, atol: float = 0.0) -> SweepDiff:
    """Compare sweep ``b`` against sweep ``a`` (Sweeps, out folders or bundles) run over the same design.

    A value is within tolerance when ``|a - b| <= atol + rtol * max(|a|, |b|)``. Raises DesignMismatch when the
    designs differ.

    >>> diff("baseline/", "new/", rtol=1e-6).equal
    """
    from ..sweep import Sweep

    names = [x.out if isinstance(x, Sweep) else os.fspath(x) for x in (a, b)]  # a bundle by its own name
    a = a if isinstance(a, Sweep) else Sweep.from_manifest(a)
    b = b if isinstance(b, Sweep) else Sweep.from_manifest(b)
    problem = design_difference(a.design.to_dict(), b.design.to_dict())
    if problem:
        raise DesignMismatch(f"{names[0]} and {names[1]} ran different designs: {problem}; compare sweeps of one "
                             "design")
    result = SweepDiff(names[0], names[1], rtol, atol)
    ea, eb = a.manifest.entries, b.manifest.entries
    result.only_in_a = sorted(set(ea) - set(eb))
    result.only_in_b = sorted(set(eb) - set(ea))
    changed = sorted(i for i in set(ea) & set(eb) if ea[i].get("status") != eb[i].get("status"))
    result.status_changes = pd.DataFrame(
        [{"run_id": i, "status_a": ea[i].get("status"), "status_b": eb[i].get("status"),
          "error_a": ea[i].get("error"), "error_b": eb[i].get("error")} for i in changed],
        columns=["run_id", "status_a", "status_b", "error_a", "error_b"]).set_index("run_id")
    both_ok = sorted(i for i in set(ea) & set(eb) if ea[i].get("status") == OK == eb[i].get("status"))
    rows = []
    for report in dict.fromkeys(a.reports + b.reports):
        if report not in a.reports or report not in b.reports:
            result.notes.append(f"report {report} is only in {'A' if report in a.reports else 'B'}")
            continue
        rows += _compare_tables(_rows(a, report, both_ok), _rows(b, report, both_ok), report, rtol, atol,
                                result.notes)
    collected = [c for c in a.collect if c in b.collect]
    if collected:
        sa, sb = a.summary().loc[both_ok, collected], b.summary().loc[both_ok, collected]
        sa.index = sb.index = pd.MultiIndex.from_arrays([both_ok, [0] * len(both_ok)], names=["run_id", "row"])
        rows += _compare_tables(sa, sb, COLLECTED, rtol, atol, result.notes)
    for name in set(a.collect) ^ set(b.collect):
        result.notes.append(f"collected value {name} is only in {'A' if name in a.collect else 'B'}")
    result.columns = pd.DataFrame(rows, columns=_COLUMNS)
    return result


def design_difference(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """How two designs (``Design.to_dict()``) differ, in words; None when they are the same."""
    if a == b:
        return None
    if a.get("kind") != b.get("kind"):
        return f"A is a {a.get('kind')} design, B a {b.get('kind')} design"
    if a.get("kind") == "grid":
        ga, gb = a["grid"], b["grid"]
        if list(ga) != list(gb):
            return f"A sweeps {', '.join(ga)}; B sweeps {', '.join(gb)}"
        for name in ga:
            if ga[name] != gb[name]:
                return f"{name} takes {_values(ga[name])} in A but {_values(gb[name])} in B"
    rows_a, rows_b = a.get("rows"), b.get("rows")
    if isinstance(rows_a, list) and isinstance(rows_b, list):
        if len(rows_a) != len(rows_b):
            return f"A has {len(rows_a)} runs, B {len(rows_b)}"
        first = next(i for i, (x, y) in enumerate(zip(rows_a, rows_b)) if x != y)
        return f"run {first} is {rows_a[first]} in A but {rows_b[first]} in B"
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return f"their {', '.join(changed)} differ"


def _rows(sweep: Any, report: str, runs: list[int]) -> pd.DataFrame:
    frame = sweep.results(report=report)
    frame = frame[frame.index.get_level_values("run_id").isin(runs)]
    columns = [c for c in frame.columns if c not in sweep.design.parameters and c != "status"]
    frame = frame[columns].reset_index(level="time", drop=True)
    frame["row"] = frame.groupby(level="run_id").cumcount()
    return frame.set_index("row", append=True)


def _compare_tables(a: pd.DataFrame, b: pd.DataFrame, report: str, rtol: float, atol: float,
                    notes: list[str]) -> list[dict[str, Any]]:
    counts_a = a.groupby(level="run_id").size()
    counts_b = b.groupby(level="run_id").size().reindex(counts_a.index, fill_value=0)
    uneven = counts_a.index[counts_a != counts_b]
    if len(uneven):
        first = uneven[0]
        notes.append(f"report {report}: {len(uneven)} runs have a different number of rows (run {first}: "
                     f"{counts_a[first]} in A, {counts_b[first]} in B)")
    for side, frame, other in (("A", a, b), ("B", b, a)):
        for column in frame.columns.difference(other.columns):
            notes.append(f"report {report}: column {column} is only in {side}")
    common = a.index.intersection(b.index)
    rows = []
    for column in [c for c in a.columns if c in b.columns]:
        rows.append(_compare_column(a.loc[common, column], b.loc[common, column], report, column, rtol, atol))
    return rows


def _compare_column(a: pd.Series, b: pd.Series, report: str, column: str, rtol: float,
                    atol: float) -> dict[str, Any]:
    row: dict[str, Any] = {"report": report, "column": column, "rows": len(a), "differing": 0, "max_abs": np.nan,
                           "run_abs": None, "max_rel": np.nan, "run_rel": None}
    if len(a) == 0:
        return row
    runs = a.index.get_level_values("run_id").to_numpy()
    if pd.api.types.is_datetime64_any_dtype(a) and pd.api.types.is_datetime64_any_dtype(b):
        origin = a.min()
        a, b = (a - origin).dt.total_seconds(), (b - origin).dt.total_seconds()
    if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
        x, y = a.to_numpy(float), b.to_numpy(float)
        both_nan = np.isnan(x) & np.isnan(y)
        absolute = np.where(both_nan, 0.0, np.abs(x - y))
        absolute = np.where(np.isnan(absolute), np.inf, absolute)  # a value in one sweep, none in the other
        scale = np.maximum(np.abs(x), np.abs(y))
        relative = np.divide(absolute, scale, out=np.zeros_like(absolute), where=scale > 0)
        relative = np.where((scale == 0) & (absolute > 0), np.inf, relative)
        outside = absolute > atol + rtol * np.nan_to_num(scale, nan=0.0)
        i, j = int(np.argmax(absolute)), int(np.argmax(relative))
        row.update(differing=int(outside.sum()), max_abs=float(absolute[i]), run_abs=int(runs[i]),
                   max_rel=float(relative[j]), run_rel=int(runs[j]))
        return row
    unequal = (a.astype(str) != b.astype(str)).to_numpy()
    if unequal.any():
        row.update(differing=int(unequal.sum()), run_abs=int(runs[np.argmax(unequal)]))
    return row


def _values(values: list[Any]) -> str:
    shown = ", ".join(map(str, values[:4])) + (", ..." if len(values) > 4 else "")
    return f"{len(values)} values [{shown}]"


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids[:20])) + (f", ... ({len(ids) - 20} more)" if len(ids) > 20 else "")


def _short(text: str) -> str:
    first = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return first if len(first) <= 100 else first[:97] + "..."


__all__ = ["DesignMismatch", "SweepDiff", "design_difference", "diff"]
