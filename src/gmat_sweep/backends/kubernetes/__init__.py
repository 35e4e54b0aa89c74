"""KubernetesPool: a sweep on its own Dask cluster on Kubernetes, made through the Dask operator and deleted after.

>>> with KubernetesPool("ghcr.io/acme/gmat-sweep:0.1.0", 8, claim="gmat-shared") as pool:
...     df = sweep("/shared/missions/mission.script", grid={"Sat.SMA": [7000, 7100]}, backend=pool,
...                out="/shared/sweeps/sma")

It is ``DaskPool(client=Client(KubeCluster(custom_cluster_spec=cluster_spec(...))))`` plus what a sweep needs
around that, and why:

* **The cluster lives exactly as long as the pool.** ``close()`` (the end of the ``with`` block, an error, Ctrl-C)
  closes the pool and its client, then deletes the ``DaskCluster``; the operator's objects and Pods go with it.
  A Ctrl-C while the cluster is being deleted is held back until it is gone (a second one gives up, and the log
  says which ``kubectl delete`` finishes the job). A Ctrl-C or an error while the cluster starts deletes whatever
  was created.
* **Checks before anything is created.** The operator's CRDs must be served (else: how to install the operator),
  the driver's identity must be allowed to create, read and delete what a DaskCluster needs (else: which verb on
  which resource is missing, and the Role that ``gmat-sweep k8s render`` prints), and the name must be free.
* **A start-up deadline.** ``KubeCluster`` waits for its scheduler Pod without limit; here the start fails after
  ``wait_timeout`` seconds with the state of every Pod, and at once when the nodes cannot pull the image.
* **Shared storage when there is a claim.** Workers write run folders straight into the claim (``out=`` must be
  under ``mount_path``, on a driver that mounts the same claim there, e.g. a driver Pod); without a claim the
  files come back to the driver (return mode), which needs no storage at all.
* **Long missions.** GMAT holds the GIL for a whole mission, so a worker cannot heartbeat meanwhile: the
  scheduler Pod gets ``DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL=None`` so that it never drops a busy worker.

``scale(n)`` and ``adapt(minimum, maximum)`` resize the cluster mid-sweep; DaskPool follows the worker count.
"""


from .cluster import DEFAULT_WAIT
from ...kubernetes import (ADAPT_PERMISSIONS, DASK_GROUP, PORT_FORWARD_PERMISSIONS, SCALE_PERMISSIONS,
                           START_PERMISSIONS)
from .permissions import OPERATOR_INSTALL, KubernetesPoolError
from .pool import KubernetesPool, cluster_name

__all__ = ["ADAPT_PERMISSIONS", "DASK_GROUP", "DEFAULT_WAIT", "OPERATOR_INSTALL", "PORT_FORWARD_PERMISSIONS",
           "SCALE_PERMISSIONS", "START_PERMISSIONS", "KubernetesPool", "KubernetesPoolError", "cluster_name"]
