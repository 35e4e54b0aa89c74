"""A tiny init for one emulated container, like tini: run the command, forward SIGTERM, reap the whole tree.

Run as ``python podinit.py -- COMMAND ARGS...`` in a fresh process group. It marks itself a child subreaper, so
processes orphaned inside the Pod (a Dask worker whose nanny died first) are reparented to it and reaped here
instead of lingering as zombies under a PID 1 that never reaps. When the command exits, whatever is left of
the group gets SIGTERM, then SIGKILL, and the init exits with the command's exit code.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
LEFTOVER_GRACE = 2.0


def _group_members() -> list[int]:
    """Other processes of this process group (this Pod), from /proc."""
    me, group = os.getpid(), os.getpgrp()
    pids: list[int] = []
    if not os.path.isdir("/proc"):  # not Linux: leftovers are not hunted down
        return pids
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != b"Z":
            pids.append(int(entry))
    return pids


def _signal_members(sig: int) -> None:
    for pid in _group_members():
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("podinit: no command", file=sys.stderr)
        return 127
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: orphans go to PID 1 as usual
        pass
    try:
        child = os.posix_spawnp(argv[0], argv, os.environ)
    except OSError as exc:
        print(f"podinit: cannot run {argv[0]!r}: {exc}", file=sys.stderr)
        return 127

    def forward(signum: int, _frame: object) -> None:
        # The kubelet signals the container's main process; it decides how to shut its children down.
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    code: int | None = None
    kill_at: float | None = None
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if kill_at is not None and time.monotonic() >= kill_at:
                _signal_members(signal.SIGKILL)
                kill_at = None
            time.sleep(0.05)
            continue
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            _signal_members(signal.SIGTERM)
            kill_at = time.monotonic() + LEFTOVER_GRACE
    if code is None:
        return 1
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
