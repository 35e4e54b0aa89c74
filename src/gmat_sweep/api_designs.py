"""The one-call API of dispersions: Monte Carlo, Latin hypercube, Sobol' and Saltelli sweeps.

Each builds its design, runs it exactly as ``sweep()`` does (same keyword arguments, same table back, same
``out`` folder layout, so ``Sweep.from_manifest(out).resume()``, ``.results()`` and ``.summary()`` work unchanged)
and records the design's kind, perturbations, seed and the nominal values read from GMAT in the manifest.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from .analysis import convergence, sensitivity
from .backends.base import Pool
from .design import Design
from .designs import LatinHypercube, MonteCarlo, Saltelli, Sobol
from .sweep import Sweep

Script = str | os.PathLike[str]


def _run(script: Script, design: Design, backend: Pool | None, out: Script | None, collect: Sequence[str] | None,
         progress: bool, engine: str | None, timeout: float | None, allow_changed_script: bool) -> pd.DataFrame:
    run = Sweep(script, out=out, collect=collect, engine=engine, timeout=timeout, design=design)
    run.run(backend, progress=progress, allow_changed_script=allow_changed_script)
    return run.results()


def monte_carlo(script: Script, perturb: Mapping[Any, Any], n: int, seed: int | None = None,
                backend: Pool | None = None, out: Script | None = None, collect: Sequence[str] | None = None,
                progress: bool = True, *, engine: str | None = None, timeout: float | None = None,
                allow_changed_script: bool = False) -> pd.DataFrame:
    """Run ``n`` Monte Carlo draws of ``perturb`` (GMAT path -> distribution) and return the table of ``sweep()``.

    The values of run ``i`` depend only on (seed, i, path). ``seed=None`` draws one from the OS; it is recorded in
    the manifest (``gmat-sweep show OUT``). Distributions: see :mod:`gmat_sweep.designs.distributions`.

    >>> df = monte_carlo("leo.script", {"Sat.SMA": "normal(6878, 2)", "TOI.Element1": "*normal(1, 0.01)"}, 500, seed=42)
    """
    return _run(script, MonteCarlo(perturb, n, seed), backend, out, collect, progress, engine, timeout,
                allow_changed_script)


def latin_hypercube(script: Script, perturb: Mapping[Any, Any], n: int, seed: int | None = None,
                    backend: Pool | None = None, out: Script | None = None, collect: Sequence[str] | None = None,
                    progress: bool = True, *, engine: str | None = None, timeout: float | None = None,
                    allow_changed_script: bool = False) -> pd.DataFrame:
    """Run a Latin hypercube of ``n`` runs: each parameter gets exactly one run in each of n equal-probability strata.

    >>> df = latin_hypercube("leo.script", {"Sat.SMA": "uniform(6800, 7000)", "Sat.INC": "uniform(28, 98)"}, 64)
    """
    return _run(script, LatinHypercube(perturb, n, seed), backend, out, collect, progress, engine, timeout,
                allow_changed_script)


def sobol(script: Script, perturb: Mapping[Any, Any], n: int, seed: int | None = None,
          backend: Pool | None = None, out: Script | None = None, collect: Sequence[str] | None = None,
          progress: bool = True, *, engine: str | None = None, timeout: float | None = None,
          allow_changed_script: bool = False) -> pd.DataFrame:
    """Run ``n`` scrambled Sobol' low-discrepancy points (best at a power of two; other n warn).

    >>> df = sobol("leo.script", {"Sat.SMA": "uniform(6800, 7000)", "Sat.INC": "uniform(28, 98)"}, 256, seed=1)
    """
    return _run(script, Sobol(perturb, n, seed, warn=True), backend, out, collect, progress, engine, timeout,
                allow_changed_script)


def saltelli(script: Script, perturb: Mapping[Any, Any], n: int, seed: int | None = None,
             backend: Pool | None = None, out: Script | None = None, collect: Sequence[str] | None = None,
             progress: bool = True, *, engine: str | None = None, timeout: float | None = None,
             allow_changed_script: bool = False) -> pd.DataFrame:
    """Run the Saltelli design of ``n`` base points (n x (D + 2) runs for D paths) for :func:`sensitivity`.

    >>> df = saltelli("ishigami.script", {"x1": "uniform(-3.1416, 3.1416)", "x2": "uniform(-3.1416, 3.1416)"},
    ...               256, seed=1, collect=["Y"])
    >>> sensitivity(df, "Y")
    """
    return _run(script, Saltelli(perturb, n, seed), backend, out, collect, progress, engine, timeout,
                allow_changed_script)


__all__ = ["convergence", "latin_hypercube", "monte_carlo", "saltelli", "sensitivity", "sobol"]
