"""``gmat-sweep run | resume | compact``: running a sweep, finishing one, gathering its files."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from .common import execute, finish, user_errors
from .options import backend_options, own_backend_options
from .parsing import parse_grid_option, read_samples


@click.command()
@click.argument("script", type=click.Path(dir_okay=False))
@click.option("--grid", "grids", multiple=True, metavar="PATH=VALUES",
              help="A swept parameter: Sat.SMA=7000:7300:4 (4 values from 7000 to 7300, both included) or "
                   "Sat.INC=28.5,51.6. Repeatable.")
@click.option("--samples", type=click.Path(dir_okay=False), help="Explicit runs: a .csv or .parquet table.")
@click.option("--collect", multiple=True, metavar="PARAM", help="A final value to record, e.g. Sat.Earth.SMA.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the sweep's results.")
@backend_options
@click.option("--engine", default=None, help="'embedded' (default) or a GMAT install folder (or set GMAT_ROOT).")
@click.option("--fsync-every", type=click.IntRange(min=1), default=1, show_default=True,
              help="Group manifest fsyncs for very large sweeps (a crash may then rerun the last group).")
@click.option("--require-converged", is_flag=True, help="Record runs whose targeter did not converge as failed.")
@click.option("--postprocess", default=None, metavar="MODULE:FUNCTION",
              help="Call this function on the worker after each run (see docs/outputs.md).")
@own_backend_options
def run(script: str, grids: Sequence[str], samples: str | None, collect: Sequence[str], out: str,
        engine: str | None, fsync_every: int, require_converged: bool, postprocess: str | None,
        **backend: Any) -> None:
    """Run SCRIPT once per point of the grid (or row of --samples) into --out."""
    from ..sweep import Sweep

    grid: dict[str, list[Any]] = {}
    for option in grids:
        path, values = parse_grid_option(option)
        if path in grid:
            raise click.BadParameter(f"{path} is given twice; give each parameter once", param_hint="--grid")
        grid[path] = values
    table = read_samples(samples) if samples else None
    if not grid and table is None:
        raise click.UsageError("nothing to sweep: give --grid PATH=VALUES (repeatable) or --samples FILE")
    with user_errors():
        sweep = Sweep(script, grid=grid or None, samples=table, out=out, collect=list(collect), engine=engine,
                      timeout=backend["timeout"], fsync_every=fsync_every, require_converged=require_converged,
                      postprocess=postprocess)
    execute(lambda pool: sweep.run(pool, progress=not backend["no_progress"]), sweep.out, backend)
    sys.exit(finish(sweep))


@click.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--allow-changed-script", is_flag=True, help="Resume even though the script changed.")
@backend_options
@own_backend_options
def resume(out: str, allow_changed_script: bool, **backend: Any) -> None:
    """Rerun the missing and failed runs of the sweep in OUT."""
    from ..sweep import Sweep

    with user_errors():
        sweep = Sweep.from_manifest(out)
        if backend["timeout"] is not None:
            sweep.timeout = backend["timeout"]
    execute(lambda pool: sweep.resume(pool, progress=not backend["no_progress"],
                                       allow_changed_script=allow_changed_script), sweep.out, backend)
    sys.exit(finish(sweep))


@click.command()
@click.argument("out", type=click.Path(file_okay=False))
def compact(out: str) -> None:
    """Gather the per-run Parquet files of the sweep in OUT into one file per output (faster to read back)."""
    from ..sweep import Sweep

    with user_errors():
        written = Sweep.from_manifest(out).compact()
    for path in written:
        click.echo(path)


COMMANDS = [run, resume, compact]
