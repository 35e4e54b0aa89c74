"""What every engine offers: a session around one mission, a fingerprint, and GMAT's version."""

from __future__ import annotations

import contextlib
import platform
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any


class EngineError(RuntimeError):
    """The GMAT engine is missing or broken; the message says how to fix it."""


class Engine(ABC):
    """One GMAT engine in this process. ``session()`` yields GMAT's SWIG API module for one mission."""

    kind: str

    @abstractmethod
    def start(self) -> None:
        """Load and initialise GMAT (once per process); raise EngineError with a fix on failure."""

    @abstractmethod
    def _api(self) -> Any:
        """The started SWIG module."""

    @property
    @abstractmethod
    def location(self) -> str:
        """Where this engine comes from: the gmatpy package folder or the GMAT install root."""

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        # No Clear() here: LoadScript itself replaces every configured object and the mission sequence, and an
        # extra Clear() after each run costs 7-18 ms, a third of a short run. The reuse test (run A, run B, run
        # A again -> bit-identical outputs) guards this.
        yield self._api()

    def gmat_version(self) -> str:
        api = self._api()
        try:
            return str(api.GmatGlobal.Instance().GetGmatVersion())
        except Exception:  # older installs lack the call; the fingerprint still names the install
            return "unknown"

    def fingerprint(self) -> dict[str, Any]:
        """What produced a run's numbers: engine kind, GMAT version, where it came from, and the Python."""
        return {
            "engine": self.kind,
            "gmat_version": self.gmat_version(),
            "location": self.location,
            "python": platform.python_version(),
            "platform": f"{sys.platform}-{platform.machine()}",
        }
