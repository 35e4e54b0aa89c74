"""What one worker process keeps from one run to the next, for its whole life: the lock around its one GMAT
engine, the scratch folder runs' scripts are written to, its private ``TMPDIR``, GMAT's log file and the caches that
spare every run some work. ``worker.py`` runs missions on it; ``reset_scratch`` forgets it."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

#: The process's GMAT log starts afresh past this size (each run keeps its own part as its gmat.log).
PROCESS_LOG_LIMIT = 16 * 2**20
#: The temporary folder of everything but GMAT, kept in the environment when ``private_gmat_temp`` moves TMPDIR, so
#: that processes started from this one afterwards (a LocalCluster's workers, whose nannies live in the process
#: that started them) agree with those nannies on where the rest of the system's temporary files are.
SYSTEM_TMPDIR = "GMAT_SWEEP_SYSTEM_TMPDIR"
_UNSET = object()


@dataclass
class ProcessState:
    """All a worker process keeps from one run to the next, for the process's whole life: GMAT's engine is one per
    process, so the lock around it, the scratch folder runs' scripts are written to, GMAT's log file and the caches
    that spare every run some work are per process too. ``reset_scratch`` forgets the folder and what is in it.
    (The comment-free kernel copies are cached by ``gmat/kernels.py``, by kernel content.)"""

    lock: threading.Lock = field(default_factory=threading.Lock)  # one mission at a time, whatever threads run
    scratch: str | None = None  # made on first use, removed when the process exits
    log: str | None = None  # the file GMAT is logging to, once this module pointed it there
    tmpdir_before: Any = _UNSET  # TMPDIR before a run first pointed it into the scratch folder
    set_system_tmpdir: bool = False  # whether this process put SYSTEM_TMPDIR into the environment
    includes: dict[str, dict[str, str]] = field(default_factory=dict)  # sha256 + folder -> written include files
    field_collects: dict[str, list[str]] = field(default_factory=dict)  # collect names GMAT cannot Report


state = ProcessState()
engine_lock = state.lock  # its public name: backends take it around anything else that uses the engine


def process_scratch() -> str:
    """A private folder for the script text a run executes; it lives as long as the process."""
    if state.scratch is None or not os.path.isdir(state.scratch):
        state.scratch = tempfile.mkdtemp(prefix=f"gmat-sweep-{os.getpid()}-")
        atexit.register(shutil.rmtree, state.scratch, True)
    return state.scratch


def private_gmat_temp() -> None:
    """Give GMAT a temporary folder of this process's own.

    GMAT writes some outputs (STK ephemerides) first to a file in ``$TMPDIR`` named after the output, and reads
    ``TMPDIR`` each time it does: processes that share a ``TMPDIR`` (the workers of one pool, of one Dask
    machine) write over each other's runs. Set before every run, so it holds whatever else changed it."""
    folder = os.path.join(process_scratch(), "tmp")
    if os.environ.get("TMPDIR") != folder or not os.path.isdir(folder):
        if state.tmpdir_before is _UNSET:
            state.tmpdir_before = os.environ.get("TMPDIR")
            if SYSTEM_TMPDIR not in os.environ:  # else a process this one started from set it: keep theirs
                os.environ[SYSTEM_TMPDIR] = tempfile.gettempdir()
                state.set_system_tmpdir = True
        os.makedirs(folder, exist_ok=True)
        os.environ["TMPDIR"] = folder


@contextlib.contextmanager
def working_directory(path: str) -> Iterator[None]:
    # Relative input files in a script are meant relative to the script's own folder.
    before = os.getcwd()
    moved = os.path.isdir(path)
    if moved:
        os.chdir(path)
    try:
        yield
    finally:
        if moved:
            os.chdir(before)


class RunLog:
    """GMAT's messages during one run.

    GMAT writes to one log file per process and flushes every message, so a run keeps the part written while it
    ran and saves it as its own ``gmat.log``: pointing GMAT at a new file for every run would cost two
    ``UseLogFile`` calls, half a millisecond a run. The process log starts afresh past ``PROCESS_LOG_LIMIT``.
    """

    def __init__(self, api: Any) -> None:
        path = os.path.join(process_scratch(), "gmat-process.log")
        try:
            size = os.path.getsize(path)
        except OSError:
            size = -1
        if state.log != path or not 0 <= size <= PROCESS_LOG_LIMIT:
            api.UseLogFile(path)  # GMAT truncates the file
            state.log = path
            size = os.path.getsize(path)
        self.path, self.start = path, size
        self.expected = False  # whether GMAT was asked to do anything it logs

    def restart(self) -> None:
        self.start = os.path.getsize(self.path)

    def text(self) -> str:
        return self._read().decode("utf-8", errors="replace")

    def save(self, target: str) -> None:
        """Write this run's messages to ``target``."""
        data = self._read()
        if not data and self.expected:
            # GMAT logs every LoadScript: nothing at all means other code in this process pointed GMAT's log
            # elsewhere. Take it back for the next run and say so here.
            state.log = None
            data = b"(GMAT's log was pointed elsewhere by other code in this process during this run)\n"
        with open(target, "wb") as handle:
            handle.write(data)

    def _read(self) -> bytes:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.start)
                return handle.read()
        except OSError:
            return b""


def reset_scratch() -> None:
    """Remove this process's scratch folder (tests and long-lived hosts call it when done)."""
    state.log = None
    if state.tmpdir_before is not _UNSET:
        if state.tmpdir_before is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = state.tmpdir_before
        state.tmpdir_before = _UNSET
        if state.set_system_tmpdir:
            os.environ.pop(SYSTEM_TMPDIR, None)
            state.set_system_tmpdir = False
    if state.scratch and os.path.isdir(state.scratch):
        shutil.rmtree(state.scratch, ignore_errors=True)
    state.scratch = None
    state.includes.clear()
