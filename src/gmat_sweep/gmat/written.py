"""Did GMAT write what the script asked for? A run whose output GMAT could not write is not ``ok``.

GMAT reports a file it cannot open in its log ("Failed to open temp file ...", "Failed to open ...") and carries
on: the mission "succeeds" and the ephemeris is left empty or missing. A sweep must not record such a run as fine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: GMAT's log wording when it cannot open a file it was told to write (its EphemerisFile, ReportFile and
#: solver writers). Input files it cannot open (gravity, space weather) are not listed: GMAT fails those runs itself,
#: or falls back on purpose.
_OPEN_FAILURES = ("failed to open", "cannot open output file", "cannot open report file",
                  "unable to open stk ephemeris file")


def open_failures(log_text: str) -> list[str]:
    """GMAT's own lines saying it could not open a file, in order, each once."""
    found: list[str] = []
    for line in log_text.splitlines():
        text = line.strip()
        if any(marker in text.lower() for marker in _OPEN_FAILURES) and text not in found:
            found.append(text.split("**** ERROR ****", 1)[-1].strip())
    return found


def unwritten(expected: Mapping[str, str]) -> list[str]:
    """The names of ``expected`` resources (name -> path) whose file is missing or empty."""
    missing = []
    for name, path in expected.items():
        try:
            empty = os.path.getsize(path) == 0
        except OSError:
            empty = True
        if empty:
            missing.append(name)
    return missing


def write_problem(log_text: str, expected: Mapping[str, str]) -> tuple[str | None, list[str]]:
    """The error that fails a run whose outputs GMAT could not write, and warnings for outputs it left empty.

    A "Failed to open" in the run's log fails the run with GMAT's words (even when a file exists: it may be the
    final file GMAT created before its temporary one failed). An empty or missing file without such a message
    (an ephemeris whose epochs the mission never reached) is a warning."""
    failures = open_failures(log_text)
    empty = unwritten(expected)
    if failures:
        which = f" ({', '.join(empty)} left empty or missing)" if empty else ""
        return f"GMAT could not write an output file{which}: {' '.join(failures)}", []
    return None, [f"{name} wrote nothing (its file is empty or missing)" for name in empty]
