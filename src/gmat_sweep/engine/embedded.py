"""The embedded engine: GMAT R2026a as shipped, headless, by the ``gmatpy`` wheel from PyPI."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from ..distribution import install_hint
from .base import Engine, EngineError


class EmbeddedEngine(Engine):
    kind = "embedded"

    def __init__(self) -> None:
        self._gmat: Any = None
        self._gmatpy: Any = None

    def start(self) -> None:
        if self._gmat is not None:
            return
        try:
            import gmatpy
            from gmatpy import _runtime
        except ImportError as exc:
            raise EngineError(
                f"the embedded GMAT engine is not installed ({exc}). Install it with "
                "'pip install \"gmatpy>=0.2.1,<0.3\"' (it comes with gmat-sweep: "
                f"{install_hint()}; needs Python >= 3.12 "
                "on Linux x86_64/aarch64 or macOS), or point GMAT_ROOT at a full GMAT install."
            ) from exc
        try:
            # gmatpy initialises GMAT lazily under its own lock; doing it here makes the start cost visible once.
            with _runtime.lock:
                self._gmat = _runtime.engine()
        except Exception as exc:
            raise EngineError(
                f"the embedded GMAT engine (gmatpy {getattr(gmatpy, '__version__', '?')}) failed to start: {exc}. "
                "Reinstall it with 'pip install --force-reinstall \"gmatpy>=0.2.1,<0.3\"'; GMAT cannot run in a "
                "process created by fork after GMAT was loaded (use the spawn start method)."
            ) from exc
        self._gmatpy = gmatpy

    def _api(self) -> Any:
        self.start()
        return self._gmat

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        # Hold gmatpy's own lock so user code calling gmatpy from another thread never interleaves with a run.
        self.start()
        from gmatpy import _runtime

        _runtime.check_process()
        with _runtime.lock:
            yield self._gmat

    @property
    def location(self) -> str:
        self.start()
        return os.path.dirname(self._gmatpy.__file__)

    def fingerprint(self) -> dict[str, Any]:
        info = super().fingerprint()
        info["gmatpy"] = getattr(self._gmatpy, "__version__", "unknown")
        return info
