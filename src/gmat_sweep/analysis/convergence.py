"""Is n enough? Each statistic of an output as a function of the number of runs, with a 95 % interval.

``convergence(sweep, output)`` returns a DataFrame indexed by ``n``, the number of finished ok runs counted in
run-id order (so it reads the same whichever order the runs finished in), with three columns per statistic:
``<stat>``, ``<stat>_lo`` and ``<stat>_hi`` (a 95 % confidence interval). Statistics: ``mean`` (Student t
interval), ``std`` (chi-square interval), ``median`` and percentiles ``pNN`` such as ``p95``, ``p99.9``
(distribution-free order-statistic interval from the binomial distribution: ``NaN`` where n is still too small
to bound it on that side). ``output`` is a collected value or summary column, else a column of ``report``
(default: the script's first ReportFile) at each run's last row. Rows are at up to ``points`` values of n from
2, spaced geometrically, always ending at every ok run. The intervals assume independent runs: exact for Monte
Carlo, conservative for Latin hypercube and Sobol' designs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .common import AnalysisError, as_sweep, ok_values

LEVEL = 0.95
_PERCENTILE = re.compile(r"^p(\d+(\.\d+)?)$")


def convergence(sweep_or_out: Any, output: str, stats: Sequence[str] = ("mean", "std", "p95", "p99"),
                points: int = 100, report: str | None = None) -> pd.DataFrame:
    """Each statistic of ``output`` after the first n ok runs, with a 95 % confidence interval.

    >>> convergence("sweeps/mc", "Sat.Earth.SMA").tail(3)   # columns mean, mean_lo, mean_hi, std, ..., p99_hi
    """
    _, values = ok_values(as_sweep(sweep_or_out), output, report)
    checked = [_check_stat(s) for s in stats]
    total = len(values)
    # From n = 2: one run has no spread and no interval.
    first = min(2, total)
    ns = np.unique(np.geomspace(first, total, num=min(points, total - first + 1)).round().astype(int))
    ns = np.union1d(ns, [total])
    rows = [_row(values[:n], checked) for n in ns]
    columns = [f"{s}{suffix}" for s, _ in checked for suffix in ("", "_lo", "_hi")]
    return pd.DataFrame(rows, index=pd.Index(ns, name="n"), columns=columns)


def _check_stat(stat: str) -> tuple[str, float | None]:
    if stat in ("mean", "std"):
        return stat, None
    if stat == "median":
        return stat, 0.5
    match = _PERCENTILE.match(stat)
    if match and 0 < float(match.group(1)) < 100:
        return stat, float(match.group(1)) / 100
    raise AnalysisError(f"unknown statistic {stat!r}: use mean, std, median or a percentile such as p95 or p99.9")


def _row(x: np.ndarray, stats: Sequence[tuple[str, float | None]]) -> list[float]:
    from scipy import stats as st

    n = len(x)
    alpha = 1 - LEVEL
    out: list[float] = []
    for name, q in stats:
        if name == "mean":
            mean = float(np.mean(x))
            half = float(st.t.ppf(1 - alpha / 2, n - 1) * np.std(x, ddof=1) / np.sqrt(n)) if n > 1 else np.nan
            out += [mean, mean - half, mean + half]
        elif name == "std":
            if n < 2:
                out += [np.nan] * 3
                continue
            s = float(np.std(x, ddof=1))
            out += [s, s * np.sqrt((n - 1) / st.chi2.ppf(1 - alpha / 2, n - 1)),
                    s * np.sqrt((n - 1) / st.chi2.ppf(alpha / 2, n - 1))]
        else:
            ordered = np.sort(x)
            # Order statistics x_(l) <= x_q <= x_(u) with binomial coverage >= 95 % (1-based ranks).
            lower = int(st.binom.ppf(alpha / 2, n, q))
            upper = int(st.binom.ppf(1 - alpha / 2, n, q)) + 1
            out += [float(np.quantile(x, q)), float(ordered[lower - 1]) if lower >= 1 else np.nan,
                    float(ordered[upper - 1]) if upper <= n else np.nan]
    return out
