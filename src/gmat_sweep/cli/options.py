"""The options every running command takes (backend, workers, time limit, Kubernetes), and the pool they build."""

from __future__ import annotations

from typing import Any

import click

from ..backends import BACKENDS, default_backend
from ..distribution import install_hint
from .common import echo_log


class _TimeoutType(click.ParamType):
    name = "timeout"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        from ..timeouts import normalize

        try:
            return normalize(value)
        except (ValueError, TypeError):
            self.fail(f"{value!r}: give a number of seconds > 0, 'none' (no limit) or 'adaptive'", param, ctx)


def backend_options(fn: Any) -> Any:
    # Applied last-shown-first: --help lists --backend, --workers, --timeout, ... in that order.
    fn = click.option("--no-progress", is_flag=True, help="No progress bar.")(fn)
    fn = click.option("--shared-storage", is_flag=True,
                      help="Dask workers see --out on a shared volume and write there directly.")(fn)
    fn = click.option("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://HOST:8786.")(fn)
    fn = click.option("--timeout", type=_TimeoutType(), default=None, metavar="SECONDS|none|adaptive",
                      help="Seconds one run may take before it is stopped and recorded as failed; 'none': no limit. "
                           "Default: adaptive (stops only a run far out of line with the others; resume keeps the "
                           "sweep's saved limit).")(fn)
    fn = click.option("--workers", "-j", type=click.IntRange(min=1), default=None,
                      help="Worker processes (local: default one per core; dask: LocalCluster size; "
                           "kubernetes: worker Pods, default 2).")(fn)
    fn = click.option("--backend", type=click.Choice([b.name for b in BACKENDS]), default=default_backend().name,
                      show_default=True, help="Where runs execute.")(fn)
    return fn


def kubernetes_options(fn: Any) -> Any:
    """The options only --backend kubernetes reads: a command lists them last."""
    fn = click.option("--scheduler-service-type", type=click.Choice(["ClusterIP", "NodePort", "LoadBalancer"]),
                      default="ClusterIP", show_default=True,
                      help="kubernetes: how the driver reaches the scheduler (ClusterIP: port-forward from outside "
                           "the cluster).")(fn)
    fn = click.option("--allow-unpinned", is_flag=True, help="kubernetes: accept an image without a version.")(fn)
    fn = click.option("--namespace", default=None, help="kubernetes: namespace (default: the current one).")(fn)
    fn = click.option("--mount", default=None, help="kubernetes: where --claim is mounted (default /shared).")(fn)
    fn = click.option("--claim", default=None,
                      help="kubernetes: PersistentVolumeClaim mounted in every Pod; workers write --out there.")(fn)
    fn = click.option("--image", default=None,
                      help="kubernetes: the pinned gmat-sweep image of every Pod, REPO:VERSION or REPO@sha256:...")(fn)
    return fn


def make_pool(options: dict[str, Any]) -> Any:
    """The pool ``--backend`` names, built from the command's options (a usage error for options it does not read)."""
    backend = options["backend"]
    for other in BACKENDS:
        given = [key for key in other.only_options if options.get(key)]
        if other.name != backend and given:
            raise click.UsageError(f"--{given[0].replace('_', '-')} needs --backend {other.name}")
    if backend not in _BUILDERS:
        raise click.UsageError(f"--backend {backend} is not available in this installation")
    return _BUILDERS[backend](options)


def _local_pool(options: dict[str, Any]) -> Any:
    if options["scheduler"]:
        raise click.UsageError("--scheduler needs --backend dask")
    from ..backends.local import LocalPool

    return LocalPool(max_workers=options["workers"])  # each run carries its own time limit


def _dask_pool(options: dict[str, Any]) -> Any:
    from ..backends.dask import DaskPool

    return DaskPool(address=options["scheduler"], n_workers=options["workers"],
                    shared_storage=options["shared_storage"])


def _kubernetes_pool(options: dict[str, Any]) -> Any:
    if options["scheduler"]:
        raise click.UsageError("--scheduler is for --backend dask; --backend kubernetes starts its own scheduler")
    if not options["image"]:
        raise click.UsageError("--backend kubernetes needs --image REPO:VERSION, the gmat-sweep image every Pod "
                               "runs (see docker/README.md)")
    try:
        import dask_kubernetes  # noqa: F401

        from ..backends.kubernetes import KubernetesPool
    except ImportError as exc:
        raise click.UsageError(f"--backend kubernetes needs the Kubernetes extra ({exc}): "
                               + install_hint("kubernetes")) from None
    from ..kubernetes import DEFAULT_MOUNT

    echo_log("gmat_sweep.kubernetes")  # the cluster's life: creating, up, deleted (or what to delete by hand)
    return KubernetesPool(options["image"], options["workers"] or 2, claim=options["claim"],
                          mount_path=options["mount"] or DEFAULT_MOUNT, namespace=options["namespace"],
                          allow_unpinned=options["allow_unpinned"],
                          shared_storage=True if options["shared_storage"] else None,
                          scheduler_service_type=options["scheduler_service_type"])


#: How each backend of the registry is built from the command's options.
_BUILDERS = {"local": _local_pool, "dask": _dask_pool, "kubernetes": _kubernetes_pool}
