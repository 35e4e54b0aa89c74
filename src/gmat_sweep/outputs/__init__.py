"""Every file a GMAT run writes besides its ReportFiles, as typed tables the worker saves next to the reports.

One reader per output: :mod:`.oem`, :mod:`.stk`, :mod:`.spk` (ephemerides, through :mod:`.ephemeris`),
:mod:`.solver` (targeter/optimiser iteration reports), :mod:`.events` (event-locator reports), and :mod:`.hooks`
(the user's per-run ``postprocess`` function). The worker calls :func:`after_run` once a run's reports are
converted; the driver only ever reads the Parquet files this writes. Each table's Parquet file is recorded in
``outcome.outputs`` under a ``kind:name`` key (``ephemeris:OEM``, ``solver:DC1``, ``events:CL``) so it never
collides with a ReportFile name; the original files are kept.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from ..gmat.report import write_parquet
from ..gmat.script import CREATE_LINE
from ..records import RunOutcome, RunSpec, ScriptSource
from . import ephemeris, events, hooks, solver

EPHEMERIS, SOLVER, EVENTS = "ephemeris", "solver", "events"


def key(kind: str, name: str) -> str:
    """The ``outcome.outputs`` key of one non-report table: ``key("ephemeris", "OEM") == "ephemeris:OEM"``."""
    return f"{kind}:{name}"


def script_texts(source: ScriptSource) -> list[str]:
    """The text of a script and of every file it includes."""
    return [source.text, *source.includes.values()]


def ephemeris_names(texts: Sequence[str]) -> list[str]:
    """The EphemerisFile resources a script creates, in order."""
    names: list[str] = []
    for text in texts:
        for line in text.splitlines():
            match = CREATE_LINE.match(line)
            if match and match.group(1) == "EphemerisFile":
                names += [n.strip() for n in match.group(2).split(",") if n.strip()]
    return names


def redirect(api: Any, spec: RunSpec, out_dir: str) -> None:
    """Point the event locators' reports at the run's folder (the worker already moves ephemerides and solver
    reports). Locators exist only with a GMAT install's EventLocator plugin."""
    texts = script_texts(spec.script)
    if not _writes_outputs(spec.script, texts):
        return
    for name in events.locators(texts):
        try:
            api.GetObject(name).SetField("Filename", os.path.join(out_dir, f"{name}.report"))
        except Exception:  # noqa: BLE001 - an engine without the plugin never loads such a script anyway
            pass


def after_run(spec: RunSpec, out_dir: str, outcome: RunOutcome) -> None:
    """Convert the run's ephemerides, solver reports and event reports to Parquet, then call the postprocess hook.

    Never raises: an unreadable file becomes a warning (its raw file kept), a failing hook fails the run."""
    texts = script_texts(spec.script)
    # Most missions have none of these resources: the script is scanned for them once, not once per run.
    if _writes_outputs(spec.script, texts):
        _convert_ephemerides(texts, out_dir, outcome)
        _convert_solvers(texts, out_dir, outcome)
        _convert_events(texts, out_dir, outcome)
    if getattr(spec, "postprocess", None):
        hooks.run(spec.postprocess, out_dir, outcome)


_has_outputs: dict[str, bool] = {}


def _writes_outputs(source: ScriptSource, texts: Sequence[str]) -> bool:
    """Whether the script creates an EphemerisFile, a solver or an event locator (remembered per script)."""
    key_ = source.sha256 or source.text
    if key_ not in _has_outputs:
        _has_outputs[key_] = bool(ephemeris_names(texts) or solver.solvers(texts) or events.locators(texts))
    return _has_outputs[key_]


def drop_partial_row(name: str, path: str, table: pa.Table, outcome: RunOutcome) -> pa.Table:
    """A ReportFile cut off mid-line (GMAT ends every line it writes): drop the partial last row, whose numbers may
    be cut short too, and say so; the complete rows are kept."""
    try:
        with open(path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            complete = handle.read(1) == b"\n"
    except OSError:
        return table  # an empty file has no partial line
    if complete or table.num_rows == 0:
        return table
    outcome.warnings.append(f"ReportFile {name} is truncated (its last line is incomplete); the "
                            f"{table.num_rows - 1} complete rows are kept")
    return table.slice(0, table.num_rows - 1)


def _save(table: pa.Table, out_dir: str, kind: str, name: str, outcome: RunOutcome) -> None:
    table = table.append_column("run_id", pa.array([outcome.run_id] * table.num_rows, pa.int64()))
    target = f"{name}.{kind}.parquet"
    write_parquet(table, os.path.join(out_dir, target))
    outcome.outputs[key(kind, name)] = target


def _convert_ephemerides(texts: Sequence[str], out_dir: str, outcome: RunOutcome) -> None:
    names = ephemeris_names(texts)
    if not names:
        return
    files = {os.path.splitext(f)[0]: f for f in os.listdir(out_dir)}
    for name in names:
        filename = files.get(name)
        if filename is None:
            continue  # EphemerisFile with WriteEphemeris off, or never reached: nothing to read
        try:
            table, warnings = ephemeris.read(os.path.join(out_dir, filename))
        except ephemeris.UnknownFormat as exc:
            outcome.warnings.append(f"EphemerisFile {name} ({filename}): {exc}; the file is kept as written")
            continue
        except Exception as exc:  # noqa: BLE001 - a reader's failure must not lose the run
            outcome.warnings.append(f"EphemerisFile {name} ({filename}) could not be read ({exc}); the file is kept")
            continue
        outcome.warnings += [f"EphemerisFile {name}: {w}" for w in warnings]
        _save(table, out_dir, EPHEMERIS, name, outcome)


def _convert_solvers(texts: Sequence[str], out_dir: str, outcome: RunOutcome) -> None:
    runs: list[solver.Sequence_] = []
    for name in solver.solvers(texts):
        path = os.path.join(out_dir, f"{name}.data")
        if not os.path.exists(path):
            continue
        try:
            found = solver.parse(path, name, solver.target_labels(texts, name))
        except Exception as exc:  # noqa: BLE001
            outcome.warnings.append(f"solver {name}: its report {name}.data could not be read ({exc})")
            continue
        runs += found
        if found:
            _save(solver.to_table(found), out_dir, SOLVER, name, outcome)
    for run in runs:
        outcome.extra[f"{run.label}.converged"] = run.converged
        outcome.extra[f"{run.label}.iterations"] = run.iterations
        if not run.converged and outcome.ok:
            outcome.warnings.append(unconverged_message(run))


def unconverged_message(run: solver.Sequence_) -> str:
    unmet = [f"{g['goal']} = {g['achieved']:.10g} (desired {g['desired']:.10g} +/- {g['tolerance']:.3g})"
             for g in run.last_goals() if not g["met"]]
    return (f"Target '{run.label}' ({run.solver}) did not converge in {run.iterations} iterations; unmet goals: "
            f"{'; '.join(unmet) or 'none reported'}")


def unconverged(outcome: RunOutcome) -> list[str]:
    """The warnings of the solver sequences of ``outcome`` that did not converge."""
    labels = [k[: -len(".converged")] for k, v in outcome.extra.items() if k.endswith(".converged") and v is False]
    return [w for w in outcome.warnings if any(w.startswith(f"Target '{label}'") for label in labels)]


def _convert_events(texts: Sequence[str], out_dir: str, outcome: RunOutcome) -> None:
    for name, kind in events.locators(texts).items():
        path = os.path.join(out_dir, f"{name}.report")
        if not os.path.exists(path):
            continue
        try:
            table, warnings = events.read_events(path, name, kind)
        except Exception as exc:  # noqa: BLE001
            outcome.warnings.append(f"{kind} {name}: its report could not be read ({exc}); the file is kept")
            continue
        outcome.warnings += [f"{kind} {name}: {w}" for w in warnings]
        _save(table, out_dir, EVENTS, name, outcome)
