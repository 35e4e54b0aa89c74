"""The gate in front of every Dask worker: the versions and GMAT engine it must share with the driver and the
other workers, checked before a sweep and on every worker that joins later; and the shared-storage check."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import socket
import time
import warnings
from collections.abc import Callable
from typing import Any

from ...versions import gate_versions, installed_versions
from . import deadline
from .deadline import NoAnswer, run_on_each


logger = logging.getLogger("gmat_sweep.dask")

#: Engine facts every worker must share with the other workers (the numbers depend on them).
ENGINE_KEYS = ("engine", "gmat_version", "gmatpy")
GATE_PLUGIN = "gmat-sweep-gate"
REFUSED_TOPIC = "gmat-sweep-refused"


class DaskPoolError(ValueError):
    """The Dask cluster cannot run the sweep as asked (unreachable, no workers, mismatched versions, unshared
    storage). The message names what is wrong and what to do; nothing finished is lost."""


# Raised here and by the pool; users catch it as gmat_sweep.backends.dask.DaskPoolError, the name errors show.
DaskPoolError.__module__ = "gmat_sweep.backends.dask"


def describe_worker(engine: str | None, address: str = "", nthreads: int = 1) -> dict[str, Any]:
    """What a worker runs: package versions and its GMAT engine's fingerprint (starting the engine once)."""
    from ...engine import EngineError, get_engine
    from ...worker import engine_lock

    from .engine_process import enabled

    info: dict[str, Any] = {"address": address, "nthreads": nthreads, "host": socket.gethostname(),
                            "pid": os.getpid(), "versions": installed_versions(), "engine_process": enabled()}
    try:
        with engine_lock:  # never start the engine beside a running mission
            info["engine"] = get_engine(engine).fingerprint()
    except EngineError as exc:
        info["error"] = f"the GMAT engine does not start there: {exc}"
    except Exception as exc:  # noqa: BLE001 - report, do not crash the worker's event loop
        info["error"] = f"the GMAT engine does not start there ({type(exc).__name__}: {exc})"
    return info


def make_probe() -> Callable[..., Any]:
    # Defined inside a function so that cloudpickle ships it by value: it must run even where gmat_sweep is not
    # installed, to say so.
    async def probe(engine: str | None, dask_worker: Any = None) -> dict[str, Any]:
        import asyncio as _asyncio
        import sys as _sys

        try:
            from gmat_sweep.backends.dask import describe_worker as _describe
        except Exception as exc:  # noqa: BLE001
            return {"error": f"gmat-sweep cannot be imported there ({type(exc).__name__}: {exc}); install the "
                             f"driver's gmat-sweep version in the workers' environment ({_sys.executable})"}
        loop = _asyncio.get_running_loop()
        report = await loop.run_in_executor(None, _describe, engine, dask_worker.address, dask_worker.state.nthreads)
        report["nanny"] = dask_worker.nanny
        return report

    return probe


def ask_workers(client: Any, engine: str | None, attempts: int = 3) -> dict[str, Any]:
    """Every connected worker's :func:`describe_worker` report, keyed by address.

    A worker that leaves while it is asked (an autoscaler retiring it, a Pod evicted) is not one of the sweep's
    workers and is dropped; one that stays but did not answer is asked again, and reported as it answered last.
    One that does not answer within :data:`~.deadline.ANSWER_WAIT` seconds is left out, with a warning: waiting
    for it could last forever. Workers that join later pass the same check in the gate plugin."""
    from .cluster import scheduler_workers  # cluster.py imports this module

    reports: dict[str, Any] = {}
    silent: set[str] = set()
    pending: list[str] | None = None  # None: ask every worker
    for attempt in range(attempts):
        logger.debug("asking %s Dask workers what they run", "all" if pending is None else len(pending))
        for worker, reply in run_on_each(client, make_probe(), engine, workers=pending).items():
            if isinstance(reply, NoAnswer):
                silent.add(worker)  # it had its whole deadline: asking again would only wait as long again
                reports.pop(worker, None)  # what it said before (an error, then asked again) is not its answer
            else:
                reports[worker] = reply
        unanswered = [w for w, r in reports.items() if not isinstance(r, dict)]
        if not unanswered:
            break
        present = set(scheduler_workers(client))
        for worker in unanswered:
            if worker not in present:
                logger.info("Dask worker %s left the cluster while it was asked; the sweep goes on without it", worker)
                del reports[worker]
        pending = [w for w in unanswered if w in present]
        if not pending:
            break
        time.sleep(0.5 * (attempt + 1))  # a worker on its way out may still be listed for a moment
    if silent:
        present = set(scheduler_workers(client))
        for worker in sorted(silent - present):
            logger.info("Dask worker %s left the cluster while it was asked; the sweep goes on without it", worker)
        silent &= present
    if silent:
        names = ", ".join(sorted(silent))
        if not reports:
            raise DaskPoolError(
                f"no Dask worker answered gmat-sweep's check within {deadline.ANSWER_WAIT:g} s ({names}): a worker "
                "whose process is stopped or whose event loop is held never answers. Restart the workers (or "
                "give them time to finish what holds them), then run or resume the sweep again.")
        warnings.warn(f"Dask worker(s) {names} did not answer gmat-sweep's check within {deadline.ANSWER_WAIT:g} "
                      "s (a stopped process, or an event loop held): the sweep runs without them. Restart them to "
                      "have them take runs.", RuntimeWarning, stacklevel=4)
    return reports


def _engine_identity(report: dict[str, Any]) -> dict[str, Any]:
    engine = report.get("engine") or {}
    return {k: engine.get(k) for k in ENGINE_KEYS if k in engine}


def expected_fingerprint(reports: dict[str, Any], address: str) -> dict[str, Any]:
    """The fingerprint every worker must have: the driver's versions and the engine all workers share.

    Raises :class:`DaskPoolError` naming each worker that lacks gmat-sweep or the engine, or differs."""
    problems: dict[str, str] = {}
    good: dict[str, dict[str, Any]] = {}
    for worker, report in reports.items():
        if not isinstance(report, dict):
            problems[worker] = f"could not be asked ({type(report).__name__}: {report})"
        elif report.get("error"):
            problems[worker] = report["error"]
        else:
            good[worker] = report
    driver = gate_versions()
    for worker, report in good.items():
        diff = _differences(report["versions"], driver, "driver")
        if diff:
            problems[worker] = diff
    engines = collections.Counter(json.dumps(_engine_identity(r), sort_keys=True) for r in good.values())
    common = json.loads(engines.most_common(1)[0][0]) if engines else {}
    if len(engines) > 1:
        for worker, report in good.items():
            diff = _differences(_engine_identity(report), common, "most workers")
            if diff:
                problems.setdefault(worker, diff)
    if problems:
        lines = "\n  ".join(f"{w}: {why}" for w, why in sorted(problems.items()))
        raise DaskPoolError(
            f"{len(problems)} of {len(reports)} Dask workers at {address} cannot run this sweep:\n  {lines}\n"
            "Every worker needs the driver's gmat-sweep, Python, pandas, pyarrow, numpy and distributed versions "
            "and the same GMAT engine (build workers from one image or environment; run 'gmat-sweep doctor' on a "
            "machine to see what it has: its 'dask gate' section lists the versions compared here), or remove the "
            "odd workers from the cluster.")
    return {"versions": driver, "engine": common}


def _differences(theirs: dict[str, Any], ours: dict[str, Any], whose: str) -> str:
    diff = [f"{k} {theirs.get(k, 'missing')} ({whose}: {v})" for k, v in ours.items() if theirs.get(k) != v]
    return ("differs: " + ", ".join(diff)) if diff else ""


def _worker_problem(report: dict[str, Any], expected: dict[str, Any]) -> str:
    if report.get("error"):
        return report["error"]
    return (_differences(report["versions"], expected["versions"], "driver")
            or _differences(_engine_identity(report), expected["engine"], "the sweep's workers"))


def storage_problem(path: str, token: str) -> str | None:
    """None when this worker reads ``token`` at ``path`` and can write beside it; else what is wrong."""
    try:
        with open(path) as handle:
            if handle.read() != token:
                return f"{path} holds something else here: another folder is mounted at that path"
    except OSError as exc:
        return f"cannot read the driver's check file {path} ({exc.strerror}): the folder is not shared with it"
    probe = f"{path}-{socket.gethostname()}-{os.getpid()}"
    try:
        with open(probe, "w") as handle:
            handle.write("ok")
        os.remove(probe)
    except OSError as exc:
        return f"cannot write in {os.path.dirname(path)} ({exc.strerror})"
    return None


def portable_plugin(kind: type, implementation: str, **state: Any) -> Any:
    """A plugin shipped by value that loads ``implementation`` from gmat_sweep on the worker or nanny, so a
    worker or nanny without gmat-sweep still starts (and gets no runs) instead of failing to unpickle it."""

    class GmatSweepPlugin(kind):  # type: ignore[misc, valid-type]
        name = implementation

        def __init__(self) -> None:
            self.state = state
            self.impl: Any = None

        async def setup(self, **server: Any) -> None:
            import importlib
            import logging as _logging

            try:
                self.impl = getattr(importlib.import_module("gmat_sweep.backends.dask"), implementation)(**state)
            except Exception as exc:  # noqa: BLE001 - say why, never break the server
                problem = f"gmat-sweep cannot be imported there ({type(exc).__name__}: {exc})"
                _logging.getLogger("gmat_sweep.dask").warning("gmat-sweep: %s", problem)
                if "worker" in server:
                    server["worker"].log_event(REFUSED_TOPIC, {"worker": server["worker"].address,
                                                                      "problem": problem})
                return
            await self.impl.setup(*server.values())

        async def teardown(self, **server: Any) -> None:
            if self.impl is not None:
                await self.impl.teardown(*server.values())

    return GmatSweepPlugin()


class Gate:
    """Runs on every worker, now and when it joins later: grants the sweep's resource only to workers that pass."""

    def __init__(self, resource: str, expected: dict[str, Any], engine: str | None, token_path: str | None,
                 token: str | None) -> None:
        self.resource = resource
        self.expected = expected
        self.engine = engine
        self.token_path = token_path
        self.token = token
        self.problem: str | None = None

    async def setup(self, worker: Any) -> None:
        from distributed.core import Status

        loop = asyncio.get_running_loop()
        report = await loop.run_in_executor(None, describe_worker, self.engine, worker.address,
                                            worker.state.nthreads)
        problem = _worker_problem(report, self.expected)
        if not problem and self.token_path:
            problem = await loop.run_in_executor(None, storage_problem, self.token_path, self.token) or ""
        if problem:
            self.problem = problem
            logger.warning("gmat-sweep: this worker gets no runs: %s", problem)
            with contextlib.suppress(Exception):
                worker.log_event(REFUSED_TOPIC, {"worker": worker.address, "problem": problem})
            return
        await worker.set_resources(**{self.resource: worker.state.nthreads})
        if worker.status == Status.running:
            # The scheduler looks for runnable tasks when a worker (re)starts running, not when its resources grow:
            # a brief pause makes it hand this worker the runs that waited for one while none was usable.
            worker.status = Status.paused
            worker.status = Status.running

    async def teardown(self, worker: Any) -> None:
        if not self.problem:
            with contextlib.suppress(Exception):
                await worker.set_resources(**{self.resource: 0})
