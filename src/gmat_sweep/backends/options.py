"""What the gmat-sweep command gives each backend: the options only it reads, and the Pool keyword arguments the
parsed options become (LocalPool, DaskPool and KubernetesPool's here; a new backend declares its own beside its
Pool).

Kept apart from the pools because the command reads every backend's options to build ``--help``, and DaskPool and
KubernetesPool need extras that may not be installed: this module imports only click.

>>> LOCAL.pool_kwargs({"workers": 4, "scheduler": None})
{'max_workers': 4}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import click

from ..distribution import install_hint


class OptionError(Exception):
    """An option given to a backend that cannot use it, or one it needs and lacks; the command shows it as a usage
    error (exit code 2)."""


@dataclasses.dataclass(frozen=True)
class BackendOptions:
    """One backend as the gmat-sweep command sees it.

    ``pool_kwargs``: the command's parsed options (the options every running command takes, ``workers``,
    ``timeout``, ``scheduler``, ``shared_storage``, plus this backend's own, by parameter name) -> the Pool's
    keyword arguments; raises :class:`OptionError` for an option it cannot use. ``options``: ``click.option(...)``
    decorators only this backend reads, listed last in ``--help`` in this order; given with another backend, they
    are a usage error. ``log``: a logger whose INFO lines the command shows (the life of a cluster it starts).

    >>> OPTIONS = BackendOptions(lambda o: {"log": o["inline_log"]},
    ...                          (click.option("--inline-log", default=None, help="inline: the log file."),))
    """

    pool_kwargs: Callable[[Mapping[str, Any]], dict[str, Any]]
    options: tuple[Callable[[Any], Any], ...] = ()
    log: str | None = None


def _local(options: Mapping[str, Any]) -> dict[str, Any]:
    if options["scheduler"]:
        raise OptionError("--scheduler needs --backend dask")
    return {"max_workers": options["workers"]}  # each run carries its own time limit


def _dask(options: Mapping[str, Any]) -> dict[str, Any]:
    # Without --shared-storage: DaskPool's default (its own LocalCluster writes in place, a scheduler returns files).
    return {"address": options["scheduler"], "n_workers": options["workers"],
            "shared_storage": True if options["shared_storage"] else None}


def _kubernetes(options: Mapping[str, Any]) -> dict[str, Any]:
    if options["scheduler"]:
        raise OptionError("--scheduler is for --backend dask; --backend kubernetes starts its own scheduler")
    if not options["image"]:
        raise OptionError("--backend kubernetes needs --image REPO:VERSION, the gmat-sweep image every Pod "
                          "runs (see docker/README.md)")
    try:
        import dask_kubernetes  # noqa: F401

        from .kubernetes import KubernetesPool  # noqa: F401
    except ImportError as exc:
        raise OptionError(f"--backend kubernetes needs the Kubernetes extra ({exc}): "
                          + install_hint("kubernetes")) from None
    from ..kubernetes import DEFAULT_MOUNT

    return {"image": options["image"], "n_workers": options["workers"] or 2, "claim": options["claim"],
            "mount_path": options["mount"] or DEFAULT_MOUNT, "namespace": options["namespace"],
            "allow_unpinned": options["allow_unpinned"],
            "shared_storage": True if options["shared_storage"] else None,
            "scheduler_service_type": options["scheduler_service_type"]}


LOCAL = BackendOptions(_local)
DASK = BackendOptions(_dask)
KUBERNETES = BackendOptions(_kubernetes, (
    click.option("--image", default=None,
                 help="kubernetes: the pinned gmat-sweep image of every Pod, REPO:VERSION or REPO@sha256:..."),
    click.option("--claim", default=None,
                 help="kubernetes: PersistentVolumeClaim mounted in every Pod; workers write --out there."),
    click.option("--mount", default=None, help="kubernetes: where --claim is mounted (default /shared)."),
    click.option("--namespace", default=None, help="kubernetes: namespace (default: the current one)."),
    click.option("--allow-unpinned", is_flag=True, help="kubernetes: accept an image without a version."),
    click.option("--scheduler-service-type", type=click.Choice(["ClusterIP", "NodePort", "LoadBalancer"]),
                 default="ClusterIP", show_default=True,
                 help="kubernetes: how the driver reaches the scheduler (ClusterIP: port-forward from outside "
                      "the cluster)."),
), log="gmat_sweep.kubernetes")  # the cluster's life: creating, up, deleted (or what to delete by hand)
