"""Space-filling designs: Latin hypercube and scrambled Sobol' points, computed a block at a time.

**Latin hypercube.** A hypercube of ``n`` runs puts, for every parameter, exactly one run in each of the ``n``
equal-probability strata. Run ``j`` of a hypercube falls in stratum ``perm(j)`` of each parameter, where ``perm``
is a pseudo-random permutation of ``0..n-1`` computed on demand (a keyed Feistel network with cycle walking, keyed
by the seed, the parameter and the block), plus a uniform jitter inside the stratum drawn from a Philox stream.
So no run needs the others to be computed, and a hypercube of 10^7 runs holds no table of 10^7 rows.
*Extending* a Latin hypercube by ``m`` runs adds a further, independent hypercube of ``m`` runs: each block keeps
its own one-point-per-stratum property (the union of two hypercubes is not itself one), and the first ``n`` runs
are untouched. ``blocks`` in the manifest lists the sizes.

**Sobol'.** Scrambled Sobol' points (``scipy.stats.qmc.Sobol``, Owen scrambling seeded by the design's seed),
one dimension per perturbed path in the order given. Point ``i`` is computed by fast-forwarding the sequence, a
block at a time; an extension continues the sequence, so ``n`` then ``+m`` is exactly one sweep of ``n + m``.
Sobol' points are balanced (and their error is smallest) when ``n`` is a power of two. Unlike Monte Carlo, the
dimensions of a Sobol' design belong together: adding a parameter changes the scrambling of the others.
"""

from __future__ import annotations

import bisect
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..design import DesignError
from .dispersion import BLOCK, Dispersion, check_n, generator, stream_key
from .distributions import Perturbation

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: np.ndarray, key: np.uint64) -> np.ndarray:
    """splitmix64 finaliser of ``x ^ key``: the round function of the Feistel network."""
    with np.errstate(over="ignore"):
        z = (x ^ key) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def permute(index: np.ndarray, n: int, keys: np.ndarray) -> np.ndarray:
    """The image of ``index`` (values in 0..n-1) under a keyed pseudo-random permutation of 0..n-1."""
    bits = max(2, (n - 1).bit_length())
    bits += bits % 2
    half = np.uint64(bits // 2)
    mask = np.uint64((1 << (bits // 2)) - 1)

    def feistel(x: np.ndarray) -> np.ndarray:
        left, right = x >> half, x & mask
        for key in keys:
            left, right = right, left ^ (_mix(right, key) & mask)
        return (left << half) | right

    x = feistel(index.astype(np.uint64))
    outside = x >= np.uint64(n)
    while outside.any():  # cycle walking: a permutation of 0..2^bits-1 restricted to 0..n-1 is one of 0..n-1
        x[outside] = feistel(x[outside])
        outside = x >= np.uint64(n)
    return x.astype(np.int64)


class LatinHypercube(Dispersion):
    """Latin hypercube blocks: one point per stratum of every parameter within each block.

    >>> LatinHypercube({"Sat.SMA": "uniform(6900, 7100)"}, n=100, seed=1)[0]  # doctest: +SKIP
    """

    kind = "latin_hypercube"

    def __init__(self, perturb: Any, n: int, seed: Any = None, nominal: Mapping[str, float] | None = None,
                 blocks: list[int] | None = None) -> None:
        super().__init__(perturb, n, seed, nominal)
        self.blocks = [check_n(b, "a block size") for b in (blocks or [self.n])]
        if sum(self.blocks) != self.n:
            raise DesignError(f"the Latin hypercube blocks {self.blocks} do not add up to n={self.n}")
        self._starts = list(np.cumsum([0, *self.blocks[:-1]]).tolist())

    def _extra(self) -> dict[str, Any]:
        return {"n": self.n, "blocks": list(self.blocks)}

    def units(self, start: int, stop: int) -> dict[str, np.ndarray]:
        out: dict[str, list[np.ndarray]] = {e.key: [] for e in self.entries}
        block = bisect.bisect_right(self._starts, start) - 1
        while start < stop:
            first, size = self._starts[block], self.blocks[block]
            end = min(stop, first + size)
            for entry in self.entries:
                out[entry.key].append(self._block_units(entry, block, size, start - first, end - first))
            start, block = end, block + 1
        return {k: np.concatenate(v) if len(v) > 1 else v[0] for k, v in out.items()}

    def _block_units(self, entry: Perturbation, block: int, size: int, lo: int, hi: int) -> np.ndarray:
        key = stream_key(entry.key)
        index = np.arange(lo, hi, dtype=np.int64)
        columns = []
        for dim in range(entry.dims):
            # The last word separates the permutations' keys from the jitter streams' (which end in 1).
            keys = np.random.SeedSequence([self.seed, key, block, dim, 0]).generate_state(4, np.uint64)
            columns.append(permute(index, size, keys))
        strata = np.stack(columns, axis=1).astype(float)
        jitter = np.concatenate([generator(self.seed, key, block, chunk, 1).random((BLOCK, entry.dims))
                                 for chunk in range(lo // BLOCK, (hi - 1) // BLOCK + 1)])
        offset = (lo // BLOCK) * BLOCK
        return (strata + jitter[lo - offset: hi - offset]) / size

    def extended(self, m: int) -> LatinHypercube:
        m = check_n(m, "m")
        return LatinHypercube(self.entries, self.n + m, self.seed, self.nominal, [*self.blocks, m])

    def describe(self) -> str:
        extra = f" in blocks {self.blocks}" if len(self.blocks) > 1 else ""
        return f"{self.kind}, n={self.n}{extra}, seed={self.seed}"


def sobol_points(seed: int, dims: int, start: int, stop: int) -> np.ndarray:
    """Scrambled Sobol' points ``start..stop-1`` of dimension ``dims`` for ``seed``."""
    from scipy.stats import qmc

    rng = generator(seed, stream_key("sobol"))
    try:
        engine = qmc.Sobol(dims, scramble=True, rng=rng)
    except TypeError:  # scipy < 1.15 names it seed
        engine = qmc.Sobol(dims, scramble=True, seed=rng)
    if start:
        engine.fast_forward(start)
    with warnings.catch_warnings():
        # scipy warns when a chunk does not end on a power of two; the design as a whole is what counts.
        warnings.simplefilter("ignore", UserWarning)
        return engine.random(stop - start)


def power_of_two_warning(n: int) -> str | None:
    if n & (n - 1) == 0:
        return None
    below, above = 1 << (n.bit_length() - 1), 1 << n.bit_length()
    return (f"Sobol' n={n} is not a power of two: Sobol' points are balanced, and converge fastest, only at "
            f"powers of two; use n={below} or n={above} (or extend to one)")


class Sobol(Dispersion):
    """Scrambled Sobol' low-discrepancy points, one dimension per perturbed path.

    >>> Sobol({"Sat.SMA": "uniform(6900, 7100)", "Sat.INC": "uniform(28, 52)"}, n=256, seed=1)[0]  # doctest: +SKIP
    """

    kind = "sobol"

    def __init__(self, perturb: Any, n: int, seed: Any = None, nominal: Mapping[str, float] | None = None,
                 warn: bool = False) -> None:
        super().__init__(perturb, n, seed, nominal)
        if len(self.parameters) > 21201:
            raise DesignError("Sobol' points exist for at most 21201 dimensions")
        if warn and (problem := power_of_two_warning(self.n)):
            warnings.warn(problem, stacklevel=3)

    def units(self, start: int, stop: int) -> dict[str, np.ndarray]:
        points = sobol_points(self.seed, len(self.parameters), start, stop)
        out, column = {}, 0
        for entry in self.entries:
            out[entry.key] = points[:, column: column + entry.dims]
            column += entry.dims
        return out

    def extended(self, m: int) -> Sobol:
        return Sobol(self.entries, self.n + check_n(m, "m"), self.seed, self.nominal)
