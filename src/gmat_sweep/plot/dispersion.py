"""Plots of how runs spread: corner plots of inputs against outputs, histograms, and running statistics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._data import Columns, PlotError, open_sweep
from ._figure import FAILED_COLOUR, Figure, new_figure

MAX_COLUMNS = 8
STATS = ("mean", "std", "p95", "p99")


def scatter_matrix(s: Any, columns: Sequence[str], report: str | None = None, reduce: str = "last") -> Figure:
    """A corner plot of per-run values (parameters and report columns' final values): histograms on the diagonal,
    each pair below it; failed runs are red crosses where both values are known (inputs).

    >>> fig = scatter_matrix("sweeps/mc", ["Sat.SMA", "Sat.Cd", "Sat.Earth.Altitude"])
    """
    sweep = open_sweep(s)
    table = Columns(sweep)
    columns = list(columns)
    if len(columns) < 2:
        raise PlotError("scatter_matrix needs at least two columns; for one, use histogram(s, column)")
    if len(columns) > MAX_COLUMNS:
        raise PlotError(f"{len(columns)} columns make a corner plot too small to read; give at most {MAX_COLUMNS}")
    data = pd.DataFrame({c: table.numeric(c, report, reduce) for c in columns})
    ok = (table.status() == "ok").to_numpy()
    n = len(columns)
    size = max(4.8, 1.7 * n)
    fig = new_figure(size, size)
    axes = fig.subplots(n, n, squeeze=False)
    for i, row_name in enumerate(columns):
        for j, col_name in enumerate(columns):
            ax = axes[i][j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                values = data[col_name][ok].dropna()
                ax.hist(values, bins="auto" if len(values) > 1 else 1, color="#1f77b4", alpha=0.8)
                ax.set_yticks([])
            else:
                xv, yv = data[col_name].to_numpy(float), data[row_name].to_numpy(float)
                ax.scatter(xv[ok], yv[ok], s=8, color="#1f77b4", alpha=0.7, linewidths=0)
                bad = ~ok & np.isfinite(xv) & np.isfinite(yv)
                if bad.any():
                    ax.scatter(xv[bad], yv[bad], s=18, marker="x", color=FAILED_COLOUR)
            if i == n - 1:
                ax.set_xlabel(col_name, fontsize="small")
            else:
                ax.tick_params(labelbottom=False)
            if j == 0 and i > 0:
                ax.set_ylabel(row_name, fontsize="small")
            elif j > 0 or i == 0:
                ax.tick_params(labelleft=False)
            ax.tick_params(labelsize="x-small")
    fig.suptitle(f"{int(ok.sum())} ok runs" + (f", {int((~ok).sum())} not ok" if (~ok).any() else ""),
                 fontsize="medium")
    return fig


def histogram(s: Any, column: str, report: str | None = None, reduce: str = "last", bins: Any = "auto",
              percentiles: Sequence[float] = (5, 50, 95, 99)) -> Figure:
    """The distribution of a per-run value over the ok runs, with percentiles marked.

    >>> fig = histogram("sweeps/mc", "Sat.Earth.Altitude")
    """
    sweep = open_sweep(s)
    table = Columns(sweep)
    values = table.numeric(column, report, reduce)
    values = values[(table.status() == "ok")].dropna()
    if values.empty:
        raise PlotError(f"no ok run has a value of {column!r}: nothing to draw; see failures(s)")
    fig = new_figure(6.4, 4.0)
    ax = fig.add_subplot()
    ax.hist(values, bins=bins if len(values) > 1 else 1, color="#1f77b4", alpha=0.75)
    marks = np.percentile(values.to_numpy(float), list(percentiles))
    for p, value in zip(percentiles, marks):
        ax.axvline(value, color="#d62728" if p >= 90 else "#333333", linestyle="--", linewidth=1)
        ax.annotate(f"p{p:g}\n{value:.6g}", (value, 1.0), xycoords=("data", "axes fraction"), fontsize="x-small",
                    ha="left", va="top", xytext=(2, -2), textcoords="offset points")
    ax.set_xlabel(column if reduce == "last" else f"{column} ({reduce})")
    ax.set_ylabel("runs")
    ax.set_title(f"{column}: {len(values)} ok runs", fontsize="medium")
    return fig


def convergence(s: Any, output: str, stats: Sequence[str] = STATS, report: str | None = None,
                table: pd.DataFrame | None = None) -> Figure:
    """How each statistic of ``output`` settles as runs are added, with its confidence band; computed by
    ``gmat_sweep.convergence`` unless ``table`` (indexed by ``n``, with ``<stat>``, ``<stat>_lo``, ``<stat>_hi``
    columns) is given.

    >>> fig = convergence("sweeps/mc", "Sat.Earth.Altitude", stats=("mean", "p99"))
    """
    stats = list(stats)
    if table is None:
        table = _running_statistics(s, output, stats, report)
    missing = [c for stat in stats for c in (stat, f"{stat}_lo", f"{stat}_hi") if c not in table.columns]
    if missing:
        raise PlotError(f"the convergence table lacks {', '.join(missing)}; it has "
                        f"{', '.join(map(str, table.columns))}")
    fig = new_figure(6.4, 1.6 + 1.5 * len(stats))
    axes = fig.subplots(len(stats), 1, sharex=True, squeeze=False)[:, 0]
    n = table.index.to_numpy(float)
    for ax, stat in zip(axes, stats):
        ax.fill_between(n, table[f"{stat}_lo"], table[f"{stat}_hi"], color="#1f77b4", alpha=0.25, linewidth=0,
                        label="confidence band")
        ax.plot(n, table[stat], color="#0b3c68", linewidth=1.2, label=stat)
        final = table[stat].dropna()
        if len(final):
            ax.axhline(final.iloc[-1], color="0.4", linestyle=":", linewidth=0.8)
        ax.set_ylabel(stat)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("finished ok runs n")
    axes[0].set_title(f"convergence of {output}", fontsize="medium")
    axes[0].legend(fontsize="x-small", loc="upper right")
    return fig


def _running_statistics(s: Any, output: str, stats: list[str], report: str | None) -> pd.DataFrame:
    import gmat_sweep

    compute = getattr(gmat_sweep, "convergence", None)
    if not callable(compute):
        raise PlotError("plot.convergence needs gmat_sweep.convergence (running statistics of a dispersion), which "
                        "this gmat-sweep does not have; upgrade gmat-sweep, or pass table= a DataFrame indexed by n "
                        "with <stat>, <stat>_lo and <stat>_hi columns")
    sweep = open_sweep(s)
    return compute(sweep, output, stats=tuple(stats), **({"report": report} if report else {}))
