"""The ``gmat-sweep`` command: argument parsing, progress and exit codes; the work happens in the API.

Exit codes: 0 every run ok, 1 some runs failed, 2 bad usage or bad input, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from .distribution import DISTRIBUTION, install_hint

EXIT_OK, EXIT_FAILED_RUNS, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


# ---------------------------------------------------------------------------------------- parsing


def parse_value(text: str) -> Any:
    """A CLI value: int, then float, then booleans, else the string as written."""
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def parse_grid_option(option: str) -> tuple[str, list[Any]]:
    """``Sat.SMA=7000:7300:4`` (inclusive, like linspace), ``Sat.INC=28.5,51.6`` or ``TOF=600``."""
    from .gmat.script import ScriptError, check_path

    if "=" not in option:
        raise click.BadParameter(f"{option!r} has no '='; write PATH=VALUES, e.g. Sat.SMA=7000:7300:4 or "
                                 "Sat.INC=28.5,51.6", param_hint="--grid")
    path, spec = (part.strip() for part in option.split("=", 1))
    try:
        check_path(path)
    except ScriptError as exc:
        raise click.BadParameter(f"{option!r}: {exc}", param_hint="--grid") from None
    if not spec:
        raise click.BadParameter(f"{option!r} gives no values; write {path}=START:STOP:COUNT or {path}=A,B,C",
                                 param_hint="--grid")
    if ":" in spec:
        parts = spec.split(":")
        try:
            if len(parts) != 3 or not all(p.strip() for p in parts):
                raise ValueError
            start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
            if count < 1:
                raise ValueError
        except ValueError:
            raise click.BadParameter(f"{option!r}: a range is START:STOP:COUNT with numbers and a whole COUNT >= 1 "
                                     f"(inclusive, like linspace), e.g. {path}=7000:7300:4", param_hint="--grid") \
                from None
        return path, _linspace(start, stop, count, integral=all(_is_int(p) for p in parts[:2]))
    values = [parse_value(v) for v in spec.split(",")]
    if any(v == "" for v in values):
        raise click.BadParameter(f"{option!r} has an empty value; remove the extra comma", param_hint="--grid")
    return path, values


def _is_int(text: str) -> bool:
    try:
        int(text)
        return True
    except ValueError:
        return False


def _linspace(start: float, stop: float, count: int, integral: bool) -> list[Any]:
    if count == 1:
        values = [start]
    else:
        step = (stop - start) / (count - 1)
        values = [start + i * step for i in range(count - 1)] + [stop]
    if integral and all(float(v).is_integer() for v in values):
        return [int(v) for v in values]
    return [float(v) for v in values]


def read_samples(path: str) -> Any:
    import pandas as pd

    if not os.path.exists(path):
        raise click.BadParameter(f"samples file {path} not found", param_hint="--samples")
    if path.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if path.endswith(".csv"):
        return pd.read_csv(path)
    raise click.BadParameter(f"{path}: samples must be a .csv or .parquet file", param_hint="--samples")


# ---------------------------------------------------------------------------------------- commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name=DISTRIBUTION)
def main() -> None:
    """Parameter sweeps over GMAT mission scripts, in parallel, into one tidy table."""


class _TimeoutType(click.ParamType):
    name = "timeout"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        from .timeouts import normalize

        try:
            return normalize(value)
        except (ValueError, TypeError):
            self.fail(f"{value!r}: give a number of seconds > 0, 'none' (no limit) or 'adaptive'", param, ctx)


def _backend_options(fn: Any) -> Any:
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
    fn = click.option("--backend", type=click.Choice(["local", "dask", "kubernetes"]), default="local",
                      show_default=True, help="Where runs execute.")(fn)
    return fn


def _kubernetes_options(fn: Any) -> Any:
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


_KUBERNETES_ONLY = ("image", "claim", "mount", "namespace", "allow_unpinned")


@main.command()
@click.argument("script", type=click.Path(dir_okay=False))
@click.option("--grid", "grids", multiple=True, metavar="PATH=VALUES",
              help="A swept parameter: Sat.SMA=7000:7300:4 (4 values from 7000 to 7300, both included) or "
                   "Sat.INC=28.5,51.6. Repeatable.")
@click.option("--samples", type=click.Path(dir_okay=False), help="Explicit runs: a .csv or .parquet table.")
@click.option("--collect", multiple=True, metavar="PARAM", help="A final value to record, e.g. Sat.Earth.SMA.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the sweep's results.")
@_backend_options
@click.option("--engine", default=None, help="'embedded' (default) or a GMAT install folder (or set GMAT_ROOT).")
@click.option("--fsync-every", type=click.IntRange(min=1), default=1, show_default=True,
              help="Group manifest fsyncs for very large sweeps (a crash may then rerun the last group).")
@click.option("--require-converged", is_flag=True, help="Record runs whose targeter did not converge as failed.")
@click.option("--postprocess", default=None, metavar="MODULE:FUNCTION",
              help="Call this function on the worker after each run (see docs/outputs.md).")
@_kubernetes_options
def run(script: str, grids: Sequence[str], samples: str | None, collect: Sequence[str], out: str,
        engine: str | None, fsync_every: int, require_converged: bool, postprocess: str | None,
        **backend: Any) -> None:
    """Run SCRIPT once per point of the grid (or row of --samples) into --out."""
    from .sweep import Sweep

    grid: dict[str, list[Any]] = {}
    for option in grids:
        path, values = parse_grid_option(option)
        if path in grid:
            raise click.BadParameter(f"{path} is given twice; give each parameter once", param_hint="--grid")
        grid[path] = values
    table = read_samples(samples) if samples else None
    if not grid and table is None:
        raise click.UsageError("nothing to sweep: give --grid PATH=VALUES (repeatable) or --samples FILE")
    with _user_errors():
        sweep = Sweep(script, grid=grid or None, samples=table, out=out, collect=list(collect), engine=engine,
                      timeout=backend["timeout"], fsync_every=fsync_every, require_converged=require_converged,
                      postprocess=postprocess)
    _execute(lambda pool: sweep.run(pool, progress=not backend["no_progress"]), sweep.out, backend)
    sys.exit(_finish(sweep))


@main.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--allow-changed-script", is_flag=True, help="Resume even though the script changed.")
@_backend_options
@_kubernetes_options
def resume(out: str, allow_changed_script: bool, **backend: Any) -> None:
    """Rerun the missing and failed runs of the sweep in OUT."""
    from .sweep import Sweep

    with _user_errors():
        sweep = Sweep.from_manifest(out)
        if backend["timeout"] is not None:
            sweep.timeout = backend["timeout"]
    _execute(lambda pool: sweep.resume(pool, progress=not backend["no_progress"],
                                       allow_changed_script=allow_changed_script), sweep.out, backend)
    sys.exit(_finish(sweep))


def _show_unconverged(summary: Any, parameters: Sequence[str]) -> None:
    """The ok runs a targeter left unconverged: GMAT went on after EndTarget, so their results need a look."""
    flags = [c for c in summary.columns if str(c).endswith(".converged")]
    if not flags:
        return
    mask = (summary["status"] == "ok") & summary[flags].eq(False).any(axis=1)
    if mask.any():
        click.echo("runs whose targeter did not converge (ok, with a warning):")
        for run_id, row in summary[mask].head(50).iterrows():
            notes = [w for w in row["warnings"] if w.startswith("Target ")]
            click.echo(f"  {run_id}: {_params(row, parameters)}: {'; '.join(notes)}")


@main.command()
@click.argument("out", type=click.Path(file_okay=False))
def compact(out: str) -> None:
    """Gather the per-run Parquet files of the sweep in OUT into one file per output (faster to read back)."""
    from .sweep import Sweep

    with _user_errors():
        written = Sweep.from_manifest(out).compact()
    for path in written:
        click.echo(path)


@main.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--slowest", default=5, show_default=True, help="How many of the slowest runs to list.")
@click.option("--converge", default=None, metavar="OUTPUT", help="Statistics of OUTPUT as n grows, with intervals.")
def show(out: str, slowest: int, converge: str | None) -> None:
    """Counts of ok / failed / missing runs, the failures with their errors, and the slowest runs."""
    from .sweep import Sweep

    with _user_errors():
        sweep = Sweep.from_manifest(out)
    from .records import ERROR, LOST, TIMEOUT, failure_kind

    counts = sweep.counts()
    click.echo(f"{sweep.out}: {len(sweep)} runs of {sweep.source.path}")
    click.echo(f"  ok {counts['ok']}   failed {counts['failed']}   missing {counts['missing']}")
    from .cli_designs import show_design

    show_design(sweep, converge)
    summary = sweep.summary()
    entries = sweep.manifest.entries
    kinds = {run_id: failure_kind(entries.get(run_id, {})) for run_id in summary.index}
    failed = summary[summary["status"] == "failed"]
    if len(failed):
        click.echo("failed runs:")
        for run_id, row in failed.head(50).iterrows():
            click.echo(f"  {run_id} [{_KIND_LABEL[kinds[run_id]]}]: {_params(row, sweep.design.parameters)}: "
                       f"{row['error']}")
        if len(failed) > 50:
            click.echo(f"  ... and {len(failed) - 50} more (Sweep.from_manifest(...).failed() lists all)")
    _show_unconverged(summary, sweep.design.parameters)
    # Timed-out runs are among the slowest: they ran as long as they were allowed to.
    timed = summary[[row == "ok" or kinds[i] == TIMEOUT for i, row in summary["status"].items()]]
    done = timed.sort_values("duration", ascending=False).head(slowest)
    if len(done):
        click.echo("slowest runs:")
        for run_id, row in done.iterrows():
            note = "" if row["status"] == "ok" else "  (timed out)"
            click.echo(f"  {run_id}: {row['duration']:.3f} s  {_params(row, sweep.design.parameters)}{note}")
    by_kind = {kind: sum(1 for k in kinds.values() if k == kind) for kind in (ERROR, LOST, TIMEOUT)}
    if by_kind[ERROR]:
        click.echo(f"{by_kind[ERROR]} run(s) failed in GMAT (errors above): a resume would fail them again; fix the "
                   f"script or the swept values, then run the sweep again in a new --out folder")
    if counts["missing"] or by_kind[LOST] or by_kind[TIMEOUT]:
        more = " --timeout SECONDS (longer) or --timeout none" if by_kind[TIMEOUT] else ""
        click.echo(f"finish it with: gmat-sweep resume {sweep.out}{more}")


_KIND_LABEL = {"error": "GMAT error", "lost": "worker lost", "timeout": "timed out", None: "failed"}


@main.command()
@click.option("--engine", default=None, help="'embedded' (default) or a GMAT install folder.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def doctor(engine: str | None, as_json: bool) -> None:
    """Start the GMAT engine and print its fingerprint and the package versions (compare driver and workers)."""
    from .engine import EngineError, get_engine
    from .sweep import package_versions

    try:
        info = {"engine": get_engine(engine).fingerprint(), "versions": package_versions()}
    except EngineError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for section, values in info.items():
        click.echo(f"{section}:")
        for key, value in values.items():
            click.echo(f"  {key}: {value}")


# ---------------------------------------------------------------------------------------- helpers


class _user_errors:
    """Turn the library's bad-input errors into a one-line message and exit code 2."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        from .gmat.script import ScriptError
        from .manifest import ManifestError
        from .sweep import SweepError

        if exc is not None and isinstance(exc, (ScriptError, SweepError, ManifestError, ValueError)):
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        return False


def _stop_on_sigterm() -> None:
    """Treat SIGTERM (a deleted driver Pod, a batch system's kill) like Ctrl-C: pools close and clusters are
    deleted on the way out, and the manifest stays intact."""
    import signal

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def _execute(action: Any, out: str, options: dict[str, Any]) -> None:
    _stop_on_sigterm()
    try:
        with _user_errors():
            pool = _make_pool(options)
            with pool:
                action(pool)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: every finished run is saved in {out}/manifest.jsonl.\n"
                   f"resume with: gmat-sweep resume {out}", err=True)
        sys.exit(EXIT_INTERRUPTED)


def _make_pool(options: dict[str, Any]) -> Any:
    backend = options["backend"]
    if backend != "kubernetes" and any(options.get(key) for key in _KUBERNETES_ONLY):
        given = next(key for key in _KUBERNETES_ONLY if options.get(key))
        raise click.UsageError(f"--{given.replace('_', '-')} needs --backend kubernetes")
    if backend == "local":
        if options["scheduler"]:
            raise click.UsageError("--scheduler needs --backend dask")
        from .backends.local import LocalPool

        return LocalPool(max_workers=options["workers"])  # each run carries its own time limit
    if backend == "dask":
        from .backends.dask import DaskPool

        return DaskPool(address=options["scheduler"], n_workers=options["workers"],
                        shared_storage=options["shared_storage"])
    if backend == "kubernetes":
        return _kubernetes_pool(options)
    raise click.UsageError(f"--backend {backend} is not available in this installation")


def _kubernetes_pool(options: dict[str, Any]) -> Any:
    if options["scheduler"]:
        raise click.UsageError("--scheduler is for --backend dask; --backend kubernetes starts its own scheduler")
    if not options["image"]:
        raise click.UsageError("--backend kubernetes needs --image REPO:VERSION, the gmat-sweep image every Pod "
                               "runs (see docker/README.md)")
    try:
        import dask_kubernetes  # noqa: F401

        from .backends.kubernetes import KubernetesPool
    except ImportError as exc:
        raise click.UsageError(f"--backend kubernetes needs the Kubernetes extra ({exc}): "
                               + install_hint("kubernetes")) from None
    from .kubernetes import DEFAULT_MOUNT

    _echo_log("gmat_sweep.kubernetes")  # the cluster's life: creating, up, deleted (or what to delete by hand)
    return KubernetesPool(options["image"], options["workers"] or 2, claim=options["claim"],
                          mount_path=options["mount"] or DEFAULT_MOUNT, namespace=options["namespace"],
                          allow_unpinned=options["allow_unpinned"],
                          shared_storage=True if options["shared_storage"] else None,
                          scheduler_service_type=options["scheduler_service_type"])


class _EchoHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        click.echo(record.getMessage(), err=True)


def _echo_log(name: str) -> None:
    log = logging.getLogger(name)
    if not any(isinstance(h, _EchoHandler) for h in log.handlers):
        log.addHandler(_EchoHandler())
        log.setLevel(logging.INFO)


def _finish(sweep: Any) -> int:
    import pandas as pd

    counts = sweep.counts()
    # The per-run summary, not the full results table: printing 20 rows must not load every run's reports.
    summary = sweep.summary()
    shown = summary.drop(columns=["start", "end", "host", "pid", "worker", "warnings"])
    with pd.option_context("display.max_columns", 12, "display.width", 160, "display.max_colwidth", 60):
        click.echo(shown.head(20).to_string())
    if sweep.reports:
        click.echo(f"\nreports per run: {', '.join(sweep.reports)} (Sweep.from_manifest({sweep.out!r}).results())")
    click.echo(f"\n{len(sweep)} runs: {counts['ok']} ok, {counts['failed']} failed, {counts['missing']} missing; "
               f"results in {sweep.out}")
    if counts["failed"]:
        click.echo(f"see the failures with: gmat-sweep show {sweep.out}")
    return EXIT_OK if counts["failed"] == 0 and counts["missing"] == 0 else EXIT_FAILED_RUNS


def _params(row: Any, parameters: Sequence[str]) -> str:
    return ", ".join(f"{p}={row[p]!r}" for p in parameters)


def _add_optional_groups() -> None:
    if __name__ == "gmat_sweep.cli":  # the dispersion commands import this module's helpers by that name
        from .cli_designs import register

        register(main)
    try:
        from .cli_k8s import k8s
    except ImportError:  # the [kubernetes] extra is not installed
        return
    main.add_command(k8s)


_add_optional_groups()
from .cli_view import VIEW_COMMANDS  # noqa: E402 - plot, report, archive, diff

for _command in VIEW_COMMANDS:
    main.add_command(_command)

if __name__ == "__main__":
    from gmat_sweep.cli import main as package_main  # the copy with every command registered

    package_main()
