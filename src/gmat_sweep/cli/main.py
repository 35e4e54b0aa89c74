"""The ``gmat-sweep`` command group and its exit codes; ``gmat_sweep.cli`` adds every command to it.

Exit codes: 0 every run ok, 1 some runs failed, 2 bad usage or bad input, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import click

from ..distribution import DISTRIBUTION

EXIT_OK, EXIT_FAILED_RUNS, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name=DISTRIBUTION)
def main() -> None:
    """Parameter sweeps over GMAT mission scripts, in parallel, into one tidy table."""
