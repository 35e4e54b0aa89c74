"""The out folder's layout, in one place: where a run's folder is, the saved script, writing a run's files, and
whether a folder can be written at all.

    out/
        manifest.jsonl      header + one line per finished run (see manifest.py)
        script/             the script and its includes exactly as run
        runs/<run_id>/      that run's Parquet reports, gmat.log and other outputs

>>> run_dir("sweeps/sma", 3)
'sweeps/sma/runs/3'
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping

from .records import ScriptSource

RUNS = "runs"
SCRIPT = "script"


def run_dir(out: str, run_id: int) -> str:
    """The folder of run ``run_id`` in the sweep at ``out``."""
    return os.path.join(out, RUNS, str(run_id))


def write_run_files(folder: str, files: Mapping[str, bytes]) -> None:
    """Write the files a worker sent back (Dask's return mode) into the run's folder."""
    os.makedirs(folder, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(data)


def writable_problem(directory: str, probe: bool = True) -> str | None:
    """Create ``directory`` and prove a file can be written there; the OS's reason when not.

    ``probe=False`` asks the kernel with ``access()`` instead of creating and removing a file: the check each run
    makes of its own folder, where the round trip would cost a tenth of a millisecond every run.
    """
    try:
        os.makedirs(directory, exist_ok=True)
        if not probe:
            return None if os.access(directory, os.W_OK | os.X_OK) else os.strerror(errno.EACCES)
        path = os.path.join(directory, ".write-test")
        with open(path, "w") as handle:
            handle.write("ok")
        os.remove(path)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def copy_script_tree(source: ScriptSource, directory: str) -> list[str]:
    """Save the script and its includes exactly as run, for the record. Returns the files written."""
    os.makedirs(directory, exist_ok=True)
    written = []
    main = os.path.join(directory, os.path.basename(source.path))
    with open(main, "w", encoding="utf-8") as handle:
        handle.write(source.text)
    written.append(main)
    if source.includes:
        root = os.path.commonpath([source.directory, *source.includes])
        for original, text in source.includes.items():
            target = os.path.join(directory, "includes", os.path.relpath(original, root))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w", encoding="utf-8") as handle:
                handle.write(text)
            written.append(target)
    return written
