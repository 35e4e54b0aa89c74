"""``gmat-sweep mc | lhs | sobol | saltelli | extend | sensitivity``: the dispersion commands.

They take the options of ``run`` (backend, workers, timeout, engine, ...) and have its exit codes; the work
happens in the API.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from typing import Any

import click

from .common import execute, finish, user_errors
from .main import EXIT_USAGE
from .options import backend_options, own_backend_options


def parse_perturb_option(option: str) -> tuple[str | tuple[str, ...], str]:
    """``Sat.SMA=normal(7000,5)`` or ``TOI.Element1=*normal(1,0.01)`` -> (path, distribution); correlated paths,
    ``Sat.X,Sat.Y,Sat.Z=+mvnormal(cov.csv)`` -> ((paths), distribution), the key the Python API takes."""
    path, sep, spec = option.partition("=")
    paths = tuple(p.strip() for p in path.split(","))
    if not sep or not all(paths) or not spec.strip():
        raise click.BadParameter(f"{option!r}: write PATH=DISTRIBUTION, e.g. Sat.SMA=normal(7000,5) or "
                                 "TOI.Element1=*normal(1,0.01), or PATH,PATH,...=+mvnormal(cov.csv) for correlated "
                                 "paths", param_hint="--perturb")
    return (paths if len(paths) > 1 else paths[0]), spec.strip()


def parse_seed(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        click.echo(f"error: --seed must be a whole number >= 0, got {text!r}", err=True)
        sys.exit(EXIT_USAGE)


def _design_command(name: str, help_text: str) -> Any:
    @click.argument("script", type=click.Path(dir_okay=False))
    @click.option("--perturb", "perturbs", multiple=True, required=True, metavar="PATH=DIST",
                  help="A perturbed field: Sat.SMA=normal(7000,5), Sat.ECC=uniform(0,0.01), "
                       "TOI.Element1=*normal(1,0.01) (relative to the script's value); correlated fields with a "
                       "covariance file: Sat.X,Sat.Y,Sat.Z,Sat.VX,Sat.VY,Sat.VZ=+mvnormal(cov.csv) (centred on "
                       "the script's state), =mvnormal(mean.csv,cov.csv) or =mvnormal(state.csv) (mean on the "
                       "first line). Repeatable.")
    @click.option("--n", "n", type=int, required=True,
                  help="Runs (saltelli: base points; the sweep makes n x (parameters + 2) runs).")
    @click.option("--seed", default=None, help="Seed (whole number); default: a fresh one, recorded in the manifest.")
    @click.option("--collect", multiple=True, metavar="PARAM", help="A final value to record, e.g. Sat.Earth.SMA.")
    @click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the sweep's results.")
    @click.option("--engine", default=None, help="'embedded' (default) or a GMAT install folder (or set GMAT_ROOT).")
    @click.option("--fsync-every", type=click.IntRange(min=1), default=1, show_default=True,
                  help="Group manifest fsyncs for very large sweeps (a crash may then rerun the last group).")
    @backend_options
    @own_backend_options
    def command(script: str, perturbs: Sequence[str], n: int, seed: str | None, collect: Sequence[str], out: str,
                engine: str | None, fsync_every: int, **backend: Any) -> None:
        from ..designs import LatinHypercube, MonteCarlo, Saltelli, Sobol
        from ..sweep import Sweep

        perturb: dict[str | tuple[str, ...], str] = {}
        for option in perturbs:
            path, spec = parse_perturb_option(option)
            if path in perturb:  # a path inside two different entries is refused by the design, naming both
                shown = ",".join(path) if isinstance(path, tuple) else path
                raise click.BadParameter(f"{shown} is perturbed twice; give each path once", param_hint="--perturb")
            perturb[path] = spec
        with user_errors(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            design = {"mc": lambda: MonteCarlo(perturb, n, parse_seed(seed)),
                      "lhs": lambda: LatinHypercube(perturb, n, parse_seed(seed)),
                      "sobol": lambda: Sobol(perturb, n, parse_seed(seed), warn=True),
                      "saltelli": lambda: Saltelli(perturb, n, parse_seed(seed))}[name]()
            sweep = Sweep(script, out=out, collect=list(collect), engine=engine, timeout=backend["timeout"],
                          fsync_every=fsync_every, design=design)
        for warning in caught:
            click.echo(f"warning: {warning.message}", err=True)
        click.echo(f"{design.describe()}", err=True)
        execute(lambda pool: sweep.run(pool, progress=not backend["no_progress"]), sweep.out, backend)
        sys.exit(finish(sweep))

    command.__doc__ = help_text
    return click.command(name)(command)


mc = _design_command("mc", "Monte Carlo: run SCRIPT n times with the --perturb fields drawn at random.")
lhs = _design_command("lhs", "Latin hypercube: n runs, one in each of n equal-probability strata of every "
                             "--perturb field.")
sobol = _design_command("sobol", "Scrambled Sobol' points: n low-discrepancy runs (n a power of two).")
saltelli = _design_command("saltelli", "Saltelli design for Sobol' indices: n base points x (fields + 2) runs; "
                                       "then gmat-sweep sensitivity OUT OUTPUT.")


@click.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--n", "m", type=click.IntRange(min=1), required=True, help="How many runs to add.")
@click.option("--allow-changed-script", is_flag=True, help="Extend even though the script changed.")
@backend_options
@own_backend_options
def extend(out: str, m: int, allow_changed_script: bool, **backend: Any) -> None:
    """Add --n runs to the Monte Carlo, Latin hypercube or Sobol' sweep in OUT (and finish any missing ones)."""
    from ..sweep import Sweep

    with user_errors():
        sweep = Sweep.from_manifest(out)
        if backend["timeout"] is not None:
            sweep.timeout = backend["timeout"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        execute(lambda pool: sweep.extend(m, pool, progress=not backend["no_progress"],
                                           allow_changed_script=allow_changed_script), sweep.out, backend)
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    sys.exit(finish(sweep))


@click.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.argument("output")
@click.option("--method", type=click.Choice(["sobol", "spearman"]), default="sobol", show_default=True,
              help="sobol: Sobol' indices of a saltelli sweep; spearman: rank correlations of any dispersion.")
def sensitivity(out: str, output: str, method: str) -> None:
    """Sensitivity of OUTPUT (a collected value) to each perturbed field of the sweep in OUT."""
    from ..analysis import sensitivity as analyse

    with user_errors():
        table = analyse(out, output, method=method)
    click.echo(table.to_string(float_format=lambda v: f"{v:.4g}"))


def show_design(sweep: Any, converge: str | None) -> None:
    """The lines ``gmat-sweep show`` adds: the design, and with --converge the last rows of convergence()."""
    click.echo(f"  design: {sweep.design.describe()}")
    for entry in getattr(sweep.design, "entries", ()):  # a dispersion: what each path was drawn from
        nominal = sweep.design.nominal
        values = [f"{p} = {nominal[p]:.10g}" if len(entry.paths) > 1 else f"{nominal[p]:.10g}"
                  for p in entry.paths if p in nominal]
        around = f" around {', '.join(values)}" if entry.relative and values else ""
        click.echo(f"    {','.join(entry.paths)}: {entry.describe()}{around}")
    if converge:
        from ..analysis import convergence

        with user_errors():
            table = convergence(sweep, converge)
        click.echo(f"convergence of {converge} (95 % intervals; n = ok runs in run-id order):")
        click.echo(table.tail(5).to_string(float_format=lambda v: f"{v:.6g}"))


def register(group: click.Group) -> None:
    for command in (mc, lhs, sobol, saltelli, extend, sensitivity):
        group.add_command(command)
