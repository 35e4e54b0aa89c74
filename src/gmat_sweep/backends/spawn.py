"""Spawned processes that do not import the caller's main module.

multiprocessing's spawn start method runs the parent's ``__main__`` again in every child (as ``__mp_main__``), so
that functions defined there can be found. A script without an ``if __name__ == "__main__":`` guard then starts
its sweep again in each worker, and ``python - < file`` or a heredoc cannot be re-run at all. LocalPool's workers
only ever run gmat-sweep's own functions on plain data, so they have no need of the caller's main module: these
processes are spawned exactly like multiprocessing's, with the caller's ``sys.path`` and working directory, but
without the entry that makes the child re-run ``__main__``.

Functions defined in the caller's main module can therefore not be sent to these workers (define them in a
module), which a sweep never does.
"""

from __future__ import annotations

import io
import os
from multiprocessing import popen_spawn_posix, reduction, spawn, util
from multiprocessing.context import SpawnProcess, set_spawning_popen
from typing import Any

#: The entries of multiprocessing's preparation data that make a spawned child import the parent's main module.
MAIN_ENTRIES = ("init_main_from_path", "init_main_from_name")


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
            self.pid = util.spawnv_passfds(spawn.get_executable(), cmd, self._fds)
            self.sentinel = parent_r
            with open(parent_w, "wb", closefd=False) as handle:
                handle.write(fp.getbuffer())
        finally:
            self.finalizer = util.Finalize(self, util.close_fds, [fd for fd in (parent_r, parent_w) if fd is not None])


class Process(SpawnProcess):
    """A spawned process (use the ``spawn`` context's Pipe, Lock... with it) that leaves ``__main__`` alone.

    >>> Process(target=print, args=("hello",)).start()
    """

    @staticmethod
    def _Popen(process_obj: Any) -> Any:  # noqa: N802 - multiprocessing's name
        return _Popen(process_obj)
