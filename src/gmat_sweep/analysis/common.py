"""Reading one output of a sweep for the analyses: a collected value or any summary column, ok runs only."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd


class AnalysisError(ValueError):
    """The analysis cannot be made from this sweep as asked; the message says why and what to do."""


def as_sweep(sweep_or_out: Any) -> Any:
    """A Sweep from a Sweep, a DataFrame returned by ``sweep()``/``monte_carlo()`` or an out folder."""
    from ..sweep import Sweep

    if isinstance(sweep_or_out, (str, os.PathLike)):
        return Sweep.from_manifest(sweep_or_out)
    if isinstance(sweep_or_out, pd.DataFrame) and "sweep" in sweep_or_out.attrs:
        return sweep_or_out.attrs["sweep"].sweep
    if hasattr(sweep_or_out, "summary") and hasattr(sweep_or_out, "design"):
        return getattr(sweep_or_out, "sweep", sweep_or_out)
    raise AnalysisError(f"expected a Sweep, the table a sweep returned, or an out folder; got {type(sweep_or_out)}")


def output_values(sweep: Any, summary: pd.DataFrame, output: str, report: str | None = None) -> pd.Series:
    """``output`` for every run of the summary, as floats: a collected value or summary column, else a column of
    ``report`` (default: the script's first ReportFile) at each run's last row. Unknown names are refused."""
    if report is None and output in summary.columns:
        column = summary[output]
    else:
        frame = sweep.results(report=report)
        if output not in frame.columns:
            names = [*sweep.collect, *(c for c in frame.columns if c not in summary.columns)]
            raise AnalysisError(f"{output!r} is neither a collected value nor a report column of {sweep.out}; choose "
                                f"one of {', '.join(map(str, names)) or '(none: run with collect=[...])'}")
        column = frame[output].groupby(level="run_id").last().reindex(summary.index)
    try:
        return pd.to_numeric(column, errors="raise").astype(float)
    except (TypeError, ValueError):
        raise AnalysisError(f"{output!r} is not numeric, so it has no statistics") from None


def ok_values(sweep: Any, output: str, report: str | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """The summary rows of ok runs (run-id order) and ``output`` for them."""
    summary = sweep.summary()
    values = output_values(sweep, summary, output, report)
    ok = (summary["status"] == "ok").to_numpy() & np.isfinite(values.to_numpy())
    if not ok.any():
        raise AnalysisError(f"no finished ok run of {sweep.out} has a value of {output!r} yet")
    return summary[ok], values.to_numpy()[ok]
