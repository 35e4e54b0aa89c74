"""The records that cross process and machine boundaries: what to run, and what happened.

They are plain dataclasses with ``to_dict``/``from_dict`` so that they pickle cheaply, travel through Dask,
and land in the manifest as JSON without a custom encoder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

OK = "ok"
FAILED = "failed"

#: Why a run failed (``RunOutcome.failure``): GMAT or the script refused it (a resume repeats it), its worker process
#: died under it (crash, kill, eviction: a resume may finish it), or it ran out of time (a resume, perhaps with
#: another timeout, may finish it).
ERROR, LOST, TIMEOUT = "error", "lost", "timeout"


@dataclass(frozen=True)
class ScriptSource:
    """A mission script and every file it ``#Include``s, as text, so a run never depends on where it executes.

    ``includes`` maps each include directive's resolved absolute path (as seen by the driver) to its text.
    ``directory`` is the main script's folder: runs use it as their working directory when it exists, so
    relative input paths written in the script resolve the way their author expects.
    """

    path: str
    text: str
    includes: dict[str, str] = field(default_factory=dict)
    sha256: str = ""

    @property
    def directory(self) -> str:
        import os

        return os.path.dirname(self.path)


@dataclass
class RunSpec:
    """One run of a sweep: a script, the fields to change, and where its outputs go.

    >>> RunSpec(run_id=0, script=load_script("leo.script"), overrides={"Sat.SMA": 7100.0}, out_dir="out/runs/0")
    """

    run_id: int
    script: ScriptSource
    overrides: dict[str, Any]
    out_dir: str
    collect: list[str] = field(default_factory=list)
    engine: str | None = None
    timeout: float | None = None
    postprocess: str | None = None  # "package.module:function" called on the worker after the run

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        data = dict(data)
        data["script"] = ScriptSource(**data["script"])
        return cls(**data)


@dataclass
class RunOutcome:
    """What one run produced. ``status`` is ``"ok"`` or ``"failed"``; ``error`` carries GMAT's own words.

    ``outputs`` maps each ReportFile name to its Parquet file, relative to the run directory; ``files`` lists
    every other file the run wrote there (ephemerides, solver reports, the log). ``collected`` holds the final
    value of each ``collect`` name; ``extra`` holds other per-run values for the summary row (each solver sequence's
    ``<Target>.converged`` and ``<Target>.iterations``, the postprocess hook's scalars). ``warnings`` are things
    worth knowing that did not fail the run. ``failure``
    says why a failed run failed: ``"error"``, ``"lost"`` or ``"timeout"`` (see :func:`failure_kind`).
    """

    run_id: int
    status: str
    overrides: dict[str, Any] = field(default_factory=dict)
    start: float = 0.0
    end: float = 0.0
    error: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    collected: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    log: str | None = None
    warnings: list[str] = field(default_factory=list)
    host: str = ""
    pid: int = 0
    worker: str | None = None
    fingerprint: dict[str, Any] | None = None
    # Return mode ships the run's files back to the driver instead of writing them where the driver can see.
    payload: dict[str, bytes] | None = None
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)

    def to_dict(self) -> dict[str, Any]:
        """The manifest's view of this outcome (no payload). Shallow: the driver makes one per run, and a deep
        copy of every dict and list in it would only be thrown away after the JSON is written."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "payload"}
        data["duration"] = self.duration
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunOutcome:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def failure_kind(entry: dict[str, Any]) -> str | None:
    """Why the manifest ``entry`` of a failed run failed (``ERROR``, ``LOST``, ``TIMEOUT``); ``None`` for a run
    that did not fail. Entries written before ``failure`` was recorded are told apart by their error's words."""
    if entry.get("status") != FAILED:
        return None
    if entry.get("failure") in (ERROR, LOST, TIMEOUT):
        return entry["failure"]
    error = str(entry.get("error") or "")
    if error.startswith("worker lost:"):
        return TIMEOUT if "timed out after" in error else LOST
    return ERROR
