"""Sweep: runs a design's specs through a Pool, records each finished run in the manifest, and resumes.

Folder layout under ``out``::

    manifest.jsonl          header + one line per finished run (see manifest.py)
    script/<name>.script    the script (and includes/) exactly as run
    runs/<run_id>/          that run's Parquet reports, gmat.log, ephemerides and solver files
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import shutil
import sys
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

from . import timeouts
from .versions import package_versions
from .backends import default_pool
from .backends.base import Pool, PoolBroken, RunTimedOut, WorkerLost
from .design import Design, make_design, to_json
from .gmat.script import check_path, load_script
from .outputs import events, script_texts, unconverged
from .group_commit import GroupCommit
from .manifest import KIND, SCHEMA_VERSION, Manifest, ManifestWriter, manifest_path, read_manifest
from .records import FAILED, LOST, OK, TIMEOUT, RunOutcome, RunSpec, ScriptSource
from .sweep_open import SweepError, SweepOpening
from .sweep_outputs import SweepOutputs
from .timeouts import Timeout
from .layout import RUNS, SCRIPT, copy_script_tree, run_dir, write_run_files
from .worker import preflight

#: How many values of one parameter the preflight loads in GMAT before the sweep starts: all of them up to this
#: many, else the extremes and values spread between them. The rest fail, if at all, as failed runs.
PREFLIGHT_LIMIT = 16
#: With ``fsync_every > 1``, the manifest is also fsynced when this many seconds passed since the last fsync, so a
#: slow sweep never leaves a long stretch of finished runs unsynced.
GROUPED_FSYNC_SECONDS = 1.0


class Sweep(SweepOpening, SweepOutputs):
    """A sweep of one script over a design, stored under ``out``.

    >>> s = Sweep("leo.script", grid={"Sat.SMA": [7000, 7100]}, out="sweeps/sma").run()
    >>> s.results().head(); s.summary(); s.failed()
    >>> Sweep.from_manifest("sweeps/sma").resume()      # after a kill: reruns only missing and failed runs
    """

    def __init__(self, script: str | os.PathLike[str], grid: Any = None, samples: Any = None,
                 out: str | os.PathLike[str] | None = None, collect: Sequence[str] | None = None,
                 engine: str | None = None, timeout: Timeout = None, fsync_every: int = 1,
                 require_converged: bool = False, postprocess: str | None = None, _design: Design | None = None,
                 _source: ScriptSource | None = None, *, design: Design | None = None) -> None:
        # design=: a ready Design, e.g. gmat_sweep.designs.MonteCarlo({"Sat.SMA": "normal(7000, 5)"}, n=1000)
        self.design = _design or design or make_design(grid, samples)
        self.collect = [check_path(c) for c in (collect or [])]
        if len(set(self.collect)) != len(self.collect):
            raise SweepError("collect names a parameter twice; list each once")
        self.source = _source or load_script(script)
        self.engine = engine
        try:
            # None: the adaptive default; a number: seconds; False: no limit (see timeouts.py).
            self.timeout = timeouts.normalize(timeout)
        except ValueError as exc:
            raise SweepError(str(exc)) from None
        self._limits = timeouts.RunLimits(self.timeout)
        self.fsync_every = fsync_every
        # A targeter GMAT gives up on still lets the mission go on: by default such a run is ok with a warning.
        self.require_converged = require_converged
        self.postprocess = postprocess  # checked when the sweep runs: reading a sweep never needs the hook
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if out is None:
            # Lives as long as this object (and the DataFrames that hold it in .attrs["sweep"]).
            self._tmp = tempfile.TemporaryDirectory(prefix="gmat-sweep-")
            out = self._tmp.name
            weakref.finalize(self, self._tmp.cleanup)
        self.out = os.path.abspath(os.fspath(out))
        self._manifest: Manifest | None = None

    # ------------------------------------------------------------------------------ running

    def run(self, backend: Pool | None = None, progress: bool = True, allow_changed_script: bool = False,
            _resume: bool = False) -> Sweep:
        """Run every run id that has no ``ok`` line in the manifest yet. Returns self.

        ``allow_changed_script=True`` accepts every change since the sweep began, not only the script's (and its
        includes'): also another postprocess hook and another GMAT engine."""
        accept_changes = allow_changed_script  # the keyword's name is public; what it waives is wider
        if self.postprocess:
            from .outputs.hooks import HookError, resolve

            try:
                resolve(self.postprocess)  # a bad path fails here, before any run and before out= is touched
            except HookError as exc:
                raise SweepError(str(exc)) from None
        existing = self._open_out(accept_changes, resume=_resume)
        # A fresh sweep's ids are a range, not a list: a 10^7-run design needs no table of ids before its first run.
        todo: Sequence[int] = range(len(self.design)) if not existing else \
            [i for i in range(len(self.design)) if existing.get(i, {}).get("status") != OK]
        if not todo:
            self._report(f"all {len(self.design)} runs of {self.out} are already ok; nothing to do")
            return self
        owned = backend is None
        pool = backend if backend is not None else default_pool()
        try:
            pool.prepare({"out": self.out, "engine": self.engine, "script": self.source})
            self._prepare_design(pool)
            fingerprint = self._preflight(pool)
            self._check_same_engine(fingerprint, accept_changes)
            self._ensure_manifest(fingerprint)
            self._execute(pool, todo, progress)
        finally:
            if owned:
                pool.close()
        self._manifest = read_manifest(self.out)
        self._auto_compact()  # a big sweep is read back from one file per output, not one per run
        return self

    def extend(self, m: int, backend: Pool | None = None, progress: bool = True,
               allow_changed_script: bool = False) -> Sweep:
        """Add ``m`` runs to a Monte Carlo, Latin hypercube or Sobol' sweep and run them (and any missing or failed
        ones). The new runs are exactly runs n..n+m-1 of one sweep of n+m (Latin hypercube: one more block).

        >>> Sweep.from_manifest("sweeps/mc").extend(1000)
        """
        from .extend import grow

        grow(self, m, allow_changed_script)
        return self.run(backend, progress=progress, allow_changed_script=allow_changed_script, _resume=True)

    def _prepare_design(self, pool: Pool) -> None:
        if hasattr(self.design, "relative_paths"):  # a dispersion: nominals from GMAT, draws GMAT would refuse
            from .dispersion_check import prepare

            prepare(self.design, pool, self.source, self.collect, self.engine)

    def resume(self, backend: Pool | None = None, progress: bool = True,
               allow_changed_script: bool = False) -> Sweep:
        """Rerun exactly the missing and failed run ids, with their original parameters.

        Refuses when the script changed since the sweep started, unless ``allow_changed_script=True`` (which also
        accepts another postprocess hook or GMAT engine, see :meth:`run`).
        """
        return self.run(backend, progress=progress, allow_changed_script=allow_changed_script, _resume=True)

    def _preflight(self, pool: Pool) -> dict[str, Any]:
        """Load the script with the design's values in GMAT before any run, spread over the pool's workers.

        Each load costs a worker 5-15 ms (GMAT tears the previous mission down inside LoadScript), so the rows are
        few and split into one task per worker; that also starts every worker's engine before the first run."""
        combos = _preflight_rows(self.design, PREFLIGHT_LIMIT)
        chunks = max(1, min(len(combos), pool.max_workers))
        futures = [pool.submit(preflight, self.source, combos[i::chunks], self.collect, self.engine)
                   for i in range(chunks)]
        problems: list[str] = []
        fingerprint: dict[str, Any] = {}
        try:
            for future in pool.as_completed(futures):
                found, fingerprint = pool.result(future)
                problems += [p for p in found if p not in problems]
        except PoolBroken as exc:
            raise SweepError(str(exc)) from None
        except WorkerLost as exc:
            raise SweepError(f"the GMAT engine crashed while checking the script ({exc}); the script cannot be run "
                             "as given. Check it in GMAT, or run one case with gmat_sweep.run_one to see the log.") \
                from None
        missing = events.plugin_problems(script_texts(self.source), fingerprint)
        if missing:  # GMAT's own words for an unknown type do not say what to do
            raise SweepError("; ".join(missing))
        if problems:
            raise SweepError("GMAT rejects the sweep before it starts:\n  " + "\n  ".join(problems[:10]))
        return fingerprint

    def _ensure_manifest(self, fingerprint: dict[str, Any]) -> None:
        path = manifest_path(self.out)
        if os.path.exists(path):
            return
        copy_script_tree(self.source, os.path.join(self.out, SCRIPT))
        header = {
            "kind": KIND,
            "schema": SCHEMA_VERSION,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
            "script": {"path": self.source.path, "sha256": self.source.sha256,
                       "includes": sorted(self.source.includes)},
            "design": self.design.to_dict(),
            "runs": len(self.design),
            "collect": self.collect,
            "engine_choice": self.engine,  # what was asked for: None / "embedded" / a GMAT install folder
            "timeout": timeouts.to_json(self.timeout),
            "engine": fingerprint,  # the engine that ran: its fingerprint (engine, gmat_version, gmatpy, ...)
            "versions": package_versions(),
            "fsync_every": self.fsync_every,
            "require_converged": self.require_converged,
            "postprocess": self.postprocess,
        }
        ManifestWriter(path, header).close()

    def _execute(self, pool: Pool, todo: Sequence[int], progress: bool) -> None:
        bar = _progress(len(todo), progress, len(self.design))
        writer = ManifestWriter(manifest_path(self.out), fsync_every=self.fsync_every,
                                fsync_seconds=GROUPED_FSYNC_SECONDS if self.fsync_every > 1 else 0.0)
        counts = {OK: 0, FAILED: 0}
        # A resumed sweep's adaptive limit starts from the runs it already finished.
        self._limits = timeouts.RunLimits(self.timeout, [float(e["duration"]) for e in self.manifest.entries.values()
                                                         if e.get("status") == OK and e.get("duration")])

        def record(spec: RunSpec, outcome: RunOutcome, error: BaseException | None) -> None:
            # Called once per finished run, possibly on a thread of the pool's (see Pool.for_each).
            note = self._limits.note(spec.run_id)
            if error is not None:
                outcome = _lost(spec, error, note)
            elif outcome.ok:
                self._limits.finished(outcome.duration)
            if outcome.payload is not None:
                write_run_files(spec.out_dir, outcome.payload or {})
                outcome.payload = None
            if self.require_converged and outcome.ok and unconverged(outcome):
                outcome.status, outcome.error = FAILED, "; ".join(unconverged(outcome))
            # Counted only once an fsync covers its line (one fsync per group of lines: group_commit.py).
            commit.append(self._entry(outcome), functools.partial(count, OK if outcome.ok else FAILED))

        def count(status: str) -> None:
            counts[status] += 1
            # The counts are formatted only when the bar was just redrawn (a few times a second, not on every run);
            # the next redraw shows them.
            if progress and bar.update(1):
                bar.set_postfix(ok=counts[OK], failed=counts[FAILED], refresh=False)

        commit = GroupCommit(writer)
        try:
            pool.run_each(self._specs(todo), record)
        finally:
            try:
                commit.close()
            finally:
                writer.close()
                if progress:
                    bar.set_postfix(ok=counts[OK], failed=counts[FAILED], refresh=False)  # drawn by close
                bar.close()

    def _specs(self, todo: Sequence[int]) -> Iterator[RunSpec]:
        runs = os.path.join(self.out, RUNS)
        try:
            with os.scandir(runs) as entries:
                leftovers = next(entries, None) is not None  # a fresh sweep need not look for old run folders
        except FileNotFoundError:
            leftovers = False
        prefix = run_dir(self.out, 0)[:-1]  # one join per sweep, not per run
        for run_id in todo:
            folder = f"{prefix}{run_id}"
            if leftovers and os.path.isdir(folder):
                shutil.rmtree(folder)  # what an earlier failed or interrupted attempt left
            yield RunSpec(run_id=run_id, script=self.source, overrides=self.design[run_id], out_dir=folder,
                          collect=self.collect, engine=self.engine, timeout=self._limits.limit_for(run_id),
                          postprocess=self.postprocess)

    def _entry(self, outcome: RunOutcome) -> dict[str, Any]:
        entry = outcome.to_dict()
        entry["overrides"] = {k: to_json(v) for k, v in outcome.overrides.items()}
        entry["collected"] = {k: to_json(v) for k, v in outcome.collected.items()}
        return entry

    def _report(self, message: str) -> None:
        print(message, file=sys.stderr)

    def __len__(self) -> int:
        return len(self.design)

    def __repr__(self) -> str:
        return f"Sweep({self.source.path!r}, runs={len(self.design)}, out={self.out!r})"

    def _repr_html_(self) -> str:
        from .htmlreport import card

        return card(self)

    def archive(self, path: str | os.PathLike[str], logs: bool = True) -> str:
        """Write the sweep to one deterministic zip (see gmat_sweep.archive); ``s.archive("leo.zip")``."""
        from .archive import archive

        return archive(self, path, logs=logs)


def _preflight_rows(design: Design, limit: int) -> list[dict[str, Any]]:
    """Rows that together try every parameter's distinct values, or, for a long numeric list, its extremes and
    values spread between them (a range GMAT rejects is found at its ends)."""
    values = {p: _spread(vs, limit) for p, vs in design.distinct_values().items()}
    longest = max((len(v) for v in values.values()), default=0)
    return [{p: vs[min(i, len(vs) - 1)] for p, vs in values.items()} for i in range(longest)]


def _spread(values: list[Any], limit: int) -> list[Any]:
    if len(values) <= limit:
        return values
    def numeric(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    numbers = [v for v in values if numeric(v)]
    others = [v for v in values if not numeric(v)][: limit // 2]
    numbers.sort()
    room = max(2, limit - len(others))
    step = (len(numbers) - 1) / (room - 1)
    picked = [numbers[round(i * step)] for i in range(room)] if numbers else []
    return list(dict.fromkeys(others + picked))


def _lost(spec: RunSpec, error: BaseException, adaptive: str | None = None) -> RunOutcome:
    """The outcome of a run whose process was lost or stopped: it lasted as long as the pool saw it run."""
    import time

    reason = str(error) if isinstance(error, WorkerLost) else f"{type(error).__name__}: {error}"
    if isinstance(error, RunTimedOut):
        # Say which limit stopped it: the sweep's adaptive one, or a number someone chose.
        limit = f"it ran longer than {adaptive}; " if adaptive and error.limit == spec.timeout else ""
        reason = f"{reason} ({limit}{timeouts.HOW_TO_CHANGE})"
    now = time.time()
    elapsed = getattr(error, "elapsed", None) or 0.0
    return RunOutcome(run_id=spec.run_id, status=FAILED, overrides=dict(spec.overrides), start=now - elapsed,
                      end=now, error=f"worker lost: {reason}" if isinstance(error, WorkerLost) else reason,
                      failure=TIMEOUT if isinstance(error, RunTimedOut) else LOST)


def _progress(total: int, enabled: bool, runs: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, unit="run", desc=f"gmat-sweep {total}/{runs} runs",
                dynamic_ncols=True, smoothing=0.05)


__all__ = ["Sweep", "SweepError"]
