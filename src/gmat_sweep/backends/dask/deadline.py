"""Questions the driver puts to every Dask worker, with a deadline.

``Client.run`` and ``Client.register_plugin`` wait for every worker's answer, and a worker that is still connected
but does not answer (its process stopped, its event loop held, its host unreachable without a reset) is waited for
forever. Before a sweep's first run that would hang the sweep: each worker is asked on its own instead, and one that
does not answer within :data:`ANSWER_WAIT` seconds is left out (it gets no runs: runs need the resource the gate
grants to workers that answered).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any

#: Seconds a worker has to answer the driver's check. Its first answer starts GMAT (a few seconds, more on a loaded
#: machine); a worker running missions in its own process (GMAT_SWEEP_ENGINE_PROCESS=0) answers once its mission
#: ends, so a worker busy with a mission longer than this is left out of the sweep, with a warning.
ANSWER_WAIT = 120.0
#: Seconds the pool's close waits for the scheduler to take gmat-sweep's plugins off the workers.
CLOSE_WAIT = 30.0


class NoAnswer(TimeoutError):
    """A worker's reply when it did not answer within the deadline."""


def run_on_each(client: Any, function: Callable[..., Any], *args: Any, workers: Sequence[str] | None = None,
                wait: float | None = None) -> dict[str, Any]:
    """``client.run(function, *args, on_error="return")`` on every worker (or ``workers``), each asked on its own:
    a worker that does not answer within ``wait`` seconds (:data:`ANSWER_WAIT`) has a :class:`NoAnswer` as reply.

    >>> run_on_each(client, os.getpid)  # doctest: +SKIP
    {'tcp://127.0.0.1:40121': 5120, 'tcp://127.0.0.1:40123': NoAnswer('no answer within 120 s')}
    """
    seconds = ANSWER_WAIT if wait is None else wait

    async def one(worker: str) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(
                client.run(function, *args, workers=[worker], on_error="return", asynchronous=True), seconds)
        except asyncio.TimeoutError:
            return {worker: NoAnswer(f"no answer within {seconds:g} s")}

    async def ask() -> dict[str, Any]:
        names = list(workers) if workers is not None else list((await client.scheduler.identity())["workers"])
        replies = await asyncio.gather(*(one(w) for w in names))
        return {address: reply for found in replies for address, reply in found.items()}

    return client.sync(ask)


def within(seconds: float, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)``'s result, or :class:`NoAnswer` after ``seconds``: for the client calls that take no
    deadline (``register_plugin``). The call goes on in the background; what it waits for is the scheduler's."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = call(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="gmat-sweep-dask-call", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise NoAnswer(f"no answer within {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")
