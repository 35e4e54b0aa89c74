"""Distributions of a dispersion: what ``perturb={"Sat.SMA": "normal(7000, 5)"}`` means, checked and canonical.

Every distribution is used through its inverse CDF (``ppf``): a design produces uniform numbers in (0, 1) (random
for Monte Carlo, stratified for Latin hypercube, low-discrepancy for Sobol') and the distribution turns them into
values. One mechanism then serves every design, and a value depends only on its uniform number.

A perturbation is written as

* a string: ``normal(mu, sigma)``, ``uniform(lo, hi)``, ``lognormal(mu, sigma)`` (of the underlying normal),
  ``truncnormal(mu, sigma, lo, hi)``, ``choice(a, b, c)`` (equally likely values, numbers or names);
* a tuple: ``("normal", mu, sigma)``;
* a frozen ``scipy.stats`` distribution, e.g. ``scipy.stats.gamma(2.0, scale=0.1)``;
* for a tuple of paths, a frozen ``scipy.stats.multivariate_normal(mean, cov)``, ``("mvnormal", mean, cov)`` or
  the string form ``"+mvnormal(cov.csv)"`` / ``"mvnormal(mean.csv, cov.csv)"`` that reads the numbers from files
  (see ``covariance_files.py``).

A leading ``+`` or ``*`` makes it relative to the value the script sets (the *nominal*, read from GMAT):
``"+normal(0, 0.1)"`` adds the draw, ``"*normal(1, 0.01)"`` multiplies by it. Objects take the tuple form
``("+", multivariate_normal(np.zeros(6), cov))``: a covariance centred on the script's nominal state.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..design import DesignError
from ..gmat.script import ScriptError, check_path

ABSOLUTE, ADD, MULTIPLY = "", "+", "*"
_CALL = re.compile(r"^\s*([+*]?)\s*([A-Za-z_]\w*)\s*\((.*)\)\s*$", re.DOTALL)
_ARITY = {"normal": 2, "uniform": 2, "lognormal": 2, "truncnormal": 4}
NAMES = (*_ARITY, "choice", "mvnormal")
# Uniform numbers are kept strictly inside (0, 1): the inverse CDF of an unbounded distribution is infinite at 0.
_EPS = 2.0**-54


def _stats() -> Any:
    try:
        import scipy.stats
    except ImportError:
        from ..distribution import install_hint

        raise DesignError(f"dispersions need scipy: {install_hint('dispersion')}") from None
    return scipy.stats


@dataclass
class Perturbation:
    """One entry of ``perturb``: the paths it sets (one, or several for a multivariate distribution), the
    distribution in canonical JSON form, and how it combines with the nominal (``""``, ``"+"`` or ``"*"``)."""

    paths: tuple[str, ...]
    spec: dict[str, Any]
    mode: str = ABSOLUTE
    _frozen: Any = field(default=None, repr=False, compare=False)
    _factor: Any = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> str:
        """The name of this entry's random stream: its draws depend only on (seed, run id, this key)."""
        return ",".join(self.paths)

    @property
    def dims(self) -> int:
        return len(self.paths)

    @property
    def relative(self) -> bool:
        return self.mode != ABSOLUTE

    def to_dict(self) -> dict[str, Any]:
        return {"paths": list(self.paths), "mode": self.mode, **self.spec}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Perturbation:
        spec = {k: v for k, v in data.items() if k not in ("paths", "mode")}
        return _build(tuple(data["paths"]), spec, data.get("mode", ABSOLUTE))

    def describe(self) -> str:
        """The distribution as a user would write it, e.g. ``*normal(1, 0.01)``."""
        name, args = self.spec["name"], list(self.spec.get("args", []))
        if name == "mvnormal":
            return f"{self.mode}mvnormal({len(self.paths)}-dimensional)"
        if name == "scipy":
            name = self.spec["dist"]
            args += [f"{k}={v}" for k, v in self.spec["kwds"].items()]
        shown = [repr(a) if isinstance(a, str) and name == "choice" else f"{a:g}" if isinstance(a, float) else str(a)
                 for a in args]
        return f"{self.mode}{name}({', '.join(shown)})"

    def values(self, u: np.ndarray, nominal: Mapping[str, float]) -> list[np.ndarray | list[Any]]:
        """Turn uniform numbers ``u`` (rows x dims) into one column of values per path."""
        name = self.spec["name"]
        if name == "choice":
            options = self.spec["args"]
            index = np.minimum((u[:, 0] * len(options)).astype(np.int64), len(options) - 1)
            return [[options[i] for i in index.tolist()]]
        if name == "mvnormal":
            z = _stats().norm.ppf(u)
            drawn = np.asarray(self.spec["mean"], dtype=float) + z @ self._factor.T
            columns = [drawn[:, j] for j in range(self.dims)]
        elif name in _CLOSED_FORM:
            columns = [_CLOSED_FORM[name](self.spec["args"], u[:, 0])]
        else:
            columns = [np.asarray(self._frozen.ppf(u[:, 0]), dtype=float)]
        if self.mode == ADD:
            columns = [nominal[p] + c for p, c in zip(self.paths, columns)]
        elif self.mode == MULTIPLY:
            columns = [nominal[p] * c for p, c in zip(self.paths, columns)]
        return columns


def _ndtri(u: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri

    return ndtri(u)


# Inverse CDFs written out for the common distributions: a frozen scipy distribution's ppf spends more time
# checking its arguments than computing a block of 4096 values. (truncnormal and scipy objects use scipy's ppf.)
_CLOSED_FORM = {
    "normal": lambda a, u: a[0] + a[1] * _ndtri(u),
    "uniform": lambda a, u: a[0] + (a[1] - a[0]) * u,
    "lognormal": lambda a, u: np.exp(a[0] + a[1] * _ndtri(u)),
}


def parse_perturb(perturb: Mapping[Any, Any]) -> list[Perturbation]:
    """Check and canonicalise a ``perturb`` mapping; a path given twice (alone and in a tuple) is refused."""
    if not isinstance(perturb, Mapping) or not perturb:
        raise DesignError("perturb must be a non-empty mapping of GMAT path -> distribution, "
                          "e.g. {'Sat.SMA': 'normal(7000, 5)'}")
    entries: list[Perturbation] = []
    seen: dict[str, str] = {}
    for key, spec in perturb.items():
        paths = tuple(key) if isinstance(key, (tuple, list)) else (key,)
        if not paths:
            raise DesignError("perturb has an empty tuple of paths; give at least one GMAT path")
        checked = []
        for path in paths:
            try:
                path = check_path(path)
            except ScriptError as exc:
                raise DesignError(f"perturb: {exc}") from None
            if path in seen or path in checked:
                where = seen.get(path, ",".join(paths))
                raise DesignError(f"{path} is perturbed twice (in {where!r} and {','.join(paths)!r}); give each path "
                                  "one distribution (put correlated paths only in their tuple)")
            checked.append(path)
        for path in checked:
            seen[path] = ",".join(checked)
        entries.append(parse_one(tuple(checked), spec))
    return entries


def parse_one(paths: tuple[str, ...], spec: Any) -> Perturbation:
    """One distribution for ``paths``, in any accepted form."""
    label = ",".join(paths)
    mode = ABSOLUTE
    if isinstance(spec, tuple) and len(spec) == 2 and spec[0] in (ADD, MULTIPLY) and not isinstance(spec[1], str):
        mode, spec = spec
    if isinstance(spec, str):
        match = _CALL.match(spec)
        if not match:
            raise DesignError(f"perturb[{label!r}] = {spec!r} is not a distribution; write e.g. 'normal(7000, 5)', "
                              f"'+normal(0, 0.1)' or '*normal(1, 0.01)' ({', '.join(NAMES[:-1])})")
        mode, name, arguments = match.groups()
        if name.lower() == "mvnormal":  # a covariance from a file (or inline): see covariance_files.py
            from .covariance_files import parse_mvnormal

            return _build(paths, parse_mvnormal(label, len(paths), mode, arguments), mode)
        try:
            args = list(ast.literal_eval(f"({arguments},)")) if arguments.strip() else []
        except (ValueError, SyntaxError):
            raise DesignError(f"perturb[{label!r}] = {spec!r}: the arguments must be numbers (or, for choice, "
                              "numbers or quoted names)") from None
        return _build(paths, {"name": name.lower(), "args": args}, mode)
    if isinstance(spec, (tuple, list)) and spec and isinstance(spec[0], str):
        name = spec[0].lstrip("+*")
        mode = spec[0][: len(spec[0]) - len(name)] or mode
        if name.lower() == "mvnormal":
            if len(spec) != 3:
                raise DesignError(f"perturb[{label!r}]: write ('mvnormal', mean, cov)")
            return _build(paths, {"name": "mvnormal", "mean": _floats(spec[1], label),
                                  "cov": np.asarray(spec[2], dtype=float).tolist()}, mode)
        return _build(paths, {"name": name.lower(), "args": list(spec[1:])}, mode)
    if hasattr(spec, "cov") and hasattr(spec, "mean") and hasattr(spec, "logpdf"):
        cov = spec.cov if not hasattr(spec, "cov_object") else spec.cov_object.covariance
        return _build(paths, {"name": "mvnormal", "mean": np.atleast_1d(spec.mean).astype(float).tolist(),
                              "cov": np.atleast_2d(np.asarray(cov, dtype=float)).tolist()}, mode)
    if hasattr(spec, "dist") and hasattr(spec, "ppf") and hasattr(spec, "args"):
        return _build(paths, {"name": "scipy", "dist": spec.dist.name, "args": [_plain(a) for a in spec.args],
                              "kwds": {k: _plain(v) for k, v in spec.kwds.items()}}, mode)
    raise DesignError(f"perturb[{label!r}] = {spec!r} is not a distribution: give a string such as "
                      "'normal(7000, 5)', a tuple ('normal', 7000, 5) or a frozen scipy.stats distribution")


def _build(paths: tuple[str, ...], spec: dict[str, Any], mode: str) -> Perturbation:
    label = ",".join(paths)
    name = spec["name"]
    entry = Perturbation(paths, spec, mode)
    if name == "mvnormal":
        entry._factor = _covariance_factor(label, len(paths), spec["mean"], spec["cov"])
        return entry
    if len(paths) != 1:
        raise DesignError(f"perturb[{label!r}]: a tuple of {len(paths)} paths needs a multivariate distribution, "
                          "e.g. scipy.stats.multivariate_normal(mean, cov); give the others their own entries")
    if name == "choice":
        if not spec["args"]:
            raise DesignError(f"perturb[{label!r}]: choice() needs at least one value, e.g. choice(1, 2, 3)")
        return entry
    if name == "scipy":
        stats = _stats()
        entry._frozen = getattr(stats, spec["dist"])(*spec["args"], **spec["kwds"])
        return entry
    if name not in _ARITY:
        raise DesignError(f"perturb[{label!r}]: unknown distribution {name!r}; use one of {', '.join(NAMES)} "
                          "or a frozen scipy.stats distribution")
    args = spec["args"]
    if len(args) != _ARITY[name] or not all(_number(a) for a in args):
        signature = {"normal": "mu, sigma", "uniform": "lo, hi", "lognormal": "mu, sigma",
                     "truncnormal": "mu, sigma, lo, hi"}[name]
        raise DesignError(f"perturb[{label!r}]: {name} takes {_ARITY[name]} numbers ({signature}), got {args!r}")
    spec["args"] = args = [float(a) for a in args]
    stats = _stats()
    if name in ("normal", "lognormal", "truncnormal") and not args[1] > 0:
        raise DesignError(f"perturb[{label!r}]: sigma must be > 0 in {name}({', '.join(map(str, args))}); "
                          "for a fixed value use a grid or samples")
    if name == "uniform" and not args[0] < args[1]:
        raise DesignError(f"perturb[{label!r}]: uniform(lo, hi) needs lo < hi, got lo={args[0]:g}, hi={args[1]:g}")
    if name == "truncnormal" and not args[2] < args[3]:
        raise DesignError(f"perturb[{label!r}]: truncnormal(mu, sigma, lo, hi) needs lo < hi, got "
                          f"lo={args[2]:g}, hi={args[3]:g}")
    mu, sigma = args[0], args[1]
    entry._frozen = {
        "normal": lambda: stats.norm(mu, sigma),
        "uniform": lambda: stats.uniform(args[0], args[1] - args[0]),
        "lognormal": lambda: stats.lognorm(sigma, scale=math.exp(mu)),
        "truncnormal": lambda: stats.truncnorm((args[2] - mu) / sigma, (args[3] - mu) / sigma, loc=mu, scale=sigma),
    }[name]()
    return entry


def _covariance_factor(label: str, dims: int, mean: Sequence[float], cov: Any) -> np.ndarray:
    """A matrix F with F F^T = cov, after naming which check a bad covariance fails."""
    cov = np.asarray(cov, dtype=float)
    if len(mean) != dims:
        raise DesignError(f"perturb[{label!r}]: the mean has {len(mean)} values for {dims} paths")
    if cov.shape != (dims, dims):
        raise DesignError(f"perturb[{label!r}]: the covariance has shape {cov.shape}, not ({dims}, {dims}) for "
                          f"{dims} paths")
    if not np.all(np.isfinite(cov)):
        raise DesignError(f"perturb[{label!r}]: the covariance has non-finite entries")
    scale = float(np.max(np.abs(cov))) or 1.0
    if not np.allclose(cov, cov.T, rtol=1e-10, atol=1e-12 * scale):
        i, j = np.unravel_index(np.argmax(np.abs(cov - cov.T)), cov.shape)
        raise DesignError(f"perturb[{label!r}]: the covariance is not symmetric (cov[{i},{j}]={cov[i, j]:g} but "
                          f"cov[{j},{i}]={cov[j, i]:g}); symmetrise it, e.g. (C + C.T) / 2")
    eigenvalues = np.linalg.eigvalsh(cov)
    if eigenvalues[0] < -1e-10 * max(eigenvalues[-1], 0.0) or eigenvalues[-1] < 0:
        raise DesignError(f"perturb[{label!r}]: the covariance is not positive semi-definite (smallest eigenvalue "
                          f"{eigenvalues[0]:g}); check its correlations")
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:  # singular but PSD (a perfectly correlated pair): factor it by eigenvectors
        w, v = np.linalg.eigh(cov)
        return v * np.sqrt(np.clip(w, 0.0, None))


def clip_unit(u: np.ndarray) -> np.ndarray:
    return np.clip(u, _EPS, 1.0 - _EPS)


def _floats(values: Any, label: str) -> list[float]:
    try:
        return np.atleast_1d(np.asarray(values, dtype=float)).tolist()
    except (TypeError, ValueError):
        raise DesignError(f"perturb[{label!r}]: the mean must be numbers") from None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(float(value))


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
