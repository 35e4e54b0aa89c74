"""The Slurm recipe: dask-jobqueue's SLURMCluster shaped for GMAT, rendered and run without Slurm.

Creating a SLURMCluster starts only its scheduler (no ``sbatch``); the job script it renders is then run with
``bash`` on this machine, as Slurm would on a node, and its workers carry a real sweep.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

pytest.importorskip("dask_jobqueue")
distributed = pytest.importorskip("distributed")
import dask  # noqa: E402

from gmat_sweep import Sweep, dask_config  # noqa: E402
from gmat_sweep.backends.dask import DaskPool  # noqa: E402
from gmat_sweep.backends.dask.cluster import scheduler_workers  # noqa: E402
from gmat_sweep.slurm import job_script, slurm_cluster, slurm_options  # noqa: E402


def directives(script: str) -> list[str]:
    return [line.removeprefix("#SBATCH ") for line in script.splitlines() if line.startswith("#SBATCH")]


def worker_command(script: str) -> str:
    (line,) = [line for line in script.splitlines() if "distributed.cli.dask_worker" in line]
    return line


def test_one_single_threaded_worker_process_per_core():
    script = job_script("tcp://login01:8786", cores=16, walltime="04:00:00", queue="compute",
                        account="mission-design", job_extra_directives=["--exclusive", "--constraint=avx2"],
                        job_script_prologue=["module load gcc"], gmat_root="/opt/GMAT R2026a")
    assert script.startswith("#!/usr/bin/env bash\n")
    assert directives(script) == ["-J gmat-sweep", "-p compute", "-A mission-design", "-n 1", "--cpus-per-task=16",
                                  "--mem=32G", "-t 04:00:00", "--exclusive", "--constraint=avx2"]
    command = worker_command(script)
    assert command.startswith(f"{sys.executable} -m distributed.cli.dask_worker tcp://login01:8786 ")
    assert " --nworkers 16 " in command and " --nthreads 1 " in command and " --nanny " in command
    assert " --memory-limit 2.00GiB " in command  # the job's memory split over its 16 workers
    assert command.endswith("--local-directory ${TMPDIR:-/tmp}")
    assert "export GMAT_ROOT='/opt/GMAT R2026a'" in script and "export OMP_NUM_THREADS=1" in script
    assert "export DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False" in script
    assert "export DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL=1s" in script
    assert script.index("module load gcc") < script.index(command)
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)  # valid shell


def test_options_are_plain_keywords_for_slurmcluster():
    options = slurm_options(cores=4, memory="10GB", scheduler_options={"host": "127.0.0.1"})
    assert options["cores"] == options["processes"] == 4 and options["memory"] == "10GB"
    assert options["python"] == sys.executable and options["nanny"] is True
    assert options["scheduler_options"] == {"host": "127.0.0.1"}
    assert "queue" not in options  # unset choices are left to the site's jobqueue config
    with pytest.raises(ValueError, match="cores must be a positive whole number"):
        slurm_options(cores=0)


def test_rendered_job_runs_gmat_workers_that_carry_a_sweep(leo, tmp_path):
    """Everything Slurm would do with the job script except allocate the node: bash runs it here."""
    with slurm_cluster(cores=2, memory="4GiB", scheduler_options={"host": "127.0.0.1", "dashboard_address": ":0"},
                       local_directory=str(tmp_path / "node-scratch")) as cluster:
        assert cluster.scheduler.worker_ttl is None  # long missions block heartbeats: never drop workers for it
        script = cluster.job_script()
        assert cluster.scheduler_address in script
        assert re.sub(r"--name \S+", "", script) == re.sub(
            r"--name \S+", "", job_script(cluster.scheduler_address, cores=2, memory="4GiB",
                                          local_directory=str(tmp_path / "node-scratch")))
        (tmp_path / "job.sh").write_text(script)
        job = subprocess.Popen(["bash", str(tmp_path / "job.sh")], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with distributed.Client(cluster, set_as_default=False) as client:
                client.wait_for_workers(2, timeout=60)
                info = scheduler_workers(client).values()
                assert [w["nthreads"] for w in info] == [1, 1]
                # The job script's exports reached the worker processes (dask_config.QUIET).
                seen = client.run(lambda: {k: dask.config.get(k) for k in dask_config.QUIET})
                assert list(seen.values()) == [dask_config.QUIET] * 2
                with DaskPool(client) as pool:
                    sweep = Sweep(leo, grid={"Sat.SMA": [7000, 7100, 7200, 7300]}, out=tmp_path / "out").run(
                        pool, progress=False)
        finally:
            os.killpg(job.pid, signal.SIGTERM)
            try:
                job.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(job.pid, signal.SIGKILL)
                job.wait()
    assert sweep.counts()["ok"] == 4
    assert len({e["worker"] for e in sweep.manifest.entries.values()}) == 2
