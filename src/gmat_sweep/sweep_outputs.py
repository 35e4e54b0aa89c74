"""The reading side of a Sweep: its manifest, the ReportFiles' tables, the summary and failures, ephemerides, solver
iterations, events, and the lazy ``dataset()`` view. A mixin so ``sweep.py`` stays about running; every method
reads the manifest and Parquet only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from . import outputs, reading, results
from .manifest import Manifest, read_manifest
from .outputs import ephemeris as _ephemeris
from .records import FAILED

if TYPE_CHECKING:
    from .sweep import Sweep


class SweepOutputs:
    """Methods of :class:`~gmat_sweep.Sweep` that read its manifest and its runs' outputs."""

    out: str
    design: Any
    source: Any
    collect: list[str]
    _manifest: Manifest | None

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            self._manifest = read_manifest(self.out)
        return self._manifest

    def refresh(self) -> Sweep:
        """Re-read the manifest (another process may be running or resuming this sweep)."""
        self._manifest = read_manifest(self.out)
        return self

    @property
    def reports(self) -> list[str]:
        """The ReportFile names the runs produced; ``results(report=name)`` gives each one's table."""
        return results.report_names(self.manifest.entries)

    def results(self, report: str | None = None, columns: Sequence[str] | None = None,
                runs: Sequence[int] | None = None) -> pd.DataFrame:
        """Every run's rows of ``report`` (default: the script's first ReportFile), indexed by (run_id, time);
        ``columns`` / ``runs`` read only those report columns / run ids."""
        self._auto_compact()
        frame = results.results(self.out, self.design, self.manifest.entries, report, columns=columns, runs=runs)
        frame.attrs["sweep"] = _Handle(self)
        return frame

    def summary(self, runs: Sequence[int] | None = None) -> pd.DataFrame:
        """One row per run (or per id of ``runs``): parameters, status, start/end/duration, host, collected
        values, error."""
        return results.summary(self.design, self.manifest.entries, self.collect, runs)

    def failed(self) -> pd.DataFrame:
        """The summary rows of runs that failed, with GMAT's error."""
        frame = self.summary()
        return frame[frame["status"] == FAILED]

    def counts(self) -> dict[str, int]:
        return results.counts(len(self.design), self.manifest.entries)

    def ephemerides(self, name: str | None = None) -> pd.DataFrame:
        """The ``(run_id, time)`` table of one EphemerisFile (default: the script's first): parameters, then
        ``X Y Z`` (km) and ``VX VY VZ`` (km/s). ``df.attrs`` holds its frame, central body and time system.

        >>> sweep.ephemerides("EphemOEM").loc[0].head()
        """
        defined = outputs.ephemeris_names(outputs.script_texts(self.source))
        if name is None:
            if not defined:
                raise KeyError("the script defines no EphemerisFile")
            name = defined[0]
        if name not in defined:
            raise KeyError(f"the script defines no EphemerisFile named {name!r}; it defines: "
                           f"{', '.join(defined) or 'none'}")
        self._auto_compact()
        table = reading.load(self.out, self.manifest.entries, outputs.key(outputs.EPHEMERIS, name))
        if table is None:
            raise KeyError(f"no ok run has a readable ephemeris {name!r} (see summary()['warnings'])")
        frame = reading.with_parameters(table.to_pandas(), self.design).set_index(["run_id", "time"])
        frame.attrs.update(_ephemeris.metadata(table))
        return frame

    def solver_iterations(self, solver: str | None = None) -> pd.DataFrame:
        """Every solver pass of every ok run: ``run_id``, parameters, ``solver``, ``sequence`` (the Target's
        label), ``iteration``, ``variables`` (name -> value), ``goal``, ``desired``, ``achieved``, ``tolerance``,
        ``met``.

        >>> sweep.solver_iterations().groupby("run_id")["iteration"].max()
        """
        return self._kind_table(outputs.SOLVER, solver)

    def events(self, locator: str | None = None) -> pd.DataFrame:
        """Every event-locator event of every ok run: ``run_id``, parameters, ``locator``, ``kind``, ``target``,
        ``observer`` (the occulting body for eclipses), ``event``, ``start``, ``stop``, ``duration`` (s).

        >>> sweep.events("Contacts").query("duration > 300")
        """
        return self._kind_table(outputs.EVENTS, locator)

    def dataset(self, report: str | None = None, runs: Sequence[int] | None = None) -> ds.Dataset:
        """A lazy ``pyarrow.dataset.Dataset`` over one output's per-run Parquet files, with ``run_id`` and the
        parameters as columns; nothing is read until asked. ``report`` is a ReportFile name (default: the first),
        or ``"ephemeris:NAME"``, ``"solver:NAME"``, ``"events:NAME"``.

        >>> sweep.dataset().to_table(columns=["run_id", "Sat.Earth.SMA"]).to_pandas()
        """
        self._auto_compact()
        entries = self.manifest.entries
        if report is None:
            from .results import report_names

            names = report_names(entries)
            if not names:
                raise KeyError("no run produced a ReportFile; name an output such as 'ephemeris:NAME'")
            report = names[0]
        return reading.dataset(self.out, self.design, entries, report, runs)

    def _kind_table(self, kind: str, name: str | None) -> pd.DataFrame:
        self._auto_compact()
        entries = self.manifest.entries
        names = reading.names_of(entries, kind)
        if name is not None and name not in names:
            raise KeyError(f"no ok run has {kind} output {name!r}; the sweep's are: {', '.join(names) or 'none'}")
        tables = [reading.load(self.out, entries, outputs.key(kind, n)) for n in ([name] if name else names)]
        tables = [t for t in tables if t is not None]
        if not tables:
            return pd.DataFrame()
        frame = pa.concat_tables(tables, promote_options="permissive").to_pandas()
        frame = frame.sort_values("run_id", kind="stable").reset_index(drop=True)
        return reading.with_parameters(frame, self.design)

    def compact(self) -> list[str]:
        """Gather every output's per-run Parquet files into one file per output under ``compact/`` (the per-run
        files stay), so reading a sweep of many runs opens one file instead of one per run. Runs finished
        later (``resume``) are read from their own files until the next ``compact()``.

        >>> Sweep.from_manifest("sweeps/big").compact()
        """
        from .compact import compact

        return compact(self.out, self.design, self.manifest.entries)

    def _auto_compact(self) -> None:
        """Compact when many ok runs lie outside the compact files (see ``compact.AUTO_RUNS``): what a finished sweep
        and every read of a big one does, so results() of 100 000 runs opens a few files, not 100 000."""
        from .compact import auto

        auto(self.out, self.design, self.manifest.entries)


class _Handle:
    """Keeps a Sweep (and its temporary folder) alive from ``DataFrame.attrs`` without being deep-copied."""

    def __init__(self, sweep: Sweep) -> None:
        self.sweep = sweep

    def __deepcopy__(self, memo: dict[int, Any]) -> _Handle:
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sweep, name)

    def __repr__(self) -> str:
        return repr(self.sweep)
