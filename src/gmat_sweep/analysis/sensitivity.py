"""Which perturbed parameter drives an output: Sobol' indices (Saltelli design) or rank correlations.

``sensitivity(sweep, output)`` returns one row per perturbed path, indexed by the path:

* ``method="sobol"`` (a ``saltelli`` sweep): columns ``S1``, ``S1_conf``, ``ST``, ``ST_conf``: first-order and
  total Sobol' indices and the half-widths of their 95 % bootstrap confidence intervals (SALib). Every run of the
  design must be ok: the estimators read the runs in their fixed groups of D + 2.
* ``method="spearman"`` (any Monte Carlo, Latin hypercube or Sobol' sweep; failed runs are left out): columns
  ``rho`` (Spearman rank correlation of the path's values with the output), ``rho_lo``, ``rho_hi`` (95 %
  interval, Fisher z with the Bonett-Wright variance) and ``p`` (two-sided p-value for rho = 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .common import AnalysisError, as_sweep, ok_values, output_values


def sensitivity(sweep_or_out: Any, output: str, method: str = "sobol", report: str | None = None) -> pd.DataFrame:
    """Sensitivity of ``output`` (a collected value or summary column, else a column of ``report`` at each run's
    last row) to each perturbed path.

    >>> sensitivity("sweeps/ishigami", "Y")            # S1, S1_conf, ST, ST_conf per path
    >>> sensitivity("sweeps/mc", "Sat.Earth.SMA", method="spearman")
    """
    sweep = as_sweep(sweep_or_out)
    if not hasattr(sweep.design, "entries"):
        raise AnalysisError(f"{sweep.out} is a {sweep.design.kind} sweep; sensitivity needs a random or "
                            "space-filling design (saltelli for method='sobol'; monte_carlo, latin_hypercube or "
                            "sobol for method='spearman')")
    if method == "sobol":
        return _sobol(sweep, output, report)
    if method == "spearman":
        return _spearman(sweep, output, report)
    raise AnalysisError(f"unknown method {method!r}: use 'sobol' or 'spearman'")


def _sobol(sweep: Any, output: str, report: str | None) -> pd.DataFrame:
    design = sweep.design
    if design.kind != "saltelli":
        raise AnalysisError(f"Sobol' indices need a saltelli sweep ({sweep.out} is {design.kind}); run "
                            "gmat_sweep.saltelli(...), or use method='spearman' on this one")
    try:
        from SALib.analyze import sobol as salib_sobol
    except ImportError:
        from ..distribution import install_hint

        raise AnalysisError(f"Sobol' indices need SALib: {install_hint('dispersion')}") from None
    summary = sweep.summary()
    values = output_values(sweep, summary, output, report).to_numpy()
    bad = int(np.sum((summary["status"] != "ok").to_numpy() | ~np.isfinite(values)))
    if bad:
        raise AnalysisError(f"{bad} of {len(values)} runs of {sweep.out} are failed, missing or have no {output}; "
                            "Sobol' indices need every run of the Saltelli design: resume the sweep first")
    problem = {"num_vars": len(design.parameters), "names": list(design.parameters),
               "bounds": [[0.0, 1.0]] * len(design.parameters)}
    result = salib_sobol.analyze(problem, values, calc_second_order=False, print_to_console=False,
                                 seed=design.seed % 2**32)
    return pd.DataFrame({key: np.asarray(result[key], dtype=float) for key in ("S1", "S1_conf", "ST", "ST_conf")},
                        index=pd.Index(design.parameters, name="parameter"))


def _spearman(sweep: Any, output: str, report: str | None) -> pd.DataFrame:
    from scipy import stats

    summary, y = ok_values(sweep, output, report)
    n = len(y)
    if n < 4:
        raise AnalysisError(f"rank correlations need at least 4 ok runs; {sweep.out} has {n}")
    rows = []
    for path in sweep.design.parameters:
        x = pd.to_numeric(summary[path], errors="coerce").to_numpy(dtype=float)
        if not np.all(np.isfinite(x)):
            raise AnalysisError(f"{path} takes non-numeric values, so it has no rank correlation")
        rho, p = stats.spearmanr(x, y)
        rho = float(rho)
        # Fisher z with the Bonett-Wright standard error for Spearman's rho.
        se = np.sqrt((1 + rho**2 / 2) / (n - 3))
        z = np.arctanh(np.clip(rho, -0.999999999, 0.999999999))
        half = stats.norm.ppf(0.975) * se
        rows.append([rho, float(np.tanh(z - half)), float(np.tanh(z + half)), float(p)])
    return pd.DataFrame(rows, columns=["rho", "rho_lo", "rho_hi", "p"],
                        index=pd.Index(sweep.design.parameters, name="parameter"))
