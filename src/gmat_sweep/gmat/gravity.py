"""Gravity-field files cut to the degree a mission's force models use, so that every run reads less.

A force model's ``GravityField.<Body>.PotentialFile`` is read whole in every run (twice: when the sandbox
initialises and again when ``Propagate`` prepares), and GMAT parses a ``.cof`` file line by line through string
streams: the 70x70 JGM-2 file (2 553 coefficient lines) costs more than half the instructions of a 1-second run,
while a 4x4 field uses 13 of those lines. GMAT sizes its coefficient arrays from the file's ``POTFIELD`` header, fills them with zeros, sets
the coefficients the file lists, and sums only up to the ``Degree`` and ``Order`` the force model asks for. So a
copy that keeps the header and every other line byte for byte and drops the ``RECOEF`` lines of degree above
``Degree`` or order above ``Order`` gives GMAT the same arrays for every coefficient it reads, and the same
numbers (the tests compare the runs' outputs bit for bit).

Only ``.cof`` files are cut (the other formats are read by other parsers), and a file this does not read with
certainty (no ``POTFIELD`` line, a coefficient line it cannot parse) is left alone. Nothing is cut when the
mission sequence could change a gravity field's degree while it runs (it mentions ``GravityField``, or the script
includes other files). A copy is made once per file
content and degree and order, next to the kernel copies (gmat/kernels.py). Set ``GMAT_SWEEP_CUT_GRAVITY=0`` to
have GMAT read the force models' files as they are.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from ..atomic import write_bytes
from .kernels import _folder

ENV = "GMAT_SWEEP_CUT_GRAVITY"

# (path, size, mtime, degree, order) -> the cut copy, or None when the file is left alone
_copies: dict[tuple[str, int, int, int, int], str | None] = {}


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def cut_cof(text: bytes, degree: int, order: int) -> bytes | None:
    """``text`` (a ``.cof`` gravity file) without the coefficient lines of degree > ``degree`` or order > ``order``.

    ``None`` when nothing would be dropped or the file holds something this does not read as GMAT does.

    >>> cut_cof(b"POTFIELD  3  3  1 1.0 1.0 1.0\\nRECOEF    2  0    1.0\\nRECOEF    3  1    2.0 3.0\\nEND\\n", 2, 2)
    b'POTFIELD  3  3  1 1.0 1.0 1.0\\nRECOEF    2  0    1.0\\nEND\\n'
    """
    if b"\r" in text or degree < 0 or order < 0:
        return None
    lines = text.split(b"\n")
    kept: list[bytes] = []
    header = dropped = False
    for k, line in enumerate(lines):
        if line[:1] == b"C":  # GMAT skips every line that starts with C
            kept.append(line)
            continue
        first = line[:8].strip()
        if first in (b"END", b"99999"):  # GMAT stops reading here
            kept += lines[k:]
            break
        if first == b"POTFIELD":
            header = True
        elif first == b"RECOEF":
            try:
                n, m = int(line[8:11]), int(line[11:14])
            except ValueError:
                return None
            if n > degree or m > order:
                dropped = True
                continue
        kept.append(line)
    if not header or not dropped:
        return None
    return b"\n".join(kept)


def cut_copy(path: str, degree: int, order: int) -> str | None:
    """The copy of the ``.cof`` file at ``path`` cut to ``degree`` and ``order`` (made now if needed), or ``None``."""
    if not path.endswith(".cof") or not os.path.isabs(path):
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None  # GMAT reports a missing file in its own words
    key = (path, info.st_size, info.st_mtime_ns, degree, order)
    if key in _copies:
        copy = _copies[key]
        if copy is None or os.path.exists(copy):
            return copy
    _copies[key] = copy = _make_copy(path, degree, order)
    return copy


def _make_copy(path: str, degree: int, order: int) -> str | None:
    try:
        with open(path, "rb") as handle:
            cut = cut_cof(handle.read(), degree, order)
    except OSError:
        return None
    folder = _folder()
    if cut is None or folder is None:
        return None
    name = os.path.splitext(os.path.basename(path))[0]
    # GMAT picks the parser by the ".cof" in the name: the copy keeps it (and only at the end).
    copy = os.path.join(folder, f"{name}-{degree}x{order}-{hashlib.sha256(cut).hexdigest()[:16]}.cof")
    if not os.path.exists(copy):
        try:
            write_bytes(copy, cut)
        except OSError:
            return None
    return copy


def use_cut_gravity(api: Any, script: str) -> None:
    """Point every propagator's force model in the loaded mission at gravity files cut to the degree and order
    that model uses.

    Called after ``LoadScript`` and before ``RunScript``. A propagator holds its own copy of its force model (made
    when the script assigned it), and that copy is the one the run clones, so the copies are changed, not the
    configured force models. ``script``: the text GMAT loaded.
    """
    if not enabled() or not _fixed_fields(script):
        return
    for field in gravity_fields(api):
        path = _located(api, field.GetField("BodyName"), field.GetField("PotentialFile"))
        copy = path and cut_copy(path, int(field.GetField("Degree")), int(field.GetField("Order")))
        if copy:
            field.SetField("PotentialFile", copy)


def _fixed_fields(script: str) -> bool:
    """Whether the mission sequence leaves every gravity field as it was when the run started."""
    lowered = script.lower()
    if "#include" in lowered:
        return False
    start = lowered.find("beginmissionsequence")
    return start < 0 or "gravityfield" not in lowered[start:]


def gravity_fields(api: Any) -> list[Any]:
    """The gravity fields of the force models the loaded mission's propagators hold."""
    moderator = api.Moderator.Instance()
    found = []
    for name in moderator.GetListOfObjects(api.PROP_SETUP):
        model = api.PropSetup.SetClass(moderator.GetConfiguredObject(name)).GetODEModel()
        if model is None:
            continue
        for k in range(model.GetOwnedObjectCount()):
            force = model.GetOwnedObject(k)
            if force.GetTypeName() == "GravityField":
                found.append(force)
    return found


def _located(api: Any, body: str, name: str) -> str | None:
    """The file GMAT reads for a body's ``PotentialFile`` setting; ``None`` when that is not certain.

    A bare name (the default force model's ``JGM2.cof``) is found in GMAT's folder for that body's potential
    files; a name that could also mean a file in the working folder is left alone.
    """
    if os.path.isabs(name):
        return name
    if os.sep in name or os.path.exists(name):
        return None
    try:
        folder = api.FileManager.Instance().GetAbsPathname(f"{body.upper()}_POT_PATH")
    except Exception:  # noqa: BLE001 - no such folder for this body: GMAT looks elsewhere
        return None
    path = os.path.join(folder, name)
    return path if os.path.isfile(path) else None
