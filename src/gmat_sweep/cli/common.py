"""What every command shares: bad input as one line and exit code 2, Ctrl-C and SIGTERM, the closing summary."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

import click

from .main import EXIT_FAILED_RUNS, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE


class user_errors:
    """Turn the library's bad-input errors into a one-line message and exit code 2."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        from ..gmat.script import ScriptError
        from ..manifest import ManifestError
        from ..sweep import SweepError

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


def execute(action: Any, out: str, options: dict[str, Any]) -> None:
    _stop_on_sigterm()
    try:
        with user_errors():
            from .options import make_pool

            pool = make_pool(options)
            with pool:
                action(pool)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: every finished run is saved in {out}/manifest.jsonl.\n"
                   f"resume with: gmat-sweep resume {out}", err=True)
        sys.exit(EXIT_INTERRUPTED)


class _EchoHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        click.echo(record.getMessage(), err=True)


def echo_log(name: str) -> None:
    log = logging.getLogger(name)
    if not any(isinstance(h, _EchoHandler) for h in log.handlers):
        log.addHandler(_EchoHandler())
        log.setLevel(logging.INFO)


def finish(sweep: Any) -> int:
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


def params(row: Any, parameters: Sequence[str]) -> str:
    return ", ".join(f"{p}={row[p]!r}" for p in parameters)
