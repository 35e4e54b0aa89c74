"""GMAT script knowledge: reading a script with its includes, and writing the script a run executes.

Overrides are applied by GMAT's own parser: each one becomes a ``GMAT <path> = <value>;`` line placed just
before ``BeginMissionSequence``, where a script sets its resources' initial values. That way every field GMAT
can set from a script (nested ones such as ``FM.GravityField.Earth.Degree``, epochs, Variables, array elements,
lists) works, GMAT checks types and ranges itself, and its error messages name the offending line.

``collect`` names are read back by one ``Report`` command appended to the end of the mission sequence, writing to
a ReportFile of ours at full precision: GMAT evaluates any parameter it can report (``Sat.Earth.SMA``,
``TOI.Element1``, ``Sat.ElapsedDays``, a Variable, ``A(1,2)``) with no knowledge needed on our side.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import numbers
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..records import ScriptSource

COLLECT_REPORT = "GmatSweepCollect"

_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(\(\s*\d+\s*(,\s*\d+\s*)?\))?$")
_INCLUDE = re.compile(r"""^(\s*#Include\s+)(['"])(.+?)\2(.*)$""", re.IGNORECASE)
_BEGIN = re.compile(r"^\s*BeginMissionSequence\b")
CREATE_LINE = re.compile(r"^\s*Create\s+(\w+)\s+(.*?);?\s*(%.*)?$")
_ARRAY_DIMS = re.compile(r"(\w+)\s*\[\s*(\d+)\s*(?:,\s*(\d+)\s*)?\]")
_LINE_REF = re.compile(r'"\s*(\d+): |(?<=occurred on )line (\d+)(?= of file)')


class ScriptError(ValueError):
    """A script or an override cannot be used; the message names the problem and the fix."""


# ----------------------------------------------------------------------------------------------- reading


def load_script(path: str | os.PathLike[str]) -> ScriptSource:
    """Read a mission script and, recursively, every file it ``#Include``s.

    >>> source = load_script("examples/leo.script")
    """
    path = os.path.abspath(os.fspath(path))
    if not os.path.exists(path):
        raise ScriptError(f"script not found: {path}. Check the path (relative paths are taken from {os.getcwd()}).")
    if os.path.isdir(path):
        raise ScriptError(f"{path} is a folder; give the path of a GMAT .script file.")
    text = _read_text(path)
    includes: dict[str, str] = {}
    _collect_includes(path, text, includes, stack=[path])
    digest = hashlib.sha256(text.encode())
    for name in sorted(includes):
        digest.update(b"\0" + name.encode() + b"\0" + includes[name].encode())
    return ScriptSource(path=path, text=text, includes=includes, sha256=digest.hexdigest())


def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ScriptError(f"cannot read {path}: {exc.strerror}. Check the file's permissions.") from exc
    if b"\0" in data:
        raise ScriptError(f"{path} is not a GMAT script (it is a binary file). Give the path of a .script text file.")
    return data.decode("utf-8", errors="replace")


def include_target(including_file: str, written: str) -> str:
    """Where GMAT finds ``#Include 'written'``: relative paths are taken from the including file's folder."""
    if os.path.isabs(written):
        return written
    return os.path.normpath(os.path.join(os.path.dirname(including_file), written))


def _collect_includes(path: str, text: str, found: dict[str, str], stack: list[str]) -> None:
    for number, line in enumerate(text.splitlines(), 1):
        match = _INCLUDE.match(line)
        if not match:
            continue
        target = include_target(path, match.group(3))
        if target in stack:
            raise ScriptError(f"{path}, line {number}: #Include of {target} is circular. Remove the loop.")
        if not os.path.isfile(target):
            raise ScriptError(
                f"{path}, line {number}: included file {match.group(3)!r} not found (looked for {target}). "
                "Include paths are relative to the including script's folder."
            )
        if target not in found:
            found[target] = _read_text(target)
            _collect_includes(target, found[target], found, stack + [target])


def created_arrays(source: ScriptSource) -> dict[str, tuple[int, int]]:
    """Names and shapes of the ``Array`` resources a script creates (needed to set a whole array)."""
    arrays: dict[str, tuple[int, int]] = {}
    for text in [source.text, *source.includes.values()]:
        for line in text.splitlines():
            match = CREATE_LINE.match(line)
            if match and match.group(1) == "Array":
                for name, rows, cols in _ARRAY_DIMS.findall(match.group(2)):
                    arrays[name] = (int(rows), int(cols or 1))
    return arrays


# ----------------------------------------------------------------------------------------------- values


def check_path(path: str) -> str:
    """Refuse anything that is not a GMAT path such as ``Sat.SMA``, ``TOF``, ``FM.GravityField.Earth.Degree``."""
    if not isinstance(path, str) or not _PATH.match(path.strip()):
        raise ScriptError(
            f"{path!r} is not a GMAT parameter path. Use a resource name and field joined by dots, "
            "such as 'Sat.SMA', 'TOF', 'FM.GravityField.Earth.Degree' or 'A(1,2)'."
        )
    return path.strip()


def plain(value: Any) -> Any:
    """Turn numpy/pandas scalars into Python ones so rows compare, hash, serialise and render simply."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def gmat_literal(value: Any, path: str = "value") -> str:
    """Render a Python value as GMAT script syntax: numbers, strings/epochs, booleans, lists."""
    value = plain(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            raise ScriptError(f"{path} = {value}: GMAT cannot take a non-finite number. Give a finite value.")
        return repr(value)
    if isinstance(value, _dt.datetime):
        return "'" + gregorian(value) + "'"
    if isinstance(value, str):
        if "'" in value or "\n" in value:
            raise ScriptError(f"{path} = {value!r}: GMAT strings cannot hold quotes or line breaks. Remove them.")
        return "'" + value + "'"
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        items = list(value)
        if items and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in items):
            return "[" + " ".join(gmat_literal(v, path) for v in items) + "]"
        return "{" + ", ".join(gmat_literal(v, path).strip("'") for v in items) + "}"
    raise ScriptError(
        f"{path} = {value!r}: values of type {type(value).__name__} cannot be written to GMAT. "
        "Use a number, a string, a boolean, a datetime or a list of those."
    )


def list_items(text: str) -> list[str]:
    """The items of a list field as GMAT's ``GetField`` gives it: ``{a, b}`` -> ``["a", "b"]``."""
    text = text.strip().strip("{}").strip()
    return [item.strip() for item in text.split(",") if item.strip()]


def gregorian(value: _dt.datetime) -> str:
    """GMAT's Gregorian format, ``01 Jan 2026 12:00:00.000``; naive datetimes are taken as UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return value.strftime("%d %b %Y %H:%M:%S.") + f"{value.microsecond // 1000:03d}"


def override_lines(overrides: Mapping[str, Any], arrays: Mapping[str, tuple[int, int]]) -> list[tuple[str, str]]:
    """``(path, script line)`` pairs for the overrides; a whole-Array value becomes one line per element."""
    lines: list[tuple[str, str]] = []
    for raw_path, value in overrides.items():
        path = check_path(raw_path)
        if path in arrays and isinstance(value, Sequence) and not isinstance(value, str):
            lines.extend((path, f"GMAT {path}{index} = {gmat_literal(v, path)};")
                         for index, v in _array_elements(path, value, arrays[path]))
            continue
        if isinstance(value, _dt.datetime) and path.endswith(".Epoch"):
            # An epoch given as a datetime means the same instant whatever DateFormat the script uses.
            lines.append((path, f"GMAT {path}.UTCGregorian = {gmat_literal(value, path)};"))
            continue
        lines.append((path, f"GMAT {path} = {gmat_literal(value, path)};"))
    return lines


def _array_elements(path: str, value: Sequence[Any], shape: tuple[int, int]) -> list[tuple[str, Any]]:
    rows, cols = shape
    nested = [list(r) for r in value] if value and isinstance(value[0], Sequence) else None
    if nested is None:
        if len(value) != rows * cols or (rows > 1 and cols > 1):
            raise ScriptError(
                f"{path} is a {rows}x{cols} Array; give {rows * cols} values as a flat list only for a row or column "
                f"array, or a list of {rows} rows of {cols} values."
            )
        return [(f"({i + 1},1)" if cols == 1 else f"(1,{i + 1})", v) for i, v in enumerate(value)]
    if len(nested) != rows or any(len(r) != cols for r in nested):
        raise ScriptError(f"{path} is a {rows}x{cols} Array; give a list of {rows} rows of {cols} values.")
    return [(f"({i + 1},{j + 1})", v) for i, r in enumerate(nested) for j, v in enumerate(r)]


# ----------------------------------------------------------------------------------------------- writing


@dataclass
class PreparedScript:
    """The text a run executes, and how to map GMAT's line numbers back to the user's script."""

    text: str
    insert_at: int  # 1-based line number of BeginMissionSequence in the user's script (or end + 1)
    injected: list[tuple[str, str]]  # (what it is, script line), in order, starting at line insert_at
    original_lines: int

    def describe_line(self, number: int) -> str:
        """Name GMAT's line ``number`` in the user's terms."""
        if number < self.insert_at:
            return f"line {number}"
        offset = number - self.insert_at
        if offset < len(self.injected):
            return self.injected[offset][0]
        shifted = number - len(self.injected)
        if shifted <= self.original_lines:
            return f"line {shifted}"
        return "collect"

    def translate(self, message: str, as_run: str, original: str) -> str:
        """Rewrite a GMAT message about the as-run script so that it speaks of the user's script."""
        message = message.replace(as_run, original)

        def fix(match: re.Match[str]) -> str:
            if match.group(1) is not None:
                return '"' + self.describe_line(int(match.group(1))) + ": "
            return self.describe_line(int(match.group(2)))

        return _LINE_REF.sub(fix, message)


def prepare(source: ScriptSource, overrides: Mapping[str, Any], collect: Sequence[str], collect_file: str,
            include_map: Mapping[str, str] | None = None) -> PreparedScript:
    """Build the text a run executes: includes pointed at ``include_map`` (original path -> path to load),
    overrides placed before ``BeginMissionSequence``, and the collect report appended to the mission."""
    lines = _rewrite_includes(source.path, source.text, include_map or {})
    begin = next((i for i, line in enumerate(lines) if _BEGIN.match(line)), None)
    injected = [(f"override {path}", line) for path, line in override_lines(overrides, created_arrays(source))]
    if collect:
        injected += [
            ("collect", f"Create ReportFile {COLLECT_REPORT};"),
            ("collect", f"GMAT {COLLECT_REPORT}.Filename = '{collect_file}';"),
            ("collect", f"GMAT {COLLECT_REPORT}.Precision = 17;"),
            ("collect", f"GMAT {COLLECT_REPORT}.WriteHeaders = true;"),
            ("collect", f"GMAT {COLLECT_REPORT}.FixedWidth = false;"),
            ("collect", f"GMAT {COLLECT_REPORT}.Delimiter = ';';"),
        ]
    insert_at = len(lines) if begin is None else begin
    body = lines[:insert_at] + [line for _, line in injected] + lines[insert_at:]
    if collect:
        if begin is None:
            body.append("BeginMissionSequence;")
        body.append(f"Report {COLLECT_REPORT} " + " ".join(check_path(c) for c in collect) + ";")
    return PreparedScript("\n".join(body) + "\n", insert_at + 1, injected, len(lines))


def _rewrite_includes(path: str, text: str, include_map: Mapping[str, str]) -> list[str]:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = _INCLUDE.match(line)
        if match:
            target = include_target(path, match.group(3))
            lines[i] = f"{match.group(1)}'{include_map.get(target, target)}'{match.group(4)}"
    return lines


def materialize(source: ScriptSource, directory: str) -> tuple[dict[str, str], list[str]]:
    """Write the included files under ``directory`` (their own includes rewritten too).

    Returns the include map for :func:`prepare` and the files written.
    """
    include_map = {original: os.path.join(directory, f"include-{n}-{os.path.basename(original)}")
                   for n, original in enumerate(sorted(source.includes))}
    for original, target in include_map.items():
        text = "\n".join(_rewrite_includes(original, source.includes[original], include_map)) + "\n"
        with open(target, "w", encoding="utf-8") as handle:
            handle.write(text)
    return include_map, list(include_map.values())
