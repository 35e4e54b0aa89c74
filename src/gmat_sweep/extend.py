"""Growing a finished or interrupted dispersion: ``Sweep.extend(m)`` and ``gmat-sweep extend OUT --n M``.

The manifest header records the design; extending rewrites that one line (a new file renamed over the old, so a
crash leaves either the old or the new manifest, never a mix) and the runs that follow are ordinary missing runs:
an extend interrupted at any point is finished by ``resume``. Only ``n`` may change: the script, the
perturbations, the seed and the collect names are those of the finished runs, and anything else is refused.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import TYPE_CHECKING

from .atomic import write_bytes
from .manifest import manifest_path, read_manifest

if TYPE_CHECKING:
    from .sweep import Sweep


def grow(sweep: Sweep, m: int, allow_changed_script: bool = False) -> None:
    """Record ``m`` more runs in ``sweep``'s design and manifest header (the runs themselves are then missing)."""
    from .designs.qmc import Sobol, power_of_two_warning
    from .sweep import SweepError

    path = manifest_path(sweep.out)
    if not os.path.exists(path):
        raise SweepError(f"nothing to extend: {sweep.out} has no manifest.jsonl (run the sweep first)")
    manifest = read_manifest(path)
    header = manifest.header
    if not hasattr(sweep.design, "extended"):
        raise SweepError(f"{sweep.out} is a {header['design'].get('kind')} sweep, whose runs are fixed by its "
                         "design; only Monte Carlo, Latin hypercube and Sobol' sweeps can be extended. Start a new "
                         "sweep with the larger grid or sample table.")
    differs = sweep.design.difference(header["design"])
    if differs is None and header.get("collect", []) != sweep.collect:
        differs = "collect"
    if differs:
        raise SweepError(f"extend may change only n, but this would change {differs}; use the sweep's own "
                         f"settings (Sweep.from_manifest({sweep.out!r}).extend(m)) or start a new sweep")
    if header["script"]["sha256"] != sweep.source.sha256 and not allow_changed_script:
        raise SweepError(f"extend would change the script: {sweep.source.path} (or a file it includes) changed since "
                         "the sweep started, so new runs would not match the finished ones. Restore it, or accept "
                         "the change with allow_changed_script=True (CLI: --allow-changed-script).")
    grown = sweep.design.extended(m)
    if isinstance(grown, Sobol) and (problem := power_of_two_warning(grown.n)):
        warnings.warn(problem, stacklevel=3)
    header = {**header, "design": grown.to_dict(), "runs": len(grown)}
    _replace_header(path, header)
    sweep.design = grown
    sweep._manifest = read_manifest(path)


def _replace_header(path: str, header: dict) -> None:
    with open(path, "rb") as handle:
        data = handle.read()
    end = data.index(b"\n") + 1
    rest = data[end:]
    cut = rest.rfind(b"\n") + 1  # a torn last line is dropped here, as the next append would
    # Durable: once the call returns, a power cut leaves the new header, not the old one.
    write_bytes(path, json.dumps(header, separators=(",", ":")).encode() + b"\n" + rest[:cut], durable=True)
