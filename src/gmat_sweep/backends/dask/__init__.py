"""DaskPool: run a sweep on any Dask cluster (a LocalCluster, Kubernetes, Slurm through dask-jobqueue).

>>> from distributed import Client
>>> with DaskPool(client=Client("tcp://scheduler:8786")) as pool:
...     df = sweep("mission.script", grid={"Sat.SMA": [7000, 7100]}, backend=pool, out="sweeps/sma")

What it adds to plain Dask, and why:

* **A gate in front of every worker.** Before a sweep, every worker reports its gmat-sweep, Python, pandas,
  pyarrow, numpy and distributed versions and starts its GMAT engine (once per process, which is also the warm-up).
  Versions that differ from the driver's, or an engine that differs between workers, refuse the sweep with the odd
  workers named. A worker plugin repeats the check on every worker that joins later (autoscaling, a restarted
  worker) and only then grants it a Dask *resource* that every run requires, so a worker that does not pass never
  receives a run.
* **Where the files go.** On a scheduler's cluster, by default (*return mode*), a worker runs each mission into a
  private temporary folder and ships its files back inside the outcome; the driver writes them under
  ``out/runs/<id>/``. With shared storage (``shared_storage=True``; the default on the pool's own LocalCluster,
  whose workers are processes of this machine) workers write under ``out=`` directly; the pool first proves that
  every worker sees the driver's ``out=`` (a token file the driver writes must be readable, and the folder
  writable, from each worker).
* **Batching.** Missions of a few tens of milliseconds would spend as long in Dask's bookkeeping as in GMAT, so once
  the first runs show how long a run takes, runs shorter than 0.2 s travel in batches of about 2 s of work, which
  shrink near the end of the sweep so that the workers finish together (``batching.py``).
* **Lost workers.** A worker that dies mid-run has its tasks rescheduled by Dask. A batch that keeps killing
  workers is split so that only the run that crashes GMAT fails (with ``WorkerLost``); a sweep whose cluster has no
  usable worker for ``worker_wait`` seconds stops with :class:`DaskPoolError` instead of hanging. Every finished
  run is already in the manifest, so ``Sweep.from_manifest(out).resume()`` finishes the rest.
* **GMAT in a single-threaded process.** Each worker runs its missions in an engine process of its own (see
  ``engine_process.py``): GMAT is slower in a multi-threaded process such as a Dask worker, and holds the GIL for a
  whole mission, which the worker's heartbeat then need not wait for.
* **Timeouts and crashes.** A run that overruns ``timeout`` (or the sweep's), or crashes GMAT, is recorded as
  failed and only its engine process is killed; the worker starts another for its next run. With
  ``GMAT_SWEEP_ENGINE_PROCESS=0`` GMAT runs in the worker process, and a watchdog in the worker's nanny kills the
  worker on a timeout (workers without a nanny then cannot time out runs).
"""

from .admission import DaskPoolError, Gate, describe_worker, installed_versions
from .on_worker import Watchdog
from .pool import DaskPool

# Gate and Watchdog are loaded by name on workers and nannies (see admission._portable).
__all__ = ["DaskPool", "DaskPoolError", "Gate", "Watchdog", "describe_worker", "installed_versions"]
