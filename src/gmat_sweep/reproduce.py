"""The commands that make a recorded sweep's design again, for an archive's README.

A grid is written as ``gmat-sweep run --grid ...`` when every value reads back as itself. A dispersion is written as
the design, not as its values: ``gmat-sweep mc|lhs|sobol|saltelli SCRIPT --perturb ... --n N --seed S`` (a Latin
hypercube that was extended adds one ``gmat-sweep extend`` per further block), because the design is defined by
(kind, perturbations, seed, n) and the command a user would type is the one that says so. A multivariate normal
perturbation's mean and covariance go to a file of the bundle (``design/mvnormal-K.csv``, the mean on its first line)
that the command names. A perturbation with no command-line form (a frozen ``scipy.stats`` object) leaves only the
Python form. Sample tables stay samples.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

#: The CLI command of each dispersion kind.
COMMANDS = {"monte_carlo": "mc", "latin_hypercube": "lhs", "sobol": "sobol", "saltelli": "saltelli"}


def is_dispersion(design: Mapping[str, Any]) -> bool:
    return design.get("kind") in COMMANDS


def design_files(header: Mapping[str, Any]) -> dict[str, bytes]:
    """The files the reproduce command reads (a multivariate normal's mean and covariance), by bundle path."""
    files: dict[str, bytes] = {}
    if not is_dispersion(header["design"]):
        return files
    for index, entry in enumerate(header["design"]["perturb"]):
        if entry.get("name") == "mvnormal":
            rows = [entry["mean"], *entry["cov"]]
            text = (f"# {', '.join(entry['paths'])}: the mean (this first row of numbers), then the covariance; "
                    "read by the command in README.md\n"
                    + "".join(", ".join(repr(float(v)) for v in row) + "\n" for row in rows))
            files[_mvnormal_file(index)] = text.encode()
    return files


def cli_commands(header: Mapping[str, Any], script: str, out: str = "rerun") -> list[str] | None:
    """The shell commands that make the same design in ``out``, or None when a value has no command-line form."""
    design = header["design"]
    if design.get("kind") == "grid":
        return _grid(header, design, script, out)
    if is_dispersion(design):
        return _dispersion(header, design, script, out)
    return None


def python_design(header: Mapping[str, Any]) -> str:
    """The ``Sweep(...)`` argument that makes the same design from the sweep opened as ``old``."""
    kind = header["design"]["kind"]
    if kind == "grid":
        return "grid=old.design.grid"
    if is_dispersion(header["design"]):
        return "design=old.design"  # the design object itself: kind, perturbations, seed, n (and nominal values)
    return "samples=list(old.design)"


def _grid(header: Mapping[str, Any], design: Mapping[str, Any], script: str, out: str) -> list[str] | None:
    parts = ["gmat-sweep", "run", script]
    for path, values in design["grid"].items():
        written = [_cli_value(v) for v in values]
        if any(w is None for w in written):
            return None
        parts += ["--grid", f"{path}={','.join(written)}"]  # type: ignore[arg-type]
    return [_join(parts + _common(header, out))]


def _dispersion(header: Mapping[str, Any], design: Mapping[str, Any], script: str, out: str) -> list[str] | None:
    parts = ["gmat-sweep", COMMANDS[design["kind"]], script]
    for index, entry in enumerate(design["perturb"]):
        spec = _spec(entry, index)
        if spec is None:
            return None
        parts += ["--perturb", f"{','.join(entry['paths'])}={spec}"]
    blocks = design.get("blocks") or [design.get("base", design["n"])]
    parts += ["--n", str(blocks[0]), "--seed", str(design["seed"])]
    # An extended Latin hypercube is one hypercube per block: the first made by lhs, each further one by extend.
    return [_join(parts + _common(header, out))] + [_join(["gmat-sweep", "extend", out, "--n", str(m)])
                                                     for m in blocks[1:]]


def _spec(entry: Mapping[str, Any], index: int) -> str | None:
    """The distribution as ``--perturb`` reads it back to the same numbers (floats by repr, which round-trips)."""
    name, mode = entry["name"], entry.get("mode", "")
    if name == "mvnormal":
        return f"{mode}mvnormal({_mvnormal_file(index)})"
    if name == "scipy":
        return None
    args = entry.get("args", [])
    if name == "choice":
        if not all(isinstance(a, (int, float, str)) for a in args):
            return None
        return f"{mode}choice({','.join(repr(a) for a in args)})"
    return f"{mode}{name}({','.join(repr(float(a)) for a in args)})"


def _common(header: Mapping[str, Any], out: str) -> list[str]:
    parts: list[str] = []
    for name in header.get("collect") or []:
        parts += ["--collect", name]
    timeout = header.get("timeout")
    if timeout is False:
        parts += ["--timeout", "none"]
    elif isinstance(timeout, (int, float)):
        parts += ["--timeout", repr(timeout)]
    return parts + ["--out", out]


def _mvnormal_file(index: int) -> str:
    return f"design/mvnormal-{index + 1}.csv"


def _join(parts: list[str]) -> str:
    return " ".join(shlex.quote(p) for p in parts)


def _cli_value(value: Any) -> str | None:
    """The value as ``--grid`` writes it, or None when the command line would read back something else."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if "." in text or "e" in text or "n" in text else text + ".0"
    if isinstance(value, str) and value and not set(value) & set(",:= ") and value.lower() not in ("true", "false"):
        try:
            float(value)
        except ValueError:
            return value  # not a number, so it stays a string
    return None
