"""The names and ports every manifest shares, and the checks of what users give: names, images, mounts, counts
and quantities, each refused with a one-line reason before anything is built."""

from __future__ import annotations

import re
from typing import Any

from ..dask_config import env_name

DEFAULT_MEMORY = "2Gi"
RUN_AS_USER = 1000  # the uid of the user that docker/Dockerfile creates
SCHEDULER_SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
ACCESS_MODES = ("ReadWriteMany", "ReadWriteOnce", "ReadOnlyMany", "ReadWriteOncePod")
DEFAULT_MOUNT = "/shared"
SHARED_ENV = "GMAT_SWEEP_SHARED"
# GMAT holds the GIL for a whole mission, so a busy worker cannot answer heartbeats: the scheduler must not drop it.
WORKER_TTL_ENV = env_name("distributed.scheduler.worker-ttl")
# The Dask operator's autoscaler asks the scheduler for its adaptive target, and retires workers before a scale-down,
# over the scheduler's HTTP API (/api/v1 on the dashboard port). Dask does not serve that API by default, and the
# operator's fallback, Dask RPC from the operator's own Dask version, may fail in "unexpected ways" (its words) when
# the versions differ. The API adds nothing to what the comm port already allows anyone who reaches the scheduler.
HTTP_ROUTES_ENV = env_name("distributed.scheduler.http.routes")
SCHEDULER_API_ROUTE = "distributed.http.scheduler.api"
SCHEDULER_PORT = 8786
DASK_GROUP = "kubernetes.dask.org"
DASHBOARD_PORT = 8787
WORKER_DASHBOARD_PORT = 8788
DRIVER_SCRIPT_DIR = "/opt/gmat-sweep/driver"

VOLUME = "shared"
PART_OF = {"app.kubernetes.io/part-of": "gmat-sweep"}
# "{name}-scheduler" must itself be a DNS-1035 label (it names a Service), so names start with a letter and
# leave room for the suffix, as dask-kubernetes' own check does.
_MAX_NAME = 63 - len("-scheduler")
_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def check_name(value: str, what: str = "name") -> str:
    if not isinstance(value, str) or not _LABEL.match(value) or len(value) > _MAX_NAME:
        raise ValueError(
            f"invalid {what} {value!r}: use at most {_MAX_NAME} lower-case letters, digits or '-', starting "
            f"with a letter and ending with a letter or digit (a DNS-1123 label that can also name the "
            f"'<{what}>-scheduler' Service), e.g. 'sma-scan'")
    return value


def check_label(value: str, what: str) -> str:
    if not isinstance(value, str) or not _DNS1123_LABEL.match(value) or len(value) > 63:
        raise ValueError(
            f"invalid {what} {value!r}: use at most 63 lower-case letters, digits or '-', starting and ending "
            f"with a letter or digit (a DNS-1123 label), e.g. 'gmat-shared'")
    return value


def check_subdomain(value: str, what: str) -> str:
    if not isinstance(value, str) or not _DNS1123_SUBDOMAIN.match(value) or len(value) > 253:
        raise ValueError(
            f"invalid {what} {value!r}: use lower-case letters, digits, '-' and '.', starting and ending "
            f"with a letter or digit (a DNS-1123 subdomain)")
    return value


def check_image(image: str, allow_unpinned: bool) -> str:
    if not isinstance(image, str) or not image or any(c.isspace() for c in image):
        raise ValueError(f"invalid image {image!r}: give a reference like 'ghcr.io/acme/gmat-sweep:0.1.0'")
    name, _, digest = image.partition("@")
    if digest and not _DIGEST.match(digest):
        raise ValueError(f"invalid image digest in {image!r}: a digest looks like '@sha256:' + 64 hex digits")
    prefix, _, last = name.rpartition("/")  # a registry port ("host:5000/x") is not a tag
    repo_last, _, tag = last.partition(":")
    if not repo_last or (":" in last and not tag):
        raise ValueError(f"invalid image {image!r}: give a reference like 'ghcr.io/acme/gmat-sweep:0.1.0'")
    if not digest and tag in ("", "latest") and not allow_unpinned:
        repo = f"{prefix}/{repo_last}" if prefix else repo_last
        why = "has no tag" if not tag else "uses the moving tag ':latest'"
        raise ValueError(
            f"image {image!r} {why}: every Pod of a sweep must run the same GMAT engine and gmat-sweep, so pin "
            f"a version tag (e.g. '{repo}:0.1.0') or a digest ('{repo}@sha256:...'), or pass "
            f"allow_unpinned=True (--allow-unpinned) for throwaway experiments")
    return image


def check_mount(claim: str | None, mount_path: str | None) -> tuple[str | None, str | None]:
    if claim is not None:
        check_subdomain(claim, "claim name")
        if not mount_path:
            raise ValueError(f"claim {claim!r} given without a mount path: give an absolute mount path, "
                             f"e.g. {DEFAULT_MOUNT!r}")
    elif mount_path and mount_path != DEFAULT_MOUNT:
        raise ValueError(f"mount path {mount_path!r} given without a claim: name the PersistentVolumeClaim "
                         f"to mount there (claim=..., --claim)")
    if claim is None:
        return None, None
    if not mount_path.startswith("/") or ":" in mount_path:
        raise ValueError(f"invalid mount path {mount_path!r}: use an absolute path without ':', "
                         f"e.g. {DEFAULT_MOUNT!r}")
    return claim, mount_path.rstrip("/") or "/"


def check_service_type(service_type: str) -> str:
    if service_type not in SCHEDULER_SERVICE_TYPES:
        raise ValueError(f"invalid scheduler service type {service_type!r}: use one of "
                         f"{', '.join(SCHEDULER_SERVICE_TYPES)}")
    return service_type


def check_count(n: int, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"invalid {what} {n!r}: give a whole number >= 0")
    return n


def check_quantity(value: Any, what: str) -> str:
    text = str(value)
    if not _QUANTITY.match(text):
        raise ValueError(f"invalid {what} {value!r}: use a Kubernetes quantity such as '2Gi', '512Mi' or '1'")
    return text
