"""The one-call API: build the design, open the pool, run, return the table."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from .backends.base import Pool
from .sweep import Sweep
from .timeouts import Timeout


def sweep(script: str | os.PathLike[str], grid: Mapping[str, Sequence[Any]] | None = None, samples: Any = None,
          backend: Pool | None = None, out: str | os.PathLike[str] | None = None,
          collect: Sequence[str] | None = None, progress: bool = True, *, engine: str | None = None,
          timeout: Timeout = None, allow_changed_script: bool = False, require_converged: bool = False,
          postprocess: str | None = None) -> pd.DataFrame:
    """Run ``script`` once per row of the design and return every run's report rows in one DataFrame.

    ``grid`` maps GMAT paths to value lists (a full factorial, last parameter fastest, run ids 0..N-1);
    ``samples`` is an explicit DataFrame or list of dicts, one run per row. The table is indexed by
    ``(run_id, time)`` and holds the parameters, the columns of the script's first ReportFile, and ``status``;
    a failed run is one row with its status. ``df.attrs["sweep"]`` is the :class:`Sweep`, for every other report
    (``.results(report=...)``), ``.summary()`` (with ``collect`` values) and ``.failed()``.

    With ``out=None`` the runs live in a temporary folder removed when the Sweep object is garbage collected.
    Calling again with the same ``out`` and the same design continues that sweep; a different sweep there is
    refused. ``require_converged=True`` records a run whose targeter did not converge as failed (by default it
    is ok with a warning). ``postprocess="package.module:function"`` is called on the worker after each run (see
    :mod:`gmat_sweep.outputs.hooks`). ``backend`` defaults to a :class:`~gmat_sweep.backends.LocalPool` with one worker per core.
    ``timeout``: seconds one run may take, ``False`` for no limit, or ``None`` for the adaptive default that stops
    only a run far out of line with the others (see :mod:`gmat_sweep.timeouts`).

    >>> df = sweep("leo.script", grid={"Sat.SMA": [7000.0, 7100.0]}, collect=["Sat.Earth.ECC"])
    """
    run = Sweep(script, grid=grid, samples=samples, out=out, collect=collect, engine=engine, timeout=timeout,
                require_converged=require_converged, postprocess=postprocess)
    run.run(backend, progress=progress, allow_changed_script=allow_changed_script)
    return run.results()
