"""A run's files on the worker, around GMAT's run: every file GMAT writes pointed into the run's folder, each
ReportFile turned into Parquet, and the collected values read back (from the collect report or the objects)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from ..gmat.report import parse_report, write_parquet
from ..gmat.script import COLLECT_REPORT, list_items
from ..records import RunOutcome
from ..values import parse_value
from . import drop_partial_row


def redirect_outputs(api: Any, out_dir: str) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Point every file-writing resource at the run's directory; return the ReportFiles' settings and the
    files the EphemerisFiles that write will fill."""
    moderator = api.Moderator.Instance()
    settings: dict[str, dict[str, str]] = {}
    ephemerides: dict[str, str] = {}
    for name in moderator.GetListOfObjects(api.REPORT_FILE):
        if name == COLLECT_REPORT:
            continue
        obj = api.GetObject(name)
        target = os.path.join(out_dir, f"{name}.txt")
        obj.SetField("Filename", target)
        settings[name] = {field: str(obj.GetField(field))
                          for field in ("Add", "FixedWidth", "Delimiter", "WriteHeaders", "LeftJustify")}
        settings[name]["path"] = target
    for name in moderator.GetListOfObjects(api.EPHEMERIS_FILE):
        obj = api.GetObject(name)
        extension = os.path.splitext(str(obj.GetField("Filename")))[1] or ".eph"
        obj.SetField("Filename", os.path.join(out_dir, name + extension))
        if str(obj.GetField("WriteEphemeris")).lower() in ("true", "on"):
            ephemerides[f"EphemerisFile {name}"] = os.path.join(out_dir, name + extension)
    for name in moderator.GetListOfObjects(api.SOLVER):
        obj = api.GetObject(name)
        with contextlib.suppress(Exception):  # not every solver writes a report
            obj.SetField("ReportFile", os.path.join(out_dir, f"{name}.data"))
    return settings, ephemerides


def convert_reports(settings: Mapping[str, Mapping[str, str]], out_dir: str, outcome: RunOutcome,
                     run_id: int) -> None:
    for name, setting in settings.items():
        path = setting["path"]
        if not os.path.exists(path):
            outcome.warnings.append(f"ReportFile {name} wrote nothing (no data reached it during the run)")
            continue
        try:
            table = parse_report(
                path,
                columns=list_items(setting["Add"]) or None,
                fixed_width=setting["FixedWidth"].lower() == "true",
                delimiter=setting["Delimiter"].strip("'") or " ",
                header=setting["WriteHeaders"].lower() in ("true", "on"),
                left_justify=setting["LeftJustify"].lower() in ("on", "true"),
            )
            table = drop_partial_row(name, path, table, outcome)
            target = f"{name}.parquet"
            # The run id travels inside each file so a whole sweep aggregates as one dataset.
            table = table.append_column("run_id", pa.array([run_id] * table.num_rows, pa.int64()))
            write_parquet(table, os.path.join(out_dir, target))
        except Exception as exc:
            outcome.warnings.append(f"ReportFile {name} could not be converted to Parquet ({exc}); its text is kept")
            continue
        os.remove(path)
        outcome.outputs[name] = target


def read_collected(path: str, names: Sequence[str], fields: Sequence[str], field_values: Mapping[str, Any],
                    outcome: RunOutcome) -> None:
    reported = [n for n in names if n not in fields]
    values: dict[str, Any] = {}
    if reported and os.path.exists(path):
        try:
            values = _last_report_row(path, reported)
        finally:
            os.remove(path)
    elif reported and outcome.ok:
        outcome.warnings.append("collect: the mission stopped before its last command, so its parameters were not "
                                "collected")
    outcome.collected = {name: field_values.get(name) if name in fields else values.get(name) for name in names}


def _last_report_row(path: str, names: Sequence[str]) -> dict[str, Any]:
    """The collect report's last line, each value as GMAT printed it (17 digits round-trip a double exactly;
    epochs stay in GMAT's own format, ModJulian as a number of days)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = [line.rstrip("\n") for line in handle if line.strip()]
    data = [line for line in lines[1:] if ";" in line or len(names) == 1]
    if not data:
        return {}
    cells = data[-1].split(";")
    return {name: _gmat_value(cells[i]) for i, name in enumerate(names) if i < len(cells)}


def read_fields(api: Any, names: Sequence[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in names:
        owner, _, field_name = name.partition(".")
        try:
            values[name] = _gmat_value(str(api.GetRuntimeObject(owner).GetField(field_name)))
        except Exception:  # noqa: BLE001 - a name that is neither a parameter nor a field stays None
            values[name] = None
    return values


def _gmat_value(text: str) -> Any:
    # GMAT quotes strings in reports and fields: 'Sat' is the string Sat.
    return parse_value(text.strip().strip("'"))
