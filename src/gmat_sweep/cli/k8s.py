"""``gmat-sweep k8s``: print the Kubernetes manifests for a sweep (``kubectl apply -f -`` takes them).

The main CLI adds this group with ``main.add_command(k8s)``; it also works on its own::

    gmat-sweep k8s render --image ghcr.io/acme/gmat-sweep:0.1.0 --workers 8 --claim gmat-shared \\
        --driver-command "gmat-sweep run /shared/mission.script --grid Sat.SMA=7000:7300:4 --out /shared/out" \\
        | kubectl apply -f -
"""

from __future__ import annotations

from typing import Any

import click

from .. import kubernetes as k8s_manifests
from ..distribution import install_hint


class OneLineUsageError(click.UsageError):
    """A usage error shown as a single ``Error: ...`` line on stderr (exit code 2), without the usage text."""

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {' '.join(self.format_message().split())}", file=file, err=True)


class _OneLineCommand(click.Command):
    """Turns click's own parse errors (missing --image, bad --workers) into one-line errors as well."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except OneLineUsageError:
            raise
        except click.UsageError as exc:
            raise OneLineUsageError(exc.format_message(), ctx=exc.ctx) from None


@click.group("k8s")
def k8s() -> None:
    """Kubernetes: manifests for running sweeps on a cluster (Dask operator or plain Deployments)."""


@k8s.command("render", cls=_OneLineCommand)
@click.option("--name", default="gmat-sweep", show_default=True,
              help="Cluster name; also prefixes the scheduler Service and the driver Pod.")
@click.option("--image", required=True,
              help="Image for every Pod, pinned: REPO:VERSION or REPO@sha256:DIGEST (see docker/Dockerfile).")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="Worker Pods (one single-threaded GMAT process each).")
@click.option("--memory", default=k8s_manifests.DEFAULT_MEMORY, show_default=True,
              help="Memory request and limit of each Pod.")
@click.option("--claim", default=None, help="PersistentVolumeClaim shared by the driver and every worker.")
@click.option("--existing-claim", is_flag=True, help="The claim exists already: do not render it.")
@click.option("--mount", default=k8s_manifests.DEFAULT_MOUNT, show_default=True,
              help="Where the claim is mounted in every Pod (exported as GMAT_SWEEP_SHARED).")
@click.option("--storage-class", default=None, help="StorageClass of the claim (cluster default if omitted).")
@click.option("--size", default="10Gi", show_default=True, help="Size of the claim.")
@click.option("--namespace", default="default", show_default=True, help="Namespace of every object.")
@click.option("--driver-command", default=None,
              help="Run this command in a driver Pod, e.g. \"gmat-sweep run /shared/m.script ...\".")
@click.option("--driver-script", type=click.Path(exists=True, dir_okay=False, readable=True), default=None,
              help="Ship this Python script in a ConfigMap and run it in a driver Pod.")
@click.option("--no-operator", is_flag=True,
              help="No Dask operator on the cluster: plain scheduler/worker Deployments, no CRDs, no RBAC.")
@click.option("--allow-unpinned", is_flag=True, help="Accept an image without a version tag or digest.")
@click.option("--scheduler-service-type", type=click.Choice(list(k8s_manifests.SCHEDULER_SERVICE_TYPES)),
              default="ClusterIP", show_default=True, help="How the scheduler Service is exposed.")
def render(name: str, image: str, workers: int, memory: str, claim: str | None, existing_claim: bool, mount: str,
           storage_class: str | None, size: str, namespace: str, driver_command: str | None,
           driver_script: str | None, no_operator: bool, allow_unpinned: bool,
           scheduler_service_type: str) -> None:
    """Print the manifests for one sweep as multi-document YAML on stdout.

    In apply order: the claim, the driver's ServiceAccount/Role/RoleBinding, the DaskCluster (or, with
    --no-operator, scheduler and worker Deployments + Service), the driver Pod.
    """
    if driver_command is not None and driver_script is not None:
        raise OneLineUsageError("give either --driver-command or --driver-script, not both")
    if claim is None and mount != k8s_manifests.DEFAULT_MOUNT:
        raise OneLineUsageError(f"--mount {mount} needs --claim: name the PersistentVolumeClaim to mount there")
    script_text = script_name = None
    if driver_script is not None:
        import os

        with open(driver_script, encoding="utf-8") as fh:
            script_text = fh.read()
        script_name = os.path.basename(driver_script)
    try:
        objs = k8s_manifests.render_all(
            name, image, workers, namespace=namespace, claim=claim, mount_path=mount, size=size,
            storage_class=storage_class, create_claim=not existing_claim, driver_command=driver_command,
            driver_script_text=script_text, driver_script_name=script_name or "driver.py",
            operator=not no_operator, resources={"requests": {"memory": memory}},
            scheduler_service_type=scheduler_service_type, allow_unpinned=allow_unpinned)
    except ValueError as exc:
        raise OneLineUsageError(str(exc)) from None
    except ImportError as exc:
        raise click.ClickException(f"{exc}: install the Kubernetes extra, {install_hint('kubernetes')}")
    click.echo(k8s_manifests.to_yaml(objs), nl=False)
