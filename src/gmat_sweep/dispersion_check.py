"""Before a dispersion's first run: read the nominal values from GMAT, and find draws GMAT would refuse.

Both run on a pool worker (a script that crashes GMAT takes a worker down, never the driver):

* ``read_nominals`` loads the script and reads each relatively perturbed field from the configured object, so the
  nominal is the value GMAT holds after the script's own assignments (the place an override replaces), including
  defaults the script never writes (a Spacecraft's default state).
* ``accepted`` loads the script with one value of one path at a time. ``check_draws`` tries each path's extremes;
  when GMAT refuses one, it bisects towards the accepted range to find where GMAT's limit lies and counts the
  design's draws beyond it: "37 of 1000 draws of Sat.ECC are < 0: truncate the distribution".
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from .backends.base import Pool, WorkerLost
from .designs.dispersion import PREFLIGHT_RUNS, Dispersion
from .gmat.script import ScriptError
from .records import ScriptSource

BISECTIONS = 24


class DrawError(ScriptError):
    """A dispersion cannot start: a nominal GMAT does not have, or draws GMAT refuses."""


# ------------------------------------------------------------------------------------------- on a worker


def read_nominals(source: ScriptSource, paths: Sequence[str], engine: str | None) -> dict[str, Any]:
    """``{path: float}`` for fields with a numeric value after loading ``source``; a message string otherwise."""
    import tempfile

    from .worker import load_as_written

    values: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="gmat-sweep-nominal-") as directory, \
            load_as_written(source, engine, directory) as (api, error):
        if error is not None:
            return {p: f"GMAT could not load the script: {error}" for p in paths}
        for path in paths:
            values[path] = _field(api, path)
    return values


def _field(api: Any, path: str) -> Any:
    owner, _, name = path.partition(".")
    try:
        obj = api.GetObject(owner)
        kind = obj.GetTypeName()
        if not name and kind != "Variable":
            return f"{owner} is a {kind}, not a numeric Variable"
        text = str(obj.GetField(name or "Value")).strip()
    except Exception as exc:  # noqa: BLE001 - GMAT's words say why
        if "NoneType" in str(exc):  # the API hands back an empty proxy for an unknown name
            return f"the script creates no object named {owner!r}"
        return f"GMAT has no readable field {path!r} ({str(exc).strip()})"
    if "exception" in text.lower():  # some getters hand GMAT's error back as the value
        return f"GMAT cannot read {path!r} ({text})"
    try:
        value = float(text)
    except ValueError:
        return f"its value {text!r} is not a number"
    return value if math.isfinite(value) else f"its value {text!r} is not finite"


def accepted(source: ScriptSource, path: str, values: Sequence[Any], collect: Sequence[str],
             engine: str | None) -> list[str | None]:
    """For each value, ``None`` when GMAT accepts ``path = value`` on ``source``, else GMAT's message."""
    from .worker import validate

    answers: list[str | None] = []
    for value in values:
        try:
            validate(source, {path: value}, collect, engine)
            answers.append(None)
        except ScriptError as exc:
            answers.append(str(exc))
    return answers


# ------------------------------------------------------------------------------------------- in the driver


def prepare(design: Dispersion, pool: Pool, source: ScriptSource, collect: Sequence[str],
            engine: str | None) -> None:
    """Fill in the design's nominal values and refuse draws GMAT would reject, before any run."""
    missing = [p for p in design.relative_paths if p not in design.nominal]
    if missing:
        found = _ask(pool, "reading the nominal values", read_nominals, source, missing, engine)
        bad = {p: v for p, v in found.items() if not isinstance(v, float)}
        if bad:
            path, why = next(iter(bad.items()))
            raise DrawError(f"{path} is perturbed relatively but has no numeric nominal value in the script ({why}); "
                            "give it an absolute distribution instead")
        design.nominal.update(found)
    check_draws(design, pool, source, collect, engine)


def check_draws(design: Dispersion, pool: Pool, source: ScriptSource, collect: Sequence[str],
                engine: str | None) -> None:
    """Load each numeric path's smallest, middle and largest draw in GMAT; for a refused extreme, find GMAT's
    limit and count the draws beyond it."""
    tries = {p: [v[0], (v[0] + v[-1]) / 2, v[-1]] if v[0] != v[-1] else v[:1]
             for p, v in design.distinct_values().items() if all(_numeric(x) for x in v)}
    futures = {pool.submit(accepted, source, path, values, collect, engine): path for path, values in tries.items()}
    problems = []
    for future in pool.as_completed(list(futures)):
        path = futures[future]
        try:
            answers = pool.result(future)
        except WorkerLost:  # asked again once: a crash that repeats is the script's, and _ask says so
            answers = _ask(pool, f"checking the draws of {path}", accepted, source, path, tries[path], collect, engine)
        values = tries[path]
        fine = [v for v, a in zip(values, answers) if a is None]
        if len(fine) in (0, len(values)):
            continue  # all accepted; or all refused, which the ordinary preflight reports in GMAT's words
        reference = fine[len(fine) // 2]
        for below, extreme, answer in ((True, values[0], answers[0]), (False, values[-1], answers[-1])):
            if answer is None:
                continue
            limit = _bisect(pool, source, path, collect, engine, extreme, reference)
            count, total = _count(design, path, limit, below)
            first = f"the first {total} of " if total < len(design) else ""
            entry = next(e for e in design.entries if path in e.paths)
            problems.append(f"{count} of {first}{total} draws of {path} ({entry.describe()}) are "
                            f"{'<' if below else '>'} {limit:.6g}, which GMAT refuses ({_allowed(answer)}): truncate "
                            "the distribution (e.g. truncnormal(mu, sigma, lo, hi)) or narrow it")
    if problems:
        raise DrawError("\n  ".join(problems))


def _ask(pool: Pool, doing: str, fn: Any, *args: Any) -> Any:
    """``fn(*args)`` on a worker; a worker that dies is replaced and asked once more before the sweep is refused."""
    for attempt in range(2):
        try:
            return pool.result(pool.submit(fn, *args))
        except WorkerLost as exc:
            if attempt:
                raise DrawError(f"the GMAT engine crashed twice while {doing} ({exc}); check the script in GMAT, or "
                                "run one case with gmat_sweep.run_one to see its log") from None


def _bisect(pool: Pool, source: ScriptSource, path: str, collect: Sequence[str], engine: str | None,
            refused: float, ok: float) -> float:
    """The boundary between a refused and an accepted value of ``path``: the simplest number close to it."""
    for _ in range(BISECTIONS):
        middle = _round((refused + ok) / 2, 17)
        if middle in (refused, ok):
            break
        answer = _ask(pool, f"checking the draws of {path}", accepted, source, path, [middle], collect, engine)[0]
        refused, ok = (middle, ok) if answer is not None else (refused, middle)
    # The simplest number between the last refused and the first accepted value (a limit such as 0 or 1).
    low, high = min(refused, ok), max(refused, ok)
    for candidate in [0.0, *(_round(ok, digits) for digits in range(1, 18))]:
        if (low < candidate <= high) if refused < ok else (low <= candidate < high):
            return candidate
    return ok


def _count(design: Dispersion, path: str, limit: float, below: bool) -> tuple[int, int]:
    count = total = 0
    for columns in design.iter_columns(PREFLIGHT_RUNS):
        column = np.asarray(columns[path], dtype=float)
        count += int(np.sum(column < limit if below else column > limit))
        total += len(column)
    return count, total


def _allowed(message: str) -> str:
    """GMAT's statement of the allowed values, else its message without the loader's preamble."""
    found = re.search(r"allowed values are: (\[.*?\])", message)
    if found:
        return f"GMAT allows {found.group(1)}"
    return re.split(r"Exception( Thrown)?: ", message.splitlines()[0])[-1][:200]


def _round(value: float, digits: int = 6) -> float:
    return float(f"{value:.{digits}g}")


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
