"""LocalPool: spawned worker processes on this machine, each starting the GMAT engine once.

GMAT is process-global and a bad script can crash the process that runs it, so each run executes in a worker
process that does one task at a time. The pool watches every worker: when one dies (segfault, kill -9, the
out-of-memory killer) or overruns the per-run ``timeout``, only the task it was running fails, with ``WorkerLost``,
and a fresh process takes its place. Workers are spawned, never forked, because GMAT cannot be used after fork.
Their temporary files (GMAT's runtime folder and temporary outputs, the scripts each run executes) go into a
folder of each worker's own inside one folder of the pool's, removed when the pool closes: a worker that is killed
cannot clean up after itself. Workers do not import the caller's main module (see backends/spawn.py), so a script
needs no ``if __name__ == "__main__":`` guard to use this pool.

A worker whose last task took under ``process.PREFETCH_BELOW`` seconds is sent its next task while it still runs the
current one, so it starts the next the moment it finishes instead of waiting a pipe round trip for the driver
(about 1 % of a 40 ms mission). A task sent ahead is never stuck behind a run that turns out long: when another
worker runs out of work, the driver takes the task back, if its worker has not started it (a lock shared with the
worker settles who was first), and hands it to the idle one. A worker that dies fails only the task it had started.

A sweep's short runs go several to a message (``batches.py``), and while every worker has work sent ahead the
dispatcher lets results gather for a few tens of milliseconds and reads each worker's pipe in one call
(``inbox.py``): the driver's CPU per run halves. Each run of a batch is still claimed, timed and answered on its
own, so a finished run is recorded while its batch-mates run, and the unstarted ones can be taken back.

The package: ``pool.py``, the driver's side (queue, dispatcher thread, timeouts, replacing a dead process),
``batches.py`` (a sweep's runs in batches), ``inbox.py`` (waiting for and reading the workers' pipes), and
``process.py``, one worker process (what runs inside it, and the driver's handle on it).
"""

from .pool import LocalPool

__all__ = ["LocalPool"]
