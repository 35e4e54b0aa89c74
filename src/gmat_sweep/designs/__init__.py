"""Random and space-filling designs: each maps (run id, seed) to one row of values, on demand.

``distributions`` parses what a parameter is perturbed with; ``dispersion`` holds the shared machinery and Monte
Carlo; ``qmc`` Latin hypercube and Sobol'; ``saltelli`` the design for Sobol' sensitivity indices.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .dispersion import Dispersion, MonteCarlo
from .distributions import Perturbation
from .qmc import LatinHypercube, Sobol
from .saltelli import Saltelli


def from_dict(data: Mapping[str, Any]) -> Dispersion:
    """The design recorded in a manifest header."""
    entries = [Perturbation.from_dict(e) for e in data["perturb"]]
    kind, seed, nominal = data["kind"], data["seed"], data.get("nominal")
    if kind == "monte_carlo":
        return MonteCarlo(entries, data["n"], seed, nominal)
    if kind == "latin_hypercube":
        return LatinHypercube(entries, data["n"], seed, nominal, data.get("blocks"))
    if kind == "sobol":
        return Sobol(entries, data["n"], seed, nominal)
    return Saltelli(entries, data["base"], seed, nominal)


__all__ = ["Dispersion", "LatinHypercube", "MonteCarlo", "Perturbation", "Saltelli", "Sobol", "from_dict"]
