"""Run one mission: ``run_one(RunSpec) -> RunOutcome``. It never raises.

Everything a run writes goes into its own directory: the per-run GMAT log, one Parquet file per ReportFile,
ephemeris and solver files. Every failure (bad path, GMAT parse error, a mission that fails, an unwritable
directory) comes back as a ``failed`` outcome carrying GMAT's own words, so one bad run never stops a sweep.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from . import outputs
from .engine import EngineError, get_engine
from .gmat import gravity, kernel_pool, kernels
from .gmat.written import write_problem
from .gmat.script import PreparedScript, ScriptError, load_script, materialize, prepare
from .layout import writable_problem
from .outputs.reportfiles import convert_reports, read_collected, read_fields, redirect_outputs
from .records import ERROR, FAILED, OK, RunOutcome, RunSpec, ScriptSource
from .worker_process import RunLog, engine_lock, private_gmat_temp, process_scratch, state, working_directory

LOG_NAME = "gmat.log"
COLLECT_FILE = "collect.txt"


def run_one(spec: RunSpec) -> RunOutcome:
    """Run ``spec`` on this process's engine and describe what happened.

    >>> outcome = run_one(RunSpec(0, load_script("leo.script"), {"Sat.SMA": 7100.0}, "out/runs/0"))
    >>> outcome.status, outcome.outputs
    ('ok', {'RF': 'RF.parquet'})
    """
    outcome = RunOutcome(run_id=spec.run_id, status=FAILED, overrides=dict(spec.overrides),
                         start=time.time(), host=socket.gethostname(), pid=os.getpid())
    try:
        with engine_lock:
            _run(spec, outcome)
    except Exception as exc:  # the contract: a run's failure is data, never an exception in the caller
        outcome.status = FAILED
        outcome.error = outcome.error or f"{type(exc).__name__}: {exc}"
    if outcome.status == FAILED:
        outcome.failure = ERROR  # it failed here, not by losing its process: running it again fails the same way
    outcome.end = time.time()
    return outcome


def validate(script: str | os.PathLike[str] | ScriptSource, overrides: Mapping[str, Any] | None = None,
             collect: Sequence[str] = (), engine: str | None = None) -> None:
    """Check that GMAT accepts ``overrides`` (and ``collect`` names) on ``script`` without running the mission.

    Raises :class:`ScriptError` naming every problem GMAT found. Loading takes a few milliseconds.

    >>> validate("leo.script", {"Sat.SMA": 7100.0, "TOF": 600})
    """
    source = script if isinstance(script, ScriptSource) else load_script(script)
    with engine_lock, tempfile.TemporaryDirectory(prefix="gmat-sweep-validate-") as directory:
        private_gmat_temp()
        try:
            eng = get_engine(engine)
        except EngineError as exc:
            raise ScriptError(str(exc)) from exc
        spec = RunSpec(0, source, dict(overrides or {}), directory, list(collect), engine)
        with eng.session() as api:
            log = RunLog(api)
            loaded, prepared, as_run, _ = _load_with_collect(api, spec, log, os.path.join(directory, COLLECT_FILE))
            if not loaded:
                raise ScriptError(_gmat_error(log.text(), prepared, as_run, source.path,
                                              "GMAT could not load the script"))


@contextlib.contextmanager
def load_as_written(source: ScriptSource, engine: str | None, directory: str) -> Iterator[tuple[Any, str | None]]:
    """This process's engine with ``source`` loaded as written (no overrides, nothing run), under the engine lock:
    yields ``(api, None)``, or ``(api, the end of GMAT's log)`` when the script does not load. Files the load writes
    go to ``directory``. Used to read the nominal values a dispersion is relative to.

    >>> with load_as_written(load_script("leo.script"), None, "/tmp/x") as (api, error):
    ...     api.GetObject("Sat").GetField("SMA")  # doctest: +SKIP
    """
    with engine_lock, get_engine(engine).session() as api:
        log = RunLog(api)
        _, as_run = _write_as_run(source, {}, [], process_scratch(), collect_file=os.path.join(directory, COLLECT_FILE))
        with working_directory(source.directory):
            loaded = _load(api, as_run)
        yield api, None if loaded else log.text().strip()[-300:]


def preflight(source: ScriptSource, rows: Sequence[Mapping[str, Any]], collect: Sequence[str],
              engine: str | None = None) -> tuple[list[str], dict[str, Any]]:
    """Check ``rows`` of overrides with GMAT before a sweep; return the problems and this engine's fingerprint.

    Runs on a worker, so a script that crashes GMAT takes down a worker process, never the driver.
    """
    try:
        fingerprint = get_engine(engine).fingerprint()
    except EngineError as exc:
        return [str(exc)], {}
    problems: list[str] = []
    for row in rows or [{}]:
        try:
            validate(source, row, collect, engine)
        except ScriptError as exc:
            values = ", ".join(f"{k}={v!r}" for k, v in row.items())
            problems.append(f"{exc}" + (f" (with {values})" if values else ""))
            if len(problems) >= 5:
                break
    return list(dict.fromkeys(problems)), fingerprint


# --------------------------------------------------------------------------------------------- one run


def _run(spec: RunSpec, outcome: RunOutcome) -> None:
    private_gmat_temp()
    out_dir = os.path.abspath(spec.out_dir)
    error = _prepare_out_dir(out_dir)
    if error:
        outcome.error = error
        return
    try:
        engine = get_engine(spec.engine)
    except EngineError as exc:
        outcome.error = str(exc)
        return
    outcome.fingerprint = engine.fingerprint()
    log_path = os.path.join(out_dir, LOG_NAME)
    outcome.log = LOG_NAME
    collect_path = os.path.join(out_dir, COLLECT_FILE)
    with engine.session() as api:
        log = RunLog(api)
        try:
            ran, report_settings, fields, field_values = _load_and_run(api, spec, outcome, log, out_dir, collect_path)
        finally:
            log.save(log_path)
    if report_settings is None:
        return  # the script did not load: GMAT wrote nothing
    if ran:
        outcome.status = OK
    # Reports of a failed run are still worth keeping: they show how far the mission got.
    convert_reports(report_settings, out_dir, outcome, spec.run_id)
    outputs.after_run(spec, out_dir, outcome)  # ephemerides, solver and event reports, the postprocess hook
    if spec.collect:
        read_collected(collect_path, spec.collect, fields, field_values, outcome)
    outcome.files = sorted(name for name in os.listdir(out_dir)
                           if name not in outcome.outputs.values() and name != LOG_NAME)


def _load_and_run(api: Any, spec: RunSpec, outcome: RunOutcome, log: RunLog, out_dir: str,
                  collect_path: str) -> tuple[bool, dict[str, dict[str, str]] | None, list[str], dict[str, Any]]:
    """Load and run the mission; GMAT's words go into ``outcome.error`` when either fails.

    Returns whether the mission ran, the ReportFiles' settings (``None`` when the script did not load), the
    collect names read as object fields, and their values."""
    try:
        loaded, prepared, as_run, fields = _load_with_collect(api, spec, log, collect_path)
    except ScriptError as exc:
        outcome.error = str(exc)
        return False, None, [], {}
    if not loaded:
        outcome.error = _gmat_error(log.text(), prepared, as_run, spec.script.path, "GMAT could not load the script")
        return False, None, fields, {}
    with working_directory(spec.script.directory):
        report_settings, ephemerides = redirect_outputs(api, out_dir)
        outputs.redirect(api, spec, out_dir)
        _slim_kernels(api, prepared.text)
        ran = _run_mission(api)
    if ran:
        # GMAT reports a file it could not open and carries on: such a run did not do what the script asked.
        outcome.error, warnings = write_problem(log.text(), ephemerides)
        outcome.warnings += warnings
        ran = outcome.error is None
        if not ran:
            return ran, report_settings, fields, {}
    if not ran:
        outcome.error = _gmat_error(log.text(), prepared, as_run, spec.script.path, "the mission run failed")
    return ran, report_settings, fields, read_fields(api, fields) if ran else {}


def _slim_kernels(api: Any, script: str) -> None:
    try:
        kernels.use_slim_kernels(api)
    except Exception:  # noqa: BLE001 - the copies only save time: without them GMAT reads its own files
        pass
    try:
        gravity.use_cut_gravity(api, script)
    except Exception:  # noqa: BLE001 - likewise for the cut gravity files
        pass


def _load_with_collect(api: Any, spec: RunSpec, log: RunLog,
                       collect_path: str) -> tuple[bool, PreparedScript, str, list[str]]:
    """Load the run's script: whether GMAT loaded it, the script as prepared and the path it ran from (what a
    load error is translated with), and the collect names read as object fields.

    Collect names GMAT cannot ``Report`` (object fields such as ``Sat.Id``) are read from the runtime object
    instead; which ones they are is learnt on the first load and remembered."""
    key = spec.script.sha256 + "\0" + "\0".join(spec.collect)
    fields = state.field_collects.get(key, [])
    for _ in range(2):
        reported = [c for c in spec.collect if c not in fields]
        prepared, as_run = _write_as_run(spec.script, spec.overrides, reported, process_scratch(),
                                         collect_file=collect_path)
        log.expected = True  # GMAT logs every LoadScript
        with working_directory(spec.script.directory):
            if _load(api, as_run):
                state.field_collects[key] = fields
                _check_fields(api, fields)
                return True, prepared, as_run, fields
        found = _unreportable(log.text(), reported)
        if not found:
            break
        fields = fields + found
        log.restart()  # the run's log starts afresh: the retry is what counts
    return False, prepared, as_run, fields


def _check_fields(api: Any, names: Sequence[str]) -> None:
    for name in names:
        owner, _, field_name = name.partition(".")
        try:
            api.GetObject(owner).GetField(field_name)
        except Exception as exc:  # noqa: BLE001 - GMAT's message names what is wrong
            raise ScriptError(f"collect {name!r}: GMAT has no parameter or field by that name "
                              f"({str(exc).strip()})") from None


def _unreportable(log_text: str, names: Sequence[str]) -> list[str]:
    text = " ".join(log_text.split())  # GMAT wraps its messages over several lines
    return [n for n in names if f'Report Variable: "{n}"; Currently object fields are not allowed' in text]


def _prepare_out_dir(out_dir: str) -> str | None:
    problem = writable_problem(out_dir, probe=False)
    if problem:
        return (f"output directory {out_dir} is not writable ({problem}). Choose an out= folder this process "
                "can write to, or fix its permissions.")
    return None


def _write_as_run(source: ScriptSource, overrides: Mapping[str, Any], collect: Sequence[str], directory: str,
                  collect_file: str | None = None) -> tuple[PreparedScript, str]:
    include_map = state.includes.get(source.sha256 + directory)
    if include_map is None or not all(os.path.exists(p) for p in include_map.values()):
        include_dir = os.path.join(directory, source.sha256[:16])
        os.makedirs(include_dir, exist_ok=True)
        include_map, _ = materialize(source, include_dir)
        state.includes[source.sha256 + directory] = include_map
    prepared = prepare(source, overrides, collect, collect_file or os.path.join(directory, COLLECT_FILE), include_map)
    as_run = os.path.join(directory, "as-run.script")
    _overwrite(as_run, prepared.text.encode("utf-8"))
    return prepared, as_run


def _overwrite(path: str, data: bytes) -> None:
    """Replace a file's content without truncating it to zero first: on ext4 an ``open(path, "w")`` of a file
    that holds data forces its writeback (``auto_da_alloc``), about 0.2 ms, and this happens once a run."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def _load(api: Any, path: str) -> bool:
    try:
        kernel_pool.clear_before_load(api)
        return bool(api.LoadScript(path))
    except Exception:  # GMAT raises for some parse errors and returns False for others; the log has the words
        return False


def _run_mission(api: Any) -> bool:
    try:
        return bool(api.RunScript())
    except Exception:
        return False


_NOISE = ("Kernel ", "Successfully set", "Using default", "GMAT Build Date", "GMAT API Log", "Logging to",
          "Interpreting scripts", "***** file:", "Log closed", "=====", "===> Total Run Time", "Mission run completed",
          "*** Mission run failed", "Running mission", "Mission sequence", "Finished")


def _gmat_error(log_text: str, prepared: PreparedScript, as_run: str, original: str, fallback: str) -> str:
    """GMAT's own error messages from the run's log, speaking of the user's script and overrides."""
    lines = [line.strip() for line in log_text.splitlines()]
    lines = [line for line in lines if line and not line.startswith(_NOISE)]
    first = next((i for i, line in enumerate(lines) if "error" in line.lower() or "exception" in line.lower()), None)
    if first is None:
        return f"{fallback} (GMAT gave no message; see the run's {LOG_NAME})"
    messages = []
    for line in lines[first:]:
        if "**** ERROR ****" in line:
            line = line.split("**** ERROR ****", 1)[1].strip()
        messages.append(line)
    text = prepared.translate(" ".join(messages), as_run, original)
    return f"{fallback}: {original}: {text}" if original not in text else f"{fallback}: {text}"
