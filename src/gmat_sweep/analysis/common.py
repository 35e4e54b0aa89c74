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


def output_column(summary: pd.DataFrame, output: str, collect: list[str]) -> pd.Series:
    """``output`` for every run of the summary, as floats; unknown names are refused naming the choices."""
    if output not in summary.columns:
        raise AnalysisError(f"{output!r} is not a collected value or summary column of this sweep; choose one of "
                            f"{', '.join(collect) or '(nothing collected: run with collect=[...])'}, duration")
    try:
        return pd.to_numeric(summary[output], errors="raise").astype(float)
    except (TypeError, ValueError):
        raise AnalysisError(f"{output!r} is not numeric, so it has no statistics") from None


def ok_values(sweep: Any, output: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The summary rows of ok runs (run-id order) and ``output`` for them."""
    summary = sweep.summary()
    values = output_column(summary, output, sweep.collect)
    ok = (summary["status"] == "ok").to_numpy() & np.isfinite(values.to_numpy())
    if not ok.any():
        raise AnalysisError(f"no finished ok run of {sweep.out} has a value of {output!r} yet")
    return summary[ok], values.to_numpy()[ok]
