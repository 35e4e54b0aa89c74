"""Comment-free copies of the SPICE text kernels GMAT's solar system loads, so that every run reads less.

GMAT unloads its SPICE kernels when a mission's objects are destroyed and loads them again in every
``RunScript``, and SPICE reads a text kernel one character at a time. The planetary-constants kernel GMAT ships
is 131 KB, more than half of it comments: loading it takes ~13 ms, a third of a short LEO run. SPICE takes data
only from the blocks between a ``\\begindata`` line and the next ``\\begintext`` line and ignores everything else,
so a copy that keeps the file's first line (its ``KPL/`` id word) and those blocks byte for byte gives the kernel
pool exactly the same variables, and GMAT computes exactly the same numbers (the tests compare the kernel pools
and the runs' outputs bit for bit). Before each run the solar system is pointed at such copies of the text
kernels it names (``SolarSystem.PCKFilename`` and every body's ``FrameSpiceKernelName``).

The planetary-constants copy is also cut to the ``BODY`` constants of the bodies the loaded solar system has and
of their barycentres (kernel_bodies.py): from ~100 bodies to ~11, with the same variables for every body the
mission can read.

A copy is made once per kernel content (and set of bodies), in a folder of this user's under the system temporary
directory, and made again if it goes missing. Set ``GMAT_SWEEP_SLIM_KERNELS=0`` to have GMAT read its kernels as
they are, ``GMAT_SWEEP_SLIM_KERNELS=comments`` to only drop comments (every body's constants kept).
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from typing import Any

from ..atomic import write_bytes
from .kernel_bodies import cut_to_bodies, ids_with_barycentres
from .script import list_items

ENV = "GMAT_SWEEP_SLIM_KERNELS"
_BEGINDATA = b"\\begindata"
_BEGINTEXT = b"\\begintext"

# (path, size, mtime, bodies kept) of a kernel -> its copy, or None when it is not worth copying (binary, ...)
_copies: dict[tuple[str, int, int, frozenset[int] | None], str | None] = {}


def _setting() -> str:
    return os.environ.get(ENV, "1").strip().lower()


def enabled() -> bool:
    return _setting() not in ("0", "false", "no", "off")


def data_only(text: bytes) -> bytes | None:
    """``text`` (a SPICE text kernel) without its comments: the first line and the data blocks, byte for byte.

    ``None`` when that would change nothing or could change what SPICE reads: not a text kernel (no ``KPL/`` id
    word), no data block, or carriage returns (SPICE rejects those, and it should keep doing so).
    """
    if not text.startswith(b"KPL/") or b"\r" in text:
        return None
    lines = text.split(b"\n")
    kept = [lines[0]]
    inside = False
    for line in lines[1:]:
        marker = line.strip()
        if marker == _BEGINDATA:
            inside = True
        elif marker == _BEGINTEXT:
            if inside:
                kept.append(line)
            inside = False
        if inside:
            kept.append(line)
    slim = b"\n".join(kept)
    if not slim.endswith(b"\n"):
        slim += b"\n"  # SPICE reads a last line only when it ends
    if _BEGINDATA not in slim or len(slim) >= len(text) * 0.9:
        return None
    return slim


def _folder() -> str | None:
    """This user's folder for the copies; ``None`` when it cannot be made safe (someone else owns it)."""
    folder = os.path.join(tempfile.gettempdir(), f"gmat-sweep-kernels-{os.getuid()}")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        info = os.lstat(folder)
    except OSError:
        return None
    # Another user could otherwise plant a kernel GMAT would load.
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        return None
    return folder


def slim_copy(path: str, bodies: frozenset[int] | None = None) -> str | None:
    """The comment-free copy of the kernel at ``path`` (made now if needed), or ``None`` to use ``path`` itself.

    ``bodies``: NAIF ids whose ``BODY`` constants (and their barycentres') are all the copy keeps of those.
    """
    try:
        info = os.stat(path)
    except OSError:
        return None  # GMAT reports a missing kernel in its own words
    key = (path, info.st_size, info.st_mtime_ns, bodies)
    if key in _copies:
        copy = _copies[key]
        if copy is None or os.path.exists(copy):
            return copy
    _copies[key] = copy = _make_copy(path, bodies)
    return copy


def _make_copy(path: str, bodies: frozenset[int] | None) -> str | None:
    try:
        with open(path, "rb") as handle:
            text = handle.read()
    except OSError:
        return None
    slim = data_only(text)
    if slim is None:
        return None
    if bodies is not None:
        slim = cut_to_bodies(slim, ids_with_barycentres(bodies)) or slim
    folder = _folder()
    if folder is None:
        return None
    # Named by content: every process and every sweep of this user shares one copy of each kernel (and cut).
    name, ext = os.path.splitext(os.path.basename(path))
    copy = os.path.join(folder, f"{name}-{hashlib.sha256(slim).hexdigest()[:16]}{ext}")
    if os.path.exists(copy):
        return copy
    try:
        # A process never sees half a kernel; processes making the same copy at once each rename a whole one.
        write_bytes(copy, slim)
    except OSError:
        return None
    return copy


def use_slim_kernels(api: Any) -> None:
    """Point the loaded mission's solar system at comment-free copies of the text kernels it names.

    Called after ``LoadScript`` and before ``RunScript``: loading a script builds a new solar system from GMAT's
    defaults and the script's own settings, so this sees (and keeps) whatever kernels the script chose.
    """
    if not enabled():
        return
    solar_system = api.Moderator.Instance().GetSolarSystemInUse()
    if solar_system is None:
        return
    pck = solar_system.GetField("PCKFilename")
    bodies = None if _setting() == "comments" else naif_ids(solar_system)
    copy = slim_copy(pck, bodies) if os.path.isabs(pck) else None
    if copy:
        solar_system.SetField("PCKFilename", copy)
    for name in solar_system.GetBodiesInUse():
        body = solar_system.GetBody(name)
        kernels = list_items(body.GetField("FrameSpiceKernelName"))
        copies = [slim_copy(k) if os.path.isabs(k) else None for k in kernels]
        if any(copies):
            body.SetField("FrameSpiceKernelName",
                          "{" + ", ".join(c or k for c, k in zip(copies, kernels, strict=True)) + "}")


def naif_ids(solar_system: Any) -> frozenset[int] | None:
    """The NAIF ids of the solar system's bodies (the script's own included); ``None`` if one cannot be read."""
    ids = set()
    for name in solar_system.GetBodiesInUse():
        try:
            ids.add(int(solar_system.GetBody(name).GetField("NAIFId")))
        except Exception:  # noqa: BLE001 - a body without a usable id: keep every body's constants
            return None
    return frozenset(ids)
