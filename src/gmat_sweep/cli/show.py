"""``gmat-sweep show | doctor``: what a sweep holds, and what this installation runs with."""

from __future__ import annotations

import heapq
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click

from .common import params, user_errors
from .main import EXIT_USAGE


@click.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--slowest", default=5, show_default=True, help="How many of the slowest runs to list.")
@click.option("--converge", default=None, metavar="OUTPUT", help="Statistics of OUTPUT as n grows, with intervals.")
def show(out: str, slowest: int, converge: str | None) -> None:
    """Counts of ok / failed / missing runs, the failures with their errors, and the slowest runs."""
    from ..sweep import Sweep

    with user_errors():
        sweep = Sweep.from_manifest(out)
    from ..records import ERROR, LOST, TIMEOUT

    scan = _scan(sweep.manifest.entries, len(sweep), slowest)
    kinds, unconverged, slowest_ids = scan.kinds, scan.unconverged, scan.slowest
    click.echo(f"{sweep.out}: {len(sweep)} runs of {sweep.source.path}")
    click.echo(f"  ok {scan.ok}   failed {len(kinds)}   missing {scan.missing}")
    from .designs import show_design

    show_design(sweep, converge)
    failed_ids = sorted(kinds)
    summary = sweep.summary(runs=failed_ids[:50] + unconverged[:50] + slowest_ids)
    rows = dict(summary.iterrows())  # iterrows, not .loc: values print as Python's, not numpy's, scalars
    if failed_ids:
        click.echo("failed runs:")
        for run_id in failed_ids[:50]:
            row = rows[run_id]
            click.echo(f"  {run_id} [{_KIND_LABEL[kinds[run_id]]}]: {params(row, sweep.design.parameters)}: "
                       f"{row['error']}")
        if len(failed_ids) > 50:
            click.echo(f"  ... and {len(failed_ids) - 50} more (Sweep.from_manifest(...).failed() lists all)")
    _show_unconverged(summary.loc[unconverged[:50]], sweep.design.parameters)
    if slowest_ids:
        click.echo("slowest runs:")
        for run_id in slowest_ids:
            row = rows[run_id]
            note = "" if row["status"] == "ok" else "  (timed out)"
            click.echo(f"  {run_id}: {row['duration']:.3f} s  {params(row, sweep.design.parameters)}{note}")
    by_kind = {kind: sum(1 for k in kinds.values() if k == kind) for kind in (ERROR, LOST, TIMEOUT)}
    if by_kind[ERROR]:
        click.echo(f"{by_kind[ERROR]} run(s) failed in GMAT (errors above): a resume would fail them again; fix the "
                   f"script or the swept values, then run the sweep again in a new --out folder")
    if scan.missing or by_kind[LOST] or by_kind[TIMEOUT]:
        more = " --timeout SECONDS (longer) or --timeout none" if by_kind[TIMEOUT] else ""
        click.echo(f"finish it with: gmat-sweep resume {sweep.out}{more}")


class _Scan:
    """What ``show`` lists, from one pass over the manifest's entries (a 100 000-run sweep has 100 000)."""

    def __init__(self) -> None:
        self.ok = 0
        self.missing = 0  # runs of the design neither ok nor failed in the manifest
        self.kinds: dict[int, str | None] = {}  # failed run id -> why it failed
        self.unconverged: list[int] = []
        self.slowest: list[int] = []


def _scan(entries: Mapping[int, Mapping[str, Any]], size: int, slowest: int) -> _Scan:
    from ..records import FAILED, OK, TIMEOUT, failure_kind

    scan = _Scan()
    timed: list[tuple[float, int]] = []  # (duration, -run_id): ties list the lower id first
    for run_id, entry in entries.items():
        if not 0 <= run_id < size:
            continue
        status = entry.get("status")
        if status == OK:
            scan.ok += 1
            extra = entry.get("extra")
            if extra and any(k.endswith(".converged") and v is False for k, v in extra.items()):
                scan.unconverged.append(run_id)
        elif status == FAILED:
            kind = scan.kinds[run_id] = failure_kind(entry)
            if kind != TIMEOUT:  # timed-out runs are among the slowest: they ran as long as they were allowed to
                continue
        else:
            continue
        duration = entry.get("duration")
        timed.append((float(duration) if duration is not None else float("-inf"), -run_id))
    scan.missing = size - scan.ok - len(scan.kinds)
    scan.unconverged.sort()
    scan.slowest = [-negative for _, negative in heapq.nlargest(slowest, timed)]
    return scan


_KIND_LABEL = {"error": "GMAT error", "lost": "worker lost", "timeout": "timed out", None: "failed"}


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
            click.echo(f"  {run_id}: {params(row, parameters)}: {'; '.join(notes)}")


@click.command()
@click.option("--engine", default=None, help="'embedded' (default) or a GMAT install folder.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def doctor(engine: str | None, as_json: bool) -> None:
    """Start the GMAT engine and print its fingerprint and the package versions (compare driver and workers)."""
    from ..engine import EngineError, get_engine
    from ..versions import gate_versions, package_versions

    try:
        # "dask gate": the versions a Dask cluster's gate compares, as it reads them, to set beside its error.
        info = {"engine": get_engine(engine).fingerprint(), "versions": package_versions(),
                "dask gate": gate_versions()}
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


COMMANDS = [show, doctor]
