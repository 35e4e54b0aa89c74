"""``gmat-sweep plot | report | archive | diff``: looking at finished sweeps, sending them, comparing them.

The main CLI adds these commands to its group (``VIEW_COMMANDS``); the work happens in ``plot``, ``htmlreport``,
``archive`` and ``analysis.diff``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from .common import user_errors
from .parsing import parse_value

EXIT_EQUAL, EXIT_DIFFERENT, EXIT_USAGE = 0, 1, 2

#: The options each plot needs, as ``gmat-sweep plot`` passes them on.
_NEEDS = {"heatmap": ("x", "y", "z"), "line": ("x", "y"), "band": ("column",), "histogram": ("column",),
          "convergence": ("column",), "scatter_matrix": ("columns",), "groundtrack": (), "failures": ()}


@click.command()
@click.argument("out", type=click.Path(exists=True))
@click.argument("kind", type=click.Choice(sorted(_NEEDS)))
@click.option("--x", default=None, help="heatmap/line/failures: the parameter along x.")
@click.option("--y", default=None, help="heatmap/failures: the parameter along y; line: the value plotted.")
@click.option("--z", default=None, help="heatmap: the value shown as colour.")
@click.option("--column", "columns", multiple=True,
              help="band/histogram/convergence: the column; scatter_matrix: repeat for each column.")
@click.option("--report", default=None, help="The report to read (default: the script's first ReportFile).")
@click.option("--where", "wheres", multiple=True, metavar="PARAM=VALUE",
              help="heatmap/line: fix another swept parameter at one value. Repeatable.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="FILE.png, .svg or .pdf")
def plot(out: str, kind: str, x: str | None, y: str | None, z: str | None, columns: Sequence[str],
         report: str | None, wheres: Sequence[str], output: str) -> None:
    """Draw one KIND of plot of the sweep in OUT (a folder or a bundle) to a PNG, SVG or PDF file."""
    try:
        from .. import plot as plots
    except ImportError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    column = columns[0] if len(columns) == 1 else None
    given = {"x": x, "y": y, "z": z, "column": column, "columns": list(columns) or None}
    missing = [name for name in _NEEDS[kind] if not given[name]]
    if missing:
        flags = ", ".join("--column (once per column)" if m == "columns" else f"--{m}" for m in missing)
        raise click.UsageError(f"{kind} needs {flags}")
    where = {}
    for option in wheres:
        if "=" not in option:
            raise click.BadParameter(f"{option!r}: write PARAM=VALUE", param_hint="--where")
        name, value = option.split("=", 1)
        where[name.strip()] = parse_value(value)
    arguments: dict[str, Any] = {
        "heatmap": {"x": x, "y": y, "z": z, "report": report, "where": where or None},
        "line": {"x": x, "y": y, "report": report, "where": where or None},
        "band": {"column": column, "report": report},
        "histogram": {"column": column, "report": report},
        "convergence": {"output": column, "report": report},
        "scatter_matrix": {"columns": list(columns), "report": report},
        "groundtrack": {"report": report},
        "failures": {"x": x, "y": y},
    }[kind]
    with user_errors():
        figure = plots.KINDS[kind](out, **arguments)
        plots.save(figure, output)
    click.echo(output)


@click.command()
@click.argument("out", type=click.Path(exists=True))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The HTML file to write.")
@click.option("--column", "columns", multiple=True, help="An output to plot (default: up to three that vary).")
def report(out: str, output: str, columns: Sequence[str]) -> None:
    """Write one self-contained HTML report of the sweep in OUT (opens in any browser, offline)."""
    try:
        from ..htmlreport import report as write_report
    except ImportError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    from ..sweep import Sweep

    with user_errors():
        sweep = Sweep.from_manifest(out)
        write_report(sweep, output, columns=list(columns) or None)
    counts = sweep.counts()
    if counts["missing"]:
        click.echo(f"note: the sweep is partial ({counts['missing']} of {len(sweep)} runs have not finished); the "
                   "report shows the finished runs", err=True)
    click.echo(output)


@click.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False))
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--no-logs", is_flag=True, help="Leave GMAT's per-run logs out of the bundle.")
def archive(out: str, bundle: str, no_logs: bool) -> None:
    """Write the sweep in OUT to one deterministic zip BUNDLE (script, manifest, outputs, checksums, README)."""
    from ..archive import archive as write_bundle

    with user_errors():
        path = write_bundle(out, bundle, logs=not no_logs)
    click.echo(path)


@click.command()
@click.argument("a", type=click.Path(exists=True))
@click.argument("b", type=click.Path(exists=True))
@click.option("--rtol", type=click.FloatRange(min=0), default=1e-9, show_default=True,
              help="Relative tolerance: |a-b| <= atol + rtol * max(|a|, |b|).")
@click.option("--atol", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Absolute tolerance.")
def diff(a: str, b: str, rtol: float, atol: float) -> None:
    """Compare sweep B with sweep A (same design). Exit 0 equal within tolerance, 1 not, 2 different designs."""
    from ..analysis.diff import diff as compare

    with user_errors():
        result = compare(a, b, rtol=rtol, atol=atol)
    click.echo(str(result))
    sys.exit(EXIT_EQUAL if result.equal else EXIT_DIFFERENT)


VIEW_COMMANDS = [plot, report, archive, diff]
