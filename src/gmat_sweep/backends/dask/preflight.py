"""Before a sweep's first run on a Dask cluster: wait for workers, check every one of them, prove shared storage,
and register the gate (every later worker is checked the same way) and the nanny's timeout watchdog.

``admission.py`` holds the checks themselves; this is the order the driver runs them in, and what it tells the
user on the way (a worker with several threads, a timeout no nanny can enforce).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
import uuid
import warnings
from typing import Any

from distributed import NannyPlugin, WorkerPlugin

from . import deadline
from .admission import GATE_PLUGIN, DaskPoolError, ask_workers, expected_fingerprint, portable_plugin, storage_problem
from .cluster import scheduler_workers
from .deadline import NoAnswer, run_on_each, within
from .on_worker import WATCHDOG_PLUGIN

logger = logging.getLogger("gmat_sweep.dask")


class Preflight:
    """One DaskPool's checks of its cluster (``DaskPool.prepare`` runs them), and the storage token they leave.

    >>> resource = Preflight(client, client.scheduler.address).admit(None, "sweeps/sma", shared_storage=False,
    ...                                                              timeout=None, worker_wait=60.0)  # doctest: +SKIP
    """

    def __init__(self, client: Any, address: str) -> None:
        self._client = client
        self.address = address
        #: The token file proving shared storage, while one exists (removed by :meth:`remove_token`).
        self.token_path: str | None = None
        self._warned_threads = False

    def admit(self, engine: str | None, out: str | None, *, shared_storage: bool, timeout: float | None,
              worker_wait: float) -> str:
        """Check every worker before the sweep starts; let later workers in only once they pass the same check.

        Returns the Dask resource the gate grants to the workers that pass: every run needs it."""
        self._await_workers(worker_wait)
        reports = ask_workers(self._client, engine)
        if not reports:  # every worker left while it was asked (a cluster shrinking): check the next ones
            self._await_workers(worker_wait)
            reports = ask_workers(self._client, engine)
        expected = expected_fingerprint(reports, self.address)
        self._warn_threads(reports)
        token = None
        if shared_storage:
            if not out:
                raise DaskPoolError("shared_storage=True needs the sweep's out= folder")
            token = self._check_shared_storage(os.path.abspath(out), list(reports))
        else:
            # A return-mode sweep after a shared-storage one on the same pool: the gate must not ask workers for
            # the earlier sweep's token (it holds none to compare with, so every worker would be refused).
            self.remove_token()
        digest = hashlib.sha256(json.dumps([expected, self.token_path], sort_keys=True).encode()).hexdigest()
        resource = f"gmat-sweep-{digest[:12]}"
        gate = portable_plugin(WorkerPlugin, "Gate", resource=resource, expected=expected, engine=engine,
                               token_path=self.token_path, token=token)
        self._register(gate, GATE_PLUGIN)
        self._register(portable_plugin(NannyPlugin, "Watchdog"), WATCHDOG_PLUGIN)
        # A worker's engine process enforces timeouts itself; only a worker that runs missions in its own process
        # (GMAT_SWEEP_ENGINE_PROCESS=0) needs its nanny for that.
        unguarded = sorted(a for a, r in reports.items() if isinstance(r, dict) and not r.get("nanny")
                           and not r.get("engine_process", True))
        if timeout and unguarded:
            # stacklevel counts this method and DaskPool.prepare: the warning names the sweep's line
            warnings.warn(f"timeout={timeout:g} cannot be enforced on workers without a nanny that run GMAT in "
                          f"their own process ({', '.join(unguarded)}): GMAT holds the process while a mission "
                          "runs, so only the nanny can stop it. Start workers with a nanny (the default of 'dask "
                          "worker'), or leave GMAT_SWEEP_ENGINE_PROCESS unset.", RuntimeWarning, stacklevel=4)
        return resource

    def _register(self, plugin: Any, name: str, attempts: int = 3) -> None:
        # A worker that leaves while the scheduler hands it the plugin (an autoscaler retiring it, a Pod evicted)
        # makes the scheduler drop this call's connection. The scheduler already holds the plugin for every worker,
        # present and future, so the call is made again: it reaches the workers still there.
        for attempt in range(1, attempts + 1):
            try:
                within(deadline.ANSWER_WAIT, self._client.register_plugin, plugin, name=name)
                return
            except NoAnswer:
                # The scheduler holds the plugin and handed it to every worker at once; it still waits for one
                # that does not answer (left out of the sweep already: it was warned of), not for those that did.
                logger.warning("the scheduler at %s still waits for a Dask worker to take the %s plugin after %g s; "
                               "the sweep goes on with the workers that answered", self.address, name,
                               deadline.ANSWER_WAIT)
                return
            except OSError as exc:  # distributed's CommClosedError is one
                if attempt == attempts:
                    raise DaskPoolError(
                        f"the scheduler at {self.address} dropped the connection {attempts} times while gmat-sweep's "
                        f"{name} plugin was handed to its workers ({exc}): check that the cluster is up and its "
                        "workers stay, then run or resume the sweep again") from None
                logger.info("a Dask worker left while the %s plugin was handed out (%s): handing it out again",
                            name, exc)

    def _await_workers(self, worker_wait: float) -> None:
        deadline = time.monotonic() + worker_wait
        nudge = None
        try:
            while not scheduler_workers(self._client):
                if time.monotonic() >= deadline:
                    raise DaskPoolError(
                        f"no Dask worker connected to the scheduler at {self.address} within {worker_wait:g} s. "
                        f"Start workers (dask worker {self.address} --nthreads 1), scale the cluster "
                        "(cluster.scale(n) or cluster.adapt(minimum=1)), or wait longer with worker_wait=.")
                if nudge is None:
                    logger.warning("waiting up to %g s for Dask workers to connect to %s", worker_wait,
                                   self.address)
                    # An adaptive cluster only grows when work is pending: give it some.
                    nudge = self._client.submit(time.sleep, 0, pure=False, key=f"gmat-sweep-waiting-{uuid.uuid4()}")
                time.sleep(0.25)
        finally:
            if nudge is not None:
                nudge.cancel()

    def _warn_threads(self, reports: dict[str, Any]) -> None:
        crowded = {a: r.get("nthreads") for a, r in reports.items() if isinstance(r, dict) and r.get("nthreads", 1) > 1}
        if crowded and not self._warned_threads:
            self._warned_threads = True
            names = ", ".join(f"{a} ({n} threads)" for a, n in sorted(crowded.items()))
            warnings.warn(
                f"Dask workers with several threads: {names}. GMAT runs one mission at a time per process, so the "
                "extra threads wait; start more single-threaded worker processes instead (dask worker --nthreads 1 "
                "--nworkers N, or LocalCluster(threads_per_worker=1, n_workers=N)).", RuntimeWarning, stacklevel=4)

    def _check_shared_storage(self, out: str, workers: list[str]) -> str:
        token = uuid.uuid4().hex
        self.remove_token()
        path = os.path.join(out, f".gmat-sweep-storage-{token[:12]}")
        with open(path, "w") as handle:
            handle.write(token)
        self.token_path = path
        replies = run_on_each(self._client, storage_problem, path, token, workers=workers)  # those that answered
        blind = {a: (r if isinstance(r, str) else f"{type(r).__name__}: {r}") for a, r in replies.items()
                 if r is not None}
        if blind:
            self.remove_token()
            lines = "\n  ".join(f"{a}: {why}" for a, why in sorted(blind.items()))
            raise DaskPoolError(
                f"shared_storage=True but out={out} is not the same folder on these workers:\n  {lines}\n"
                "Mount the shared volume at the same path on the driver and every worker, or drop shared_storage "
                "(the default return mode ships each run's files back to the driver).")
        return token

    def remove_token(self) -> None:
        """Delete the token file of the shared-storage check, if one is left (the pool closes)."""
        if self.token_path:
            with contextlib.suppress(OSError):
                os.remove(self.token_path)
            self.token_path = None
