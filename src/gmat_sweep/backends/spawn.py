"""Spawned processes that do not import the caller's main module.

multiprocessing's spawn start method runs the parent's ``__main__`` again in every child (as ``__mp_main__``), so
that functions defined there can be found. A script without an ``if __name__ == "__main__":`` guard then starts
its sweep again in each worker, and ``python - < file`` or a heredoc cannot be re-run at all. LocalPool's workers
only ever run gmat-sweep's own functions on plain data, so they have no need of the caller's main module: these
processes are spawned exactly like multiprocessing's, with the caller's ``sys.path`` and working directory, but
without the entry that makes the child re-run ``__main__``.

Functions defined in the caller's main module can therefore not be sent to these workers (define them in a
module), which a sweep never does.

A process can also be given environment variables of its own (``env``) without touching the caller's: LocalPool
uses this to keep its workers single-threaded (:data:`SINGLE_THREADED`).
"""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Mapping
from multiprocessing import popen_spawn_posix, reduction, spawn, util
from multiprocessing.context import SpawnProcess, set_spawning_popen
from typing import Any

#: The entries of multiprocessing's preparation data that make a spawned child import the parent's main module.
MAIN_ENTRIES = ("init_main_from_path", "init_main_from_name")


#: Keeps numpy's OpenBLAS (and an OpenMP or MKL build's pool) from starting worker threads when numpy is imported,
#: and pyarrow's jemalloc from starting its background purging thread. A GMAT run is ~30 % slower in a process
#: that has a second thread, even an idle one: glibc's stdio takes a lock on every call and libstdc++'s reference
#: counts become atomic once a process is multi-threaded, and GMAT's SPICE reads text kernels a character at a
#: time through stdio (docs/architecture.md, "Single-threaded workers").
SINGLE_THREADED: dict[str, str] = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "JE_ARROW_MALLOC_CONF": "background_thread:false",
}


def environment(extra: Mapping[str, str]) -> list[bytes]:
    """The caller's environment with ``extra`` on top, as ``exec`` takes it (the caller's own is left alone)."""
    merged = {os.fsencode(k): os.fsencode(v) for k, v in os.environ.items()}
    merged.update({os.fsencode(k): os.fsencode(v) for k, v in extra.items()})
    return [k + b"=" + v for k, v in merged.items()]


def _spawnv_passfds(path: str, args: list[str], passfds: list[int], env: list[bytes] | None) -> int:
    # multiprocessing.util.spawnv_passfds (identical in 3.12 and 3.13), with an environment of the child's own.
    import _posixsubprocess

    fds = tuple(sorted(map(int, passfds)))
    errpipe_read, errpipe_write = os.pipe()
    try:
        return _posixsubprocess.fork_exec(
            args, [os.fsencode(path)], True, fds, None, env,
            -1, -1, -1, -1, -1, -1, errpipe_read, errpipe_write,
            False, False, -1, None, None, None, -1, None,
            subprocess._USE_VFORK)  # type: ignore[attr-defined]
    finally:
        os.close(errpipe_read)
        os.close(errpipe_write)


def preparation_data(name: str) -> dict[str, Any]:
    """What a spawned child needs to look like its parent (``sys.path``, cwd...), without the main module."""
    data = spawn.get_preparation_data(name)
    for key in MAIN_ENTRIES:
        data.pop(key, None)
    return data


class _Popen(popen_spawn_posix.Popen):
    # multiprocessing's own _launch (identical in 3.12 and 3.13) with the preparation data above.
    def _launch(self, process_obj: Any) -> None:
        from multiprocessing import resource_tracker

        tracker_fd = resource_tracker.getfd()
        self._fds.append(tracker_fd)
        prep_data = preparation_data(process_obj._name)
        fp = io.BytesIO()
        set_spawning_popen(self)
        try:
            reduction.dump(prep_data, fp)
            reduction.dump(process_obj, fp)
        finally:
            set_spawning_popen(None)
        parent_r = child_w = child_r = parent_w = None
        try:
            parent_r, child_w = os.pipe()
            child_r, parent_w = os.pipe()
            cmd = spawn.get_command_line(tracker_fd=tracker_fd, pipe_handle=child_r)
            self._fds.extend([child_r, child_w])
            extra = getattr(process_obj, "_extra_env", None)
            env = environment(extra) if extra else None
            self.pid = _spawnv_passfds(spawn.get_executable(), cmd, self._fds, env)
            self.sentinel = parent_r
            with open(parent_w, "wb", closefd=False) as handle:
                handle.write(fp.getbuffer())
        finally:
            self.finalizer = util.Finalize(self, util.close_fds, [fd for fd in (parent_r, parent_w) if fd is not None])
            # The child's ends belong to the child alone: while the driver held child_w, the sentinel never became
            # readable when the child exited, so every join waited out its timeout (closing a pool took 5 s a worker).
            for fd in (child_r, child_w):
                if fd is not None:
                    os.close(fd)


class Process(SpawnProcess):
    """A spawned process (use the ``spawn`` context's Pipe, Lock... with it) that leaves ``__main__`` alone.

    >>> Process(target=print, args=("hello",), env=SINGLE_THREADED).start()
    """

    def __init__(self, *args: Any, env: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._extra_env = dict(env or {})

    @staticmethod
    def _Popen(process_obj: Any) -> Any:  # noqa: N802 - multiprocessing's name
        return _Popen(process_obj)
