"""Random designs: a run's values computed on demand from (seed, run id, parameter), never the whole table.

A dispersion design turns uniform numbers into values through each distribution's inverse CDF
(see ``distributions.py``). Subclasses say where the uniform numbers of run ids ``start..stop`` come from; this
base computes them one block of ``BLOCK`` runs at a time and keeps the last block, so iterating a 10-million-run
design holds one block in memory, and any run id can be computed alone.

Monte Carlo draws the uniform numbers of each perturbation from its own counter-based stream (Philox) keyed by
the seed, a stable hash of the perturbation's paths and the block number: the values of run ``i`` depend only on
(seed, i, parameter name), so adding a parameter leaves the others' draws unchanged, and runs ``n..n+m-1`` of a
larger sweep are exactly those of an extension.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..design import Design, DesignError
from .distributions import Perturbation, clip_unit, parse_perturb

#: Runs per computed block. Part of the definition of a design's values: changing it changes every draw.
BLOCK = 4096


def resolve_seed(seed: Any) -> int:
    """``None`` draws a fresh seed from the OS (it is recorded in the manifest); anything else must be a whole
    number >= 0."""
    if seed is None:
        return secrets.randbits(63)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DesignError(f"seed must be a whole number >= 0 (or None for a fresh one), got {seed!r}")
    return int(seed)


def check_n(n: Any, what: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DesignError(f"{what} must be a whole number of runs >= 1, got {n!r}")
    return int(n)


def stream_key(name: str) -> int:
    """A stable 128-bit number for a parameter name (Python's hash() changes between processes)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:16], "little")


def generator(seed: int, *words: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(np.random.SeedSequence([seed, *words])))


class Dispersion(Design):
    """Base of the random designs: perturbations, a seed, a number of runs and, for relative perturbations,
    the nominal values read from GMAT (``nominal``; filled in before the first run, recorded in the manifest)."""

    kind = ""

    def __init__(self, perturb: Mapping[Any, Any] | list[Perturbation], n: int, seed: Any = None,
                 nominal: Mapping[str, float] | None = None) -> None:
        self.entries = perturb if isinstance(perturb, list) else parse_perturb(perturb)
        self.n = check_n(n)
        self.seed = resolve_seed(seed)
        self.parameters = [p for e in self.entries for p in e.paths]
        self.nominal: dict[str, float] = dict(nominal or {})
        self._cache: tuple[int, list[tuple[str, list[Any]]]] | None = None

    # ---------------------------------------------------------------- what subclasses define

    def units(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Uniform numbers in (0, 1) for run ids ``start..stop-1``: one (rows x dims) array per entry key."""
        raise NotImplementedError

    def extended(self, m: int) -> Dispersion:
        """This design with ``m`` more runs, whose first runs are exactly this design's."""
        raise NotImplementedError

    def _extra(self) -> dict[str, Any]:
        return {"n": self.n}

    # ---------------------------------------------------------------- the Design interface

    @property
    def relative_paths(self) -> list[str]:
        return [p for e in self.entries if e.relative for p in e.paths]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, run_id: int) -> dict[str, Any]:
        if not 0 <= run_id < self.n:
            raise IndexError(run_id)
        block = run_id // BLOCK
        if self._cache is None or self._cache[0] != block:
            columns = self.columns(block * BLOCK, min(self.n, (block + 1) * BLOCK))
            self._cache = (block, [(p, c.tolist() if hasattr(c, "tolist") else c) for p, c in columns.items()])
        j = run_id - block * BLOCK
        return {path: column[j] for path, column in self._cache[1]}

    def rows(self, start: int, stop: int) -> list[dict[str, Any]]:
        columns = self.columns(start, stop)
        lists = [c.tolist() if hasattr(c, "tolist") else c for c in columns.values()]
        names = list(columns)
        return [dict(zip(names, values)) for values in zip(*lists)]

    def columns(self, start: int, stop: int) -> dict[str, Any]:
        """The values of run ids ``start..stop-1``, one array (or list, for ``choice``) per path."""
        missing = [p for p in self.relative_paths if p not in self.nominal]
        if missing:
            raise DesignError(f"the nominal values of {', '.join(missing)} have not been read from GMAT yet "
                              "(they are read when the sweep starts)")
        units = self.units(start, stop)
        values: dict[str, Any] = {}
        for entry in self.entries:
            for path, column in zip(entry.paths, entry.values(clip_unit(units[entry.key]), self.nominal)):
                values[path] = column
        return values

    def iter_columns(self, limit: int | None = None) -> Any:
        """Blocks of columns over the first ``limit`` runs (all by default), one block in memory at a time."""
        stop = self.n if limit is None else min(self.n, limit)
        for start in range(0, stop, BLOCK):
            yield self.columns(start, min(stop, start + BLOCK))

    def to_dict(self) -> dict[str, Any]:
        data = {"kind": self.kind, "perturb": [e.to_dict() for e in self.entries], "seed": self.seed,
                **self._extra()}
        if self.nominal:
            data["nominal"] = dict(self.nominal)
        return data

    def difference(self, recorded: Mapping[str, Any]) -> str | None:
        """What differs from the design recorded in a manifest (``None``: the same sweep). A recorded nominal is
        adopted, so a sweep continued later uses the values its finished runs used."""
        if recorded.get("kind") != self.kind:
            return f"the design kind ({recorded.get('kind')} there, {self.kind} here)"
        theirs = {tuple(e["paths"]): e for e in recorded.get("perturb", [])}
        ours = {e.paths: e.to_dict() for e in self.entries}
        for paths in list(dict.fromkeys([*theirs, *ours])):
            if theirs.get(paths) != ours.get(paths):
                def show(entry: Any) -> str:
                    return Perturbation.from_dict(entry).describe() if entry else "not perturbed"
                return f"the perturbation of {','.join(paths)} ({show(theirs.get(paths))} there, " \
                       f"{show(ours.get(paths))} here)"
        if recorded.get("seed") != self.seed:
            return f"the seed ({recorded.get('seed')} there, {self.seed} here)"
        for key, value in self._extra().items():
            if recorded.get(key) != value:
                return f"{key} ({recorded.get(key)} there, {value} here)"
        for path, value in (recorded.get("nominal") or {}).items():
            self.nominal.setdefault(path, value)
        return None

    def distinct_values(self) -> dict[str, list[Any]]:
        """For the preflight: each path's smallest and largest value over the first runs (every choice)."""
        found: dict[str, list[Any]] = {}
        for columns in self.iter_columns(PREFLIGHT_RUNS):
            for path, column in columns.items():
                if isinstance(column, list):
                    seen = found.setdefault(path, [])
                    seen += [v for v in dict.fromkeys(column) if v not in seen]
                else:
                    low, high = float(np.min(column)), float(np.max(column))
                    if path in found:
                        low, high = min(low, found[path][0]), max(high, found[path][-1])
                    found[path] = [low, high] if low != high else [low]
        return found

    def describe(self) -> str:
        return f"{self.kind}, n={self.n}, seed={self.seed}"


#: How many runs the preflight looks at for the range of every parameter: all of them up to this many.
PREFLIGHT_RUNS = 100_000


class MonteCarlo(Dispersion):
    """Independent random draws, one Philox stream per perturbation and block of runs.

    >>> MonteCarlo({"Sat.SMA": "normal(7000, 5)"}, n=1000, seed=42)[0]["Sat.SMA"]  # doctest: +SKIP
    """

    kind = "monte_carlo"

    def units(self, start: int, stop: int) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for entry in self.entries:
            key = stream_key(entry.key)
            parts = []
            for block in range(start // BLOCK, (stop - 1) // BLOCK + 1):
                u = generator(self.seed, key, block).random((BLOCK, entry.dims))
                lo, hi = max(start, block * BLOCK) - block * BLOCK, min(stop, (block + 1) * BLOCK) - block * BLOCK
                parts.append(u[lo:hi])
            out[entry.key] = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return out

    def extended(self, m: int) -> MonteCarlo:
        return MonteCarlo(self.entries, self.n + check_n(m, "m"), self.seed, self.nominal)
