"""The ``gmat-sweep`` command: argument parsing, progress and exit codes; the work happens in the API.

One module per command family, all added to the group in ``main.py``:

    gmat-sweep run | resume | compact           run.py
    gmat-sweep show | doctor                    show.py
    gmat-sweep mc | lhs | sobol | saltelli | extend | sensitivity    designs.py
    gmat-sweep plot | report | archive | diff   view.py
    gmat-sweep k8s render                       k8s.py (with the Kubernetes extra)

Exit codes: 0 every run ok, 1 some runs failed, 2 bad usage or bad input, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

from . import designs, run, show, view
from .main import EXIT_FAILED_RUNS, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, main
from .parsing import parse_grid_option, parse_value, read_samples

__all__ = ["EXIT_FAILED_RUNS", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "main", "parse_grid_option",
           "parse_value", "read_samples"]

for _command in (*run.COMMANDS, *show.COMMANDS, *view.VIEW_COMMANDS):
    main.add_command(_command)
designs.register(main)
try:
    from .k8s import k8s
except ImportError:  # the [kubernetes] extra is not installed
    pass
else:
    main.add_command(k8s)
