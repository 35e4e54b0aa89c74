"""A planetary-constants kernel cut to the bodies a mission's solar system has.

GMAT's planetary-constants kernel defines ``BODY<id>_...`` constants (radii, GM, pole and prime meridian, nutation
and precession terms) for ~100 bodies: every planet, most known moons, some comets and asteroids. A mission's solar
system asks SPICE only for those of its own bodies and of their barycentres (a planet's or moon's nutation and
precession angles are its barycentre's ``BODY<n>_NUT_PREC_ANGLES``), but SPICE reads the whole file, a character at a
time, in every run. :func:`cut_to_bodies` keeps the ``BODY`` assignments of those ids, and every other assignment,
byte for byte and in order (blank lines dropped), so the variables those bodies can read are exactly the same
(the tests compare them in SPICE's own pool, and the runs' outputs bit for bit).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_ASSIGNMENT = re.compile(rb"^\s*([A-Za-z0-9_./\-]+)\s*\+?=(.*)$")
_BODY = re.compile(rb"BODY(-?\d+)_")
_MARKERS = (b"\\begindata", b"\\begintext")


def ids_with_barycentres(ids: Iterable[int]) -> set[int]:
    """``ids`` and the barycentre of each planet or planetary moon among them (399 and 301 -> 3).

    >>> sorted(ids_with_barycentres([10, 399, 301]))
    [3, 10, 301, 399]
    """
    keep = set(ids)
    keep |= {i // 100 for i in keep if 100 <= i < 1000}
    return keep


def cut_to_bodies(text: bytes, ids: set[int]) -> bytes | None:
    """``text`` (a comment-free text kernel) without the ``BODY<id>_`` assignments of ids not in ``ids``.

    ``None`` when the file holds anything this does not read with certainty (strings, dates, a value that does not
    close), so that the caller uses the whole file.
    """
    if b"'" in text or b"@" in text:
        return None
    out: list[bytes] = []
    keep = True
    depth = 0  # open parentheses of the assignment being read
    pending = False  # an assignment whose value has not started yet ("NAME =" alone on its line)
    for line in text.split(b"\n"):
        stripped = line.strip()
        if depth == 0 and not pending:
            if not stripped:
                continue  # blank lines mean nothing to SPICE and cost it a read per character
            if stripped in _MARKERS or line.startswith(b"KPL/") and not out:
                out.append(line)
                continue
            match = _ASSIGNMENT.match(line)
            if match is None:
                return None
            body = _BODY.match(match.group(1))
            keep = body is None or int(body.group(1)) in ids
            value = match.group(2).strip()
        else:
            value = stripped
            if pending and not value:
                if keep:
                    out.append(line)
                continue
        pending = not value
        depth += value.count(b"(") - value.count(b")")
        if depth < 0:
            return None
        if keep:
            out.append(line)
    if depth or pending:
        return None
    return b"\n".join(out) + b"\n"
