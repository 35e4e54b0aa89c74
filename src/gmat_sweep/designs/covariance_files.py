"""The string form of a multivariate normal perturbation: a covariance read from a text file, or written inline.

An orbit-determination covariance usually arrives as a file, so the string form (the only form a command line
has) reads one:

* ``"+mvnormal(cov.csv)"``: a D x D covariance centred on the script's nominal state (mean 0, added);
* ``"mvnormal(mean.csv, cov.csv)"``: the mean (D numbers) and the covariance in two files;
* ``"mvnormal(state.csv)"``: one file of D + 1 rows, the mean first, then the covariance;
* ``"mvnormal([7000, 0], [[1, 0], [0, 1]])"``: the numbers inline, as the tuple form ``("mvnormal", mean, cov)``.

Files hold numbers only, one row a line, separated by commas or by spaces (``numpy.loadtxt``; ``#`` starts a
comment). A relative file name is read from the current folder. The values, not the file names, become the
design: the manifest records the mean and covariance, so ``resume`` and ``extend`` never need the files again, and
the same numbers give the same draws as ``scipy.stats.multivariate_normal(mean, cov)`` in Python.
"""

from __future__ import annotations

import ast
import io
import os
from typing import Any

import numpy as np

from ..design import DesignError

_FORMS = ("+mvnormal(cov.csv), mvnormal(mean.csv, cov.csv) or mvnormal(state.csv) (the mean on its first line, "
          "then the covariance)")


def parse_mvnormal(label: str, dims: int, mode: str, arguments: str) -> dict[str, Any]:
    """``{"name": "mvnormal", "mean": [...], "cov": [[...]]}`` from the text between ``mvnormal(`` and ``)``."""
    inline = _literal(arguments)
    if inline is not None and len(inline) == 2 and not any(isinstance(a, str) for a in inline):
        return {"name": "mvnormal", "mean": _numbers(label, inline[0], "the mean"),
                "cov": np.asarray(_numbers(label, inline[1], "the covariance", flat=False), dtype=float).tolist()}
    if inline is not None and inline and not all(isinstance(a, str) for a in inline):
        raise DesignError(f"perturb[{label!r}]: mvnormal({arguments}) takes the mean and the covariance, e.g. "
                          f"mvnormal([0, 0], [[1, 0], [0, 1]]), or files: {_FORMS}")
    names = _file_names(label, arguments, inline)
    if len(names) == 2:
        mean_table, cov = _table(label, names[0]), _table(label, names[1])
        if min(mean_table.shape) != 1:
            raise DesignError(f"perturb[{label!r}]: the mean file {names[0]} holds a {_shape(mean_table)} table; "
                              f"write the {dims} numbers of the mean on one line")
        return {"name": "mvnormal", "mean": mean_table.ravel().tolist(), "cov": cov.tolist()}
    table = _table(label, names[0])
    if table.shape == (dims + 1, dims):
        return {"name": "mvnormal", "mean": table[0].tolist(), "cov": table[1:].tolist()}
    if table.shape == (dims, dims):
        if mode != "+":
            raise DesignError(f"perturb[{label!r}]: {names[0]} holds a covariance only ({dims} x {dims}), with no "
                              f"mean: write +mvnormal({names[0]}) to centre it on the script's nominal state, or "
                              f"give the mean too: mvnormal(mean.csv, {names[0]})")
        return {"name": "mvnormal", "mean": [0.0] * dims, "cov": table.tolist()}
    raise DesignError(f"perturb[{label!r}]: {names[0]} holds a {_shape(table)} table; for {dims} paths give a "
                      f"{dims} x {dims} covariance or {dims + 1} rows of {dims} numbers (the mean, then the "
                      "covariance)")


def _literal(arguments: str) -> tuple[Any, ...] | None:
    try:
        value = ast.literal_eval(f"({arguments},)") if arguments.strip() else ()
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, tuple) else None


def _file_names(label: str, arguments: str, literal: tuple[Any, ...] | None) -> list[str]:
    """Bare names split at commas; quoted ones (a name with a comma or a space) as written."""
    if literal is not None and literal and all(isinstance(a, str) for a in literal):
        names = list(literal)
    else:
        names = [a.strip() for a in arguments.split(",")]
    if not 1 <= len(names) <= 2 or not all(names):
        raise DesignError(f"perturb[{label!r}]: mvnormal({arguments}) takes one or two files: {_FORMS}")
    return names


def _table(label: str, name: str) -> np.ndarray:
    """The numbers of a text file as a 2-D array, or a one-line error saying what is wrong with the file."""
    if not os.path.exists(name):
        where = "" if os.path.isabs(name) else f" (a relative name is read from {os.getcwd()})"
        raise DesignError(f"perturb[{label!r}]: the file {name} does not exist{where}")
    if os.path.isdir(name):
        raise DesignError(f"perturb[{label!r}]: {name} is a folder; name the covariance file in it")
    try:
        with open(name, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DesignError(f"perturb[{label!r}]: cannot read {name} ({why})") from None
    body = [line.split("#", 1)[0] for line in text.splitlines()]
    delimiter = "," if any("," in line for line in body) else None
    try:
        table = np.loadtxt(io.StringIO(text), delimiter=delimiter, comments="#", ndmin=2, dtype=float)
    except ValueError as exc:
        why = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
        raise DesignError(f"perturb[{label!r}]: {name} is not a table of numbers ({why}); write one row a line, "
                          "the numbers separated by commas or spaces ('#' starts a comment)") from None
    if table.size == 0:
        raise DesignError(f"perturb[{label!r}]: {name} holds no numbers")
    if not np.all(np.isfinite(table)):
        raise DesignError(f"perturb[{label!r}]: {name} holds non-finite numbers (nan or inf)")
    return table


def _numbers(label: str, value: Any, what: str, flat: bool = True) -> Any:
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise DesignError(f"perturb[{label!r}]: {what} of mvnormal(mean, cov) must be numbers") from None
    return np.atleast_1d(array).tolist() if flat else array


def _shape(table: np.ndarray) -> str:
    return f"{table.shape[0]} x {table.shape[1]}"
