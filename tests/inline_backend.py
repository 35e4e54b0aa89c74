"""A backend of the test suite's own, added the way any backend is: one module with its Pool and its command-line
options, and one registry line (here a ``register`` call: a test cannot edit the package's list).

``InlinePool`` runs each task in the calling process, one at a time, as it is submitted, through the public Pool
contract only, and appends a line per task (function, run id, pid) to the file given with ``--inline-log``: the
option only this backend reads.
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Mapping
from typing import Any

import click

from gmat_sweep.backends import Backend, Pool
from gmat_sweep.backends.options import BackendOptions, OptionError


class InlinePool(Pool):
    def __init__(self, log: str, max_workers: int | None = None) -> None:
        self.log = log
        self.asked_workers = max_workers

    @property
    def max_workers(self) -> int:
        return 1

    def submit(self, fn: Any, *args: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - the task's error belongs to its future
            future.set_exception(exc)
        with open(self.log, "a") as handle:
            handle.write(f"{getattr(fn, '__name__', 'task')} {getattr(args[0], 'run_id', '-')} {os.getpid()}\n")
        return future

    def wait_any(self, futures: list[Any], timeout: float | None = None) -> set[Any]:
        return {future for future in futures if future.done()}  # every task is done once submitted

    def result(self, future: Any) -> Any:
        return future.result()


def _pool_kwargs(options: Mapping[str, Any]) -> dict[str, Any]:
    if not options["inline_log"]:
        raise OptionError("--backend inline needs --inline-log FILE")
    return {"log": options["inline_log"], "max_workers": options["workers"]}


OPTIONS = BackendOptions(_pool_kwargs, (
    click.option("--inline-log", default=None, metavar="FILE", help="inline: append a line per task to FILE."),
))

BACKEND = Backend("inline", "inline_backend:InlinePool", "inline_backend:OPTIONS")
