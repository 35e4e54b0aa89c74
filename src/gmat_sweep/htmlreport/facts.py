"""What a card or report says about a sweep, gathered once, without HTML or matplotlib."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..records import FAILED, OK

#: Which report layout a design kind gets; a kind not listed gets the "samples" layout.
LAYOUTS = {"grid": "grid", "samples": "samples", "monte_carlo": "dispersion", "lhs": "dispersion",
           "latin_hypercube": "dispersion", "sobol": "dispersion", "saltelli": "dispersion"}


@dataclass
class Facts:
    out: str
    script: str
    sha256: str
    kind: str
    runs: int
    counts: dict[str, int]
    parameters: list[tuple[str, str]]
    slowest: pd.DataFrame
    failures: pd.DataFrame
    failed_total: int
    engine: dict[str, Any]
    versions: dict[str, Any]
    created: str
    torn_tail: bool
    collect: list[str] = field(default_factory=list)

    @property
    def layout(self) -> str:
        return LAYOUTS.get(self.kind, "samples")

    @property
    def partial(self) -> bool:
        return self.counts["missing"] > 0

    @property
    def engine_line(self) -> str:
        e = self.engine
        text = f"GMAT {e.get('gmat_version', '?')} ({e.get('engine', '?')} engine"
        text += f", gmatpy {e['gmatpy']}" if e.get("gmatpy") else ""
        return text + f", {e.get('platform', '?')}, Python {e.get('python', '?')})"


def gather(sweep: Any, slowest: int = 5, failures: int = 10) -> Facts:
    manifest = sweep.manifest
    summary = sweep.summary()
    header = manifest.header
    done = summary[summary["status"] == OK].sort_values("duration", ascending=False)
    failed = summary[summary["status"] == FAILED]
    params = sweep.design.parameters
    return Facts(
        out=sweep.out, script=header["script"]["path"], sha256=header["script"]["sha256"],
        kind=sweep.design.kind or "custom", runs=len(sweep), counts=sweep.counts(),
        parameters=[(p, value_range(summary[p])) for p in params],
        slowest=done.head(slowest)[params + ["duration", "host"]],
        failures=failed.head(failures)[params + ["error"]], failed_total=len(failed),
        engine=header.get("engine") or {}, versions=header.get("versions") or {},
        created=str(header.get("created", "")), torn_tail=manifest.torn_tail, collect=list(sweep.collect))


def value_range(values: pd.Series) -> str:
    """A parameter's values in a few words: ``6778.137 .. 6928.137 (4 values)`` or the distinct values."""
    distinct = list(dict.fromkeys(map(_plain, values)))
    numeric = [v for v in distinct if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(distinct) <= 4:
        return ", ".join(map(str, distinct))
    if len(numeric) == len(distinct):
        return f"{min(numeric):.8g} .. {max(numeric):.8g} ({len(distinct)} values)"
    return ", ".join(map(str, distinct[:3])) + f", ... ({len(distinct)} values)"


def short_error(message: Any, limit: int = 300) -> str:
    text = " ".join(str(message or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def script_name(facts: Facts) -> str:
    return os.path.basename(facts.script)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
