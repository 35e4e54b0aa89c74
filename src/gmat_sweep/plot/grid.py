"""Plots over the design's parameters: a value as a heat map over a 2-D grid, as lines along one parameter, and
where the failed runs are."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap

from ..records import FAILED
from ..results import MISSING
from ._data import Columns, PlotError, is_number, open_sweep, positions
from ._figure import FAILED_COLOUR, MISSING_COLOUR, OK_COLOUR, Figure, new_figure, status_legend

MAX_LINES = 12


def heatmap(s: Any, x: str, y: str, z: str, report: str | None = None, reduce: str = "last",
            where: Mapping[str, Any] | None = None, contours: bool = True, cmap: str = "viridis") -> Figure:
    """``z`` (a report column's final value, or any per-run value) over the grid of parameters ``x`` and ``y``;
    failed runs are crossed out, missing ones circled. Other swept parameters are fixed with ``where``.

    >>> fig = heatmap("sweeps/leo", x="Sat.SMA", y="Sat.INC", z="Sat.Earth.Altitude")
    """
    sweep = open_sweep(s)
    columns = Columns(sweep)
    rows = _grid_rows(sweep, (x, y), where, "heatmap", z)
    values = columns.numeric(z, report, reduce)
    if values.loc[rows.index].notna().sum() == 0:
        raise PlotError(f"no run of these grid points has a value of {z!r} (none finished ok): nothing to draw; "
                        "see failures(s) for where and why runs failed")
    xkeys, ykeys = sorted(set(rows[x]), key=_order), sorted(set(rows[y]), key=_order)
    (xs, xlabels), (ys, ylabels) = positions(xkeys), positions(ykeys)
    grid = np.full((len(ykeys), len(xkeys)), np.nan)
    status = np.full(grid.shape, MISSING, dtype=object)
    for run_id, row in rows.iterrows():
        i, j = ykeys.index(row[y]), xkeys.index(row[x])
        grid[i, j] = values.loc[run_id]
        status[i, j] = row["status"]
    fig = new_figure(6.4, 4.8)
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(_edges(xs), _edges(ys), np.ma.masked_invalid(grid), cmap=cmap, shading="flat")
    fig.colorbar(mesh, ax=ax, label=_value_label(z, report, reduce))
    if contours and xlabels is None and ylabels is None and min(grid.shape) >= 3 and np.isfinite(grid).sum() >= 4 \
            and np.nanmax(grid) > np.nanmin(grid):
        lines = ax.contour(xs, ys, np.ma.masked_invalid(grid), colors="white", linewidths=0.7, levels=6)
        ax.clabel(lines, fontsize="x-small", fmt="%.4g")
    gx, gy = np.meshgrid(xs, ys)
    failed, missing = status == FAILED, status == MISSING
    if failed.any():  # a failed cell is tinted, not left blank like a point outside the grid
        ax.pcolormesh(_edges(xs), _edges(ys), np.ma.masked_where(~failed, np.ones(grid.shape)),
                      cmap=ListedColormap(["#f6d5d5"]), shading="flat")
    ax.scatter(gx[failed], gy[failed], marker="x", s=60, color=FAILED_COLOUR, zorder=3)
    ax.scatter(gx[missing], gy[missing], marker="o", s=60, facecolors="none", edgecolors=MISSING_COLOUR, zorder=3)
    _axis(ax, "x", x, xs, xlabels)
    _axis(ax, "y", y, ys, ylabels)
    ax.set_title(f"{z} over {x} x {y}", fontsize="medium")
    status_legend(ax, int(failed.sum()), int(missing.sum()))
    return fig


def line(s: Any, x: str, y: str, report: str | None = None, reduce: str = "last",
         where: Mapping[str, Any] | None = None) -> Figure:
    """``y`` (a per-run value) against the parameter ``x``, one line per value of the other swept parameters;
    the ``x`` of failed runs are marked along the bottom.

    >>> fig = line("sweeps/leo", x="Sat.SMA", y="Sat.Earth.Altitude")
    """
    sweep = open_sweep(s)
    columns = Columns(sweep)
    if x not in sweep.design.parameters:
        raise PlotError(f"x={x!r} is not a parameter of this sweep; its parameters are "
                        f"{', '.join(sweep.design.parameters)}")
    values = columns.numeric(y, report, reduce)
    table = columns.summary[sweep.design.parameters + ["status"]].copy()
    table["_value"] = values
    for name, value in (where or {}).items():
        table = table[table[name] == value]
    xs_all, labels = positions(list(table[x]))
    table["_x"] = xs_all
    others = [p for p in sweep.design.parameters if p != x and table[p].astype(str).nunique() > 1]
    groups = list(table.groupby([table[p].astype(str) for p in others], sort=False)) if others else [((), table)]
    if len(groups) > MAX_LINES:
        raise PlotError(f"{len(groups)} lines (one per value of {', '.join(others)}) are too many to read; fix some "
                        f"with where={{{others[0]!r}: ...}}, or draw heatmap(s, {x!r}, {others[0]!r}, {y!r})")
    fig = new_figure(6.4, 4.2)
    ax = fig.add_subplot()
    for key, group in groups:
        group = group.sort_values("_x")
        label = ", ".join(f"{p}={v}" for p, v in zip(others, key if isinstance(key, tuple) else (key,)))
        ax.plot(group["_x"], group["_value"], marker="o", markersize=3, label=label or None)
    bad = table[table["status"] != "ok"]
    if len(bad):
        ax.scatter(bad["_x"], np.zeros(len(bad)), transform=ax.get_xaxis_transform(), marker="x",
                   color=FAILED_COLOUR, clip_on=False, label=f"not ok ({len(bad)})", zorder=3)
        low, high = float(np.min(xs_all)), float(np.max(xs_all))  # autoscale ignores the marks along the axis
        pad = 0.05 * (high - low or 1.0)
        ax.set_xlim(low - pad, high + pad)
    _axis(ax, "x", x, xs_all, labels)
    ax.set_ylabel(_value_label(y, report, reduce))
    ax.grid(alpha=0.3)
    if len(groups) > 1 or len(bad):
        ax.legend(fontsize="small")
    return fig


def failures(s: Any, x: str | None = None, y: str | None = None) -> Figure:
    """Where in the design the failed runs are, coloured by GMAT's error; ok runs grey, missing runs circled.

    >>> fig = failures("sweeps/leo")
    """
    sweep = open_sweep(s)
    columns = Columns(sweep)
    params = sweep.design.parameters
    for name in (x, y):
        if name is not None and name not in params:
            raise PlotError(f"{name!r} is not a parameter of this sweep; its parameters are {', '.join(params)}")
    varying = [p for p in params if columns.summary[p].astype(str).nunique() > 1] or params
    x = x or varying[0]
    y = y or next((p for p in varying if p != x), None)
    summary = columns.summary
    xs, xlabels = positions(list(summary[x]))
    if y is None:
        ys, ylabels, ylabel = summary.index.to_numpy(dtype=float), None, "run id"
    else:
        (ys, ylabels), ylabel = positions(list(summary[y])), y
    fig = new_figure(6.4, 4.8)
    ax = fig.add_subplot()
    status = summary["status"].to_numpy()
    ok = status == "ok"
    ax.scatter(xs[ok], ys[ok], s=14, color=OK_COLOUR, label=f"ok ({ok.sum()})")
    missing = status == MISSING
    if missing.any():
        ax.scatter(xs[missing], ys[missing], s=30, facecolors="none", edgecolors=MISSING_COLOUR,
                   label=f"missing ({missing.sum()})")
    errors = columns.errors()
    kinds = errors.value_counts().index.tolist()
    colours = [FAILED_COLOUR, "#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
    for number, kind in enumerate(kinds):
        ids = errors.index[errors == kind] if number < len(colours) - 1 else errors.index[errors.isin(kinds[number:])]
        chosen = summary.index.get_indexer(ids)
        label = kind if number < len(colours) - 1 else f"other errors ({len(kinds) - number} kinds)"
        ax.scatter(xs[chosen], ys[chosen], marker="X", s=50, color=colours[number], label=f"{label} ({len(ids)})")
        if number == len(colours) - 1:
            break
    _axis(ax, "x", x, xs, xlabels)
    _axis(ax, "y", ylabel, ys, ylabels)
    ax.set_title(f"{len(errors)} failed of {len(summary)} runs" if len(errors) else
                 f"no failed runs ({ok.sum()} ok of {len(summary)})", fontsize="medium")
    ax.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
    return fig


def _grid_rows(sweep: Any, axes: Sequence[str], where: Mapping[str, Any] | None, plot: str,
               z: str) -> pd.DataFrame:
    """The summary rows of the grid points the plot shows; a design that does not fit says which plot does."""
    design, params = sweep.design, sweep.design.parameters
    if design.kind != "grid":
        raise PlotError(f"{plot} needs a grid sweep; {sweep.out} is a {design.kind or 'custom'} design of "
                        f"{len(design)} runs: use scatter_matrix(s, [{', '.join(map(repr, params))}, {z!r}]) or "
                        f"histogram(s, {z!r}) instead")
    swept = [p for p in params if len(design.grid[p]) > 1]
    if len(swept) >= 2:
        for name in axes:
            if name not in params:
                raise PlotError(f"{name!r} is not a parameter of this grid; its parameters are {', '.join(params)}")
    if len(set(axes)) != len(axes):
        raise PlotError(f"{plot} needs two different parameters for x and y")
    flat = [a for a in axes if a not in swept]
    if flat or len(swept) < 2:
        along = next((p for p in swept), params[0])
        raise PlotError(f"{plot} needs a 2-D grid; this grid sweeps only {', '.join(swept) or 'no parameter'}"
                        f"{' (not ' + ', '.join(flat) + ')' if flat else ''}: use line(s, {along!r}, "
                        f"{z!r}) instead")
    summary = sweep.summary()
    fixed = dict(where or {})
    extra = [p for p in swept if p not in axes and p not in fixed]
    if extra:
        raise PlotError(f"the grid also sweeps {', '.join(extra)}; pick one value of each with "
                        f"where={{{extra[0]!r}: {design.grid[extra[0]][0]!r}}}")
    for name, value in fixed.items():
        if name not in params or value not in design.grid[name]:
            raise PlotError(f"where={{{name!r}: {value!r}}} is not a point of the grid "
                            f"({name} takes {design.grid.get(name, 'no values: not a parameter')})")
        summary = summary[summary[name] == value]
    return summary


def _order(value: Any) -> Any:
    return (0, value, "") if is_number(value) else (1, 0, str(value))


def _edges(centres: np.ndarray) -> np.ndarray:
    if len(centres) == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    middle = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[2 * centres[0] - middle[0]], middle, [2 * centres[-1] - middle[-1]]])


def _axis(ax: Any, which: str, name: str, values: np.ndarray, labels: list[Any] | None) -> None:
    getattr(ax, f"set_{which}label")(name)
    if labels is not None:
        getattr(ax, f"set_{which}ticks")(range(len(labels)), labels)


def _value_label(column: str, report: str | None, reduce: str) -> str:
    return column if reduce == "last" else f"{column} ({reduce})"
