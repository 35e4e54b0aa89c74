"""A solver's iteration report (``DifferentialCorrector.ReportFile``) -> one table row per iteration and goal.

GMAT writes one block per solver run (``*** Targeter Text File``), then per nominal pass the variables'
values and, for each goal, ``Desired``, ``Achieved`` and ``Tolerance``. GMAT goes on after ``EndTarget`` whether or
not the goals were met, so convergence is decided here from the last pass: every goal within its tolerance.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from ..gmat.script import CREATE_LINE  # the one parser of Create lines

_GOAL = re.compile(r"^\s*(\S+)\s+Desired:\s*(\S+)\s+Achieved:\s*(\S+)")
_TOLERANCE = re.compile(r"^\s*Tolerance:\s*(\S+)")
_VARIABLE = re.compile(r"^\s*(\S+)\s*=\s*(\S+)\s*$")
_TARGET = re.compile(r"""^\s*Target\s+(?:(['"])(.*?)\1\s+)?(\w+)""")
SCHEMA = pa.schema([
    pa.field("solver", pa.string()), pa.field("sequence", pa.string()), pa.field("iteration", pa.int64()),
    pa.field("variables", pa.map_(pa.string(), pa.float64())), pa.field("goal", pa.string()),
    pa.field("desired", pa.float64()), pa.field("achieved", pa.float64()), pa.field("tolerance", pa.float64()),
    pa.field("met", pa.bool_()),
])
SOLVER_TYPES = ("DifferentialCorrector", "Yukon", "FminconOptimizer", "VF13ad", "SNOPT", "IPOPT")


@dataclass
class Sequence_:
    """One solver run: its passes, and whether the last one met every goal."""

    solver: str
    label: str
    rows: list[dict] = field(default_factory=list)

    @property
    def iterations(self) -> int:
        return max((r["iteration"] for r in self.rows), default=0)

    def last_goals(self) -> list[dict]:
        return [r for r in self.rows if r["iteration"] == self.iterations and r["goal"] is not None]

    @property
    def converged(self) -> bool:
        goals = self.last_goals()
        return bool(goals) and all(r["met"] for r in goals)


def solvers(texts: Sequence[str]) -> list[str]:
    """The solver resources a script (and its includes) creates, in order."""
    names: list[str] = []
    for text in texts:
        for line in text.splitlines():
            match = CREATE_LINE.match(line)
            if match and match.group(1) in SOLVER_TYPES:
                names += [n.strip() for n in match.group(2).split(",") if n.strip()]
    return names


def target_labels(texts: Sequence[str], solver: str) -> list[str]:
    """The labels of the ``Target`` commands that use ``solver`` (the solver's name where a Target has none)."""
    labels = []
    for text in texts:
        for line in text.splitlines():
            match = _TARGET.match(line)
            if match and match.group(3) == solver:
                labels.append(match.group(2) or solver)
    return labels


def parse(path: str, solver: str, labels: Sequence[str] = ()) -> list[Sequence_]:
    """Read ``path`` into one :class:`Sequence_` per solver run, named by ``labels`` in order.

    >>> [s.converged for s in parse("runs/0/DC1.data", "DC1", ["Raise Apogee"])]
    [True]
    """
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = handle.read().splitlines()
    runs: list[Sequence_] = []
    iteration, section = 0, None
    variables: dict[str, float] = {}
    for line in lines:
        if "Targeter Text File" in line or "Optimizer Text File" in line:
            index = len(runs)
            label = labels[index] if index < len(labels) else (labels[-1] if labels else solver)
            runs.append(Sequence_(solver, label if index < len(labels) or not labels else f"{label} #{index + 1}"))
            iteration, section = 0, None
            continue
        if not runs:
            continue
        stripped = line.strip()
        if stripped.startswith("Iteration "):
            iteration = int(stripped.split()[1])
            variables, section = {}, None
        elif stripped.startswith("Variables:") and iteration:
            section = "variables"
        elif stripped.startswith("Goals and achieved values") and iteration:
            section = "goals"
        elif stripped.startswith("*****") or not stripped:
            section = None if stripped.startswith("*****") else section
        elif section == "variables" and (m := _VARIABLE.match(line)):
            variables[m.group(1)] = _float(m.group(2))
        elif section == "goals" and (m := _GOAL.match(line)):
            runs[-1].rows.append({"solver": solver, "sequence": runs[-1].label, "iteration": iteration,
                                  "variables": dict(variables), "goal": m.group(1), "desired": _float(m.group(2)),
                                  "achieved": _float(m.group(3)), "tolerance": None, "met": None})
        elif section == "goals" and (m := _TOLERANCE.match(line)) and runs[-1].rows:
            row = runs[-1].rows[-1]
            row["tolerance"] = _float(m.group(1))
            row["met"] = abs(row["achieved"] - row["desired"]) <= row["tolerance"]
    for run in runs:  # a pass that reported variables but no goals (an optimiser) still counts as an iteration
        if not run.rows and iteration:
            run.rows.append({"solver": solver, "sequence": run.label, "iteration": iteration,
                             "variables": dict(variables), "goal": None, "desired": None, "achieved": None,
                             "tolerance": None, "met": None})
    return runs


def to_table(runs: Sequence[Sequence_]) -> pa.Table:
    """All passes of all solver runs as one typed table (one row per iteration and goal)."""
    rows = [r for run in runs for r in run.rows]
    columns = {f.name: [r[f.name] if f.name != "variables" else list(r["variables"].items()) for r in rows]
               for f in SCHEMA}
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")
