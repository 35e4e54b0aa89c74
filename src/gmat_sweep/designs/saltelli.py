"""The Saltelli design for Sobol' sensitivity indices, computed on demand.

For ``D`` perturbed paths and ``n`` base points, a scrambled Sobol' sequence of dimension ``2D`` gives two
matrices A (first D columns) and B (last D). Base point ``j`` makes ``D + 2`` runs, in SALib's order (first-order
and total indices, no second order): ``A_j``, then ``A_j`` with column ``k`` taken from ``B_j`` for each k, then
``B_j``. So run ``r`` is point ``r // (D + 2)``, variant ``r % (D + 2)``, and ``SALib.analyze.sobol`` reads the
results in run-id order. The indices need independent inputs, so multivariate perturbations are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..design import DesignError
from .dispersion import Dispersion, check_n
from .qmc import sobol_points


class Saltelli(Dispersion):
    """``n`` base points x (D + 2) runs for first-order and total Sobol' indices.

    >>> len(Saltelli({"x1": "uniform(-3.14, 3.14)", "x2": "uniform(-3.14, 3.14)"}, n=64, seed=1))
    256
    """

    kind = "saltelli"

    def __init__(self, perturb: Any, n: int, seed: Any = None, nominal: Mapping[str, float] | None = None,
                 base: int | None = None) -> None:
        super().__init__(perturb, 1, seed, nominal)
        if any(e.dims > 1 for e in self.entries):
            raise DesignError("a Saltelli design needs independent inputs: give every path its own distribution "
                              "(Sobol' indices are not defined for correlated inputs)")
        self.base = check_n(base if base is not None else n)
        self.width = len(self.parameters) + 2
        self.n = self.base * self.width

    def _extra(self) -> dict[str, Any]:
        return {"base": self.base, "n": self.n}

    def units(self, start: int, stop: int) -> dict[str, np.ndarray]:
        d = len(self.parameters)
        first, last = start // self.width, (stop - 1) // self.width + 1
        points = sobol_points(self.seed, 2 * d, first, last)
        rows = np.arange(start, stop)
        a = points[rows // self.width - first, :d]
        b = points[rows // self.width - first, d:]
        variant = rows % self.width
        # variant 0: A; 1..d: A with column variant-1 from B; d+1: B
        take_b = (variant[:, None] == np.arange(1, d + 1)[None, :]) | (variant[:, None] == d + 1)
        units = np.where(take_b, b, a)
        return {e.key: units[:, i: i + 1] for i, e in enumerate(self.entries)}

    def extended(self, m: int) -> Dispersion:
        raise DesignError("a Saltelli sweep cannot be extended: its runs come in groups of D+2 for one sequence "
                          "length; start a new saltelli sweep with a larger n")

    def describe(self) -> str:
        return f"{self.kind}, n={self.base} base points ({self.n} runs), seed={self.seed}"
