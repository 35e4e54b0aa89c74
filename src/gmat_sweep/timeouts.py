"""How long one run may take before it is stopped: a fixed limit, none, or (the default) an adaptive one.

A mission can spin forever (a perigee inside the Earth, a targeter that never converges) and hold a worker with no
output. By default a sweep stops a run that is far out of line with the others: it may take the larger of
``floor`` seconds and ``factor`` times the median duration of the sweep's finished runs, and, until ``after`` runs
have finished, ``initial`` seconds. A sweep whose runs all take twenty minutes is never stopped; a run that spins
is stopped, after ten minutes at the earliest, and recorded as failed with a message that says how to change it.

Spellings (``Sweep(timeout=...)``, ``sweep(timeout=...)``; CLI ``--timeout``): ``None`` (``adaptive``) the
adaptive default, a number of seconds a fixed limit, ``False`` (``none``) no limit at all.

>>> Sweep("leo.script", grid={"Sat.SMA": [7000, 7100]}, timeout=120)      # each run may take 2 minutes
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Union

HOW_TO_CHANGE = ("set a limit with timeout=SECONDS (CLI: --timeout SECONDS) or turn it off with timeout=False "
                 "(CLI: --timeout none)")


@dataclass(frozen=True)
class AdaptiveTimeout:
    """The default limit of one run: ``max(floor, factor x median)`` of the finished runs, ``initial`` before
    ``after`` runs have finished.

    >>> AdaptiveTimeout().limit([0.04] * 10)
    600.0
    """

    floor: float = 600.0
    factor: float = 20.0
    after: int = 5
    initial: float = 3600.0

    def __post_init__(self) -> None:
        if not (self.floor > 0 and self.factor > 0 and self.initial > 0 and self.after >= 1):
            raise ValueError(f"AdaptiveTimeout needs positive floor, factor, initial and after >= 1, got {self}")

    def limit(self, durations: Iterable[float]) -> float:
        done = [d for d in durations if d > 0]
        if len(done) < self.after:
            return float(self.initial)
        return round(max(self.floor, self.factor * statistics.median(done)), 1)  # said in messages: keep it short

    def describe(self, durations: Iterable[float]) -> str:
        done = [d for d in durations if d > 0]
        if len(done) < self.after:
            return (f"the adaptive limit of {self.initial:g} s that holds until {self.after} runs have finished")
        return (f"the adaptive limit of {self.limit(done):g} s (the larger of {self.floor:g} s and {self.factor:g} x "
                f"the median run of {statistics.median(done):.3g} s)")


Timeout = Union[float, bool, AdaptiveTimeout, None]


def normalize(value: Any) -> float | bool | AdaptiveTimeout:
    """A ``timeout=`` argument as one of: seconds (float), ``False`` (no limit), an :class:`AdaptiveTimeout`.

    Raises ValueError naming the accepted spellings."""
    if value is None:
        return AdaptiveTimeout()
    if isinstance(value, AdaptiveTimeout):
        return value
    if value is False:
        return False
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("none", "off", "false"):
            return False
        if text in ("adaptive", "auto", "default"):
            return AdaptiveTimeout()
        try:
            value = float(text)
        except ValueError:
            value = text
    if isinstance(value, dict):
        return AdaptiveTimeout(**value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    raise ValueError(f"timeout must be a positive number of seconds, None (the adaptive default) or False (no "
                     f"limit), got {value!r}")


def to_json(value: float | bool | AdaptiveTimeout) -> Any:
    """The manifest's spelling: null for the default adaptive limit (what older versions read as none), false for
    no limit, a number, or the adaptive settings when they are not the default."""
    if isinstance(value, AdaptiveTimeout):
        return None if value == AdaptiveTimeout() else asdict(value)
    return value


class RunLimits:
    """The limit each run of a sweep gets when the pool takes it, following the runs finished by then.

    The median is over the last ``KEEP`` finished runs and is recomputed as their number grows by 5 %, so a sweep of
    millions of runs spends next to nothing on it.

    >>> limits = RunLimits(AdaptiveTimeout(), [0.04] * 10); limits.limit_for(11)
    600.0
    """

    KEEP = 1001

    def __init__(self, timeout: float | bool | AdaptiveTimeout, durations: Iterable[float] = ()) -> None:
        import collections

        self.timeout = timeout
        self._recent: collections.deque[float] = collections.deque(maxlen=self.KEEP)
        self._finished = 0
        for duration in durations:
            self.finished(duration)
        self._cached: tuple[int, float, str] | None = None
        self._notes: dict[int, str] = {}

    def finished(self, duration: float) -> None:
        """An ok run took ``duration`` seconds (called on whichever thread records results)."""
        if duration > 0:
            self._recent.append(duration)
            self._finished += 1

    def limit_for(self, run_id: int) -> float | None:
        """Seconds run ``run_id`` may take (``None``: no limit)."""
        if not isinstance(self.timeout, AdaptiveTimeout):
            return self.timeout or None
        count = self._finished
        if self._cached is None or count - self._cached[0] >= max(1, self._cached[0] // 20):
            recent = list(self._recent)
            self._cached = (count, self.timeout.limit(recent), self.timeout.describe(recent))
        self._notes[run_id] = self._cached[2]
        return self._cached[1]

    def note(self, run_id: int) -> str | None:
        """The adaptive limit run ``run_id`` was given, in words, once (``None`` for a fixed limit)."""
        return self._notes.pop(run_id, None)
