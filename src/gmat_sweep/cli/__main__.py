"""``python -m gmat_sweep.cli``: the ``gmat-sweep`` command."""

from . import main

main()
