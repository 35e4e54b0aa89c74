"""The options every running command takes (backend, workers, time limit, each backend's own), and the pool they
build: both read from the backend registry (:mod:`gmat_sweep.backends`)."""

from __future__ import annotations

import functools
from typing import Any

import click

from ..backends import BACKENDS, Backend, default_backend
from ..backends.options import OptionError
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


def own_backend_options(fn: Any) -> Any:
    """The options only one backend reads (--image ... for kubernetes), as each backend's registration declares
    them: a command lists them last."""
    for backend in reversed(BACKENDS):
        fn = _with_options(backend, fn)
    return fn


def make_pool(options: dict[str, Any]) -> Any:
    """The pool ``--backend`` names, built from the command's options (a usage error for options it does not read)."""
    chosen = next(backend for backend in BACKENDS if backend.name == options["backend"])
    for other in BACKENDS:
        given = [flag for name, (flag, default) in _own_options(other.name).items()
                 if options.get(name) and options.get(name) != default]
        if given and other is not chosen:
            raise click.UsageError(f"{given[0]} needs --backend {other.name}")
    declared = chosen.command_line()
    # A command without the backend's own options (mc, extend) gives it their defaults.
    values = {**{name: default for name, (_, default) in _own_options(chosen.name).items()}, **options}
    try:
        kwargs = declared.pool_kwargs(values)
    except OptionError as exc:
        raise click.UsageError(str(exc)) from None
    if declared.log:
        echo_log(declared.log)
    return chosen.load()(**kwargs)


@functools.cache
def _own_options(name: str) -> dict[str, tuple[str, Any]]:
    """A backend's own options: parameter name -> (its flag, its default), read off a throwaway command."""
    backend = next(backend for backend in BACKENDS if backend.name == name)

    def probe(**kwargs: Any) -> None:
        return None

    command = click.command()(_with_options(backend, probe))
    defaults = command.make_context("probe", [], resilient_parsing=True).params
    return {param.name: (param.opts[0], defaults[param.name]) for param in command.params if param.name}


def _with_options(backend: Backend, fn: Any) -> Any:
    for option in reversed(backend.command_line().options):
        fn = option(fn)
    return fn
