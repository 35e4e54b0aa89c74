"""Plots of report columns over time across runs: percentile bands, and ground tracks."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ._data import Columns, PlotError, open_sweep, time_unit
from ._figure import Figure, new_figure

#: Below this many runs, every run is also drawn as a thin line under the bands.
THIN_RUNS = 30
SAMPLES = 200


def band(s: Any, column: str, report: str | None = None, percentiles: tuple[float, float, float, float] =
         (5, 25, 75, 95), thin: int = THIN_RUNS) -> Figure:
    """A report column over time across runs: the median, the 25-75 and 5-95 percentile bands, and every run as
    a thin line when there are at most ``thin`` runs. Time is elapsed time from each run's first row.

    >>> fig = band("sweeps/leo", "Sat.Earth.Altitude")
    """
    sweep = open_sweep(s)
    rows = Columns(sweep).series(column, report)
    runs = [g for _, g in rows.groupby("run_id") if len(g) >= 1]
    if not runs:
        raise PlotError(f"no run finished ok with rows of {column!r}: nothing to draw; see failures(s)")
    span = max(float(g["elapsed"].max()) for g in runs)
    scale, unit = time_unit(span) if rows.attrs.get("timed") else (1.0, "row")
    grid = np.linspace(0.0, span, SAMPLES) if span > 0 else np.zeros(1)
    stack = np.full((len(runs), len(grid)), np.nan)
    for number, g in enumerate(runs):
        t, v = g["elapsed"].to_numpy(float), g["value"].to_numpy(float)
        inside = (grid >= t.min()) & (grid <= t.max())
        stack[number, inside] = np.interp(grid[inside], t, v)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a time only some runs reach
        low, q1, q3, high = (np.nanpercentile(stack, p, axis=0) for p in percentiles)
        median = np.nanmedian(stack, axis=0)
    fig = new_figure(6.4, 4.2)
    ax = fig.add_subplot()
    x = grid / scale
    if len(runs) <= thin:
        for g in runs:
            ax.plot(g["elapsed"] / scale, g["value"], color="0.55", linewidth=0.5, alpha=0.8)
    ax.fill_between(x, low, high, color="#1f77b4", alpha=0.18, linewidth=0,
                    label=f"p{percentiles[0]:g}-p{percentiles[3]:g}")
    ax.fill_between(x, q1, q3, color="#1f77b4", alpha=0.35, linewidth=0,
                    label=f"p{percentiles[1]:g}-p{percentiles[2]:g}")
    ax.plot(x, median, color="#0b3c68", linewidth=1.5, label="median")
    ax.set_xlabel(f"elapsed [{unit}]" if unit != "row" else "report row")
    ax.set_ylabel(column)
    ax.set_title(f"{column}: {len(runs)} runs", fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def groundtrack(s: Any, report: str | None = None, lat: str | None = None, lon: str | None = None,
                thin: int = THIN_RUNS) -> Figure:
    """Every run's latitude/longitude on one plain lat/lon frame (columns ending in ``.Latitude`` and
    ``.Longitude`` unless named); a track is broken where it crosses the date line.

    >>> fig = groundtrack("sweeps/leo")
    """
    sweep = open_sweep(s)
    columns = Columns(sweep)
    lat = lat or _find_suffix(columns, report, ".Latitude")
    lon = lon or _find_suffix(columns, report, ".Longitude")
    lats, lons = columns.series(lat, report), columns.series(lon, report)
    if lats.empty:
        raise PlotError(f"no run finished ok with rows of {lat!r}: nothing to draw; see failures(s)")
    fig = new_figure(7.2, 3.9)
    ax = fig.add_subplot()
    ids = sorted(lats["run_id"].unique())
    colours = _run_colours(len(ids))
    for number, run_id in enumerate(ids):
        a = lats[lats["run_id"] == run_id]["value"].to_numpy(float)
        o = lons[lons["run_id"] == run_id]["value"].to_numpy(float)
        o = (o + 180.0) % 360.0 - 180.0
        breaks = np.flatnonzero(np.abs(np.diff(o)) > 180.0) + 1
        a, o = np.insert(a, breaks, np.nan), np.insert(o, breaks, np.nan)
        width = 0.9 if len(ids) <= thin else 0.4
        ax.plot(o, a, color=colours[number], linewidth=width, alpha=0.9 if len(ids) <= thin else 0.35)
        ax.plot(o[:1], a[:1], marker="o", markersize=3, color=colours[number])
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_xticks(range(-180, 181, 60))
    ax.set_yticks(range(-90, 91, 30))
    ax.set_aspect("equal")
    ax.grid(alpha=0.35)
    ax.set_xlabel(f"{lon} [deg]")
    ax.set_ylabel(f"{lat} [deg]")
    ax.set_title(f"ground tracks of {len(ids)} runs (dot: start)", fontsize="medium")
    return fig


def _find_suffix(columns: Columns, report: str | None, suffix: str) -> str:
    for name in [report] if report else columns.sweep.reports:
        if name not in columns.sweep.reports:
            columns.find("", name)  # raises: names the reports there are
        found = [c for c in columns.report_columns(name) if c.endswith(suffix)]
        if found:
            return found[0]
    raise PlotError(f"no report column ends in {suffix!r}; add e.g. Sat.Earth{suffix} to a ReportFile's Add list, "
                    f"or name the columns with lat=/lon= (the sweep has {columns.describe(report)})")


def _run_colours(count: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(i / max(1, count - 1) * 0.9) for i in range(count)]
