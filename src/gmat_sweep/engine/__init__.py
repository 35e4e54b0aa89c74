"""The GMAT engines gmat-sweep can drive, behind one small interface.

Two kinds exist: the embedded engine shipped by the ``gmatpy`` wheel (the default), and a full GMAT install
(``GMAT_ROOT`` or ``engine="install"`` / a path), which brings the plugins the wheel lacks. Either one is started
once per process and then serves every run that process is given.

>>> engine = get_engine()            # embedded unless GMAT_ROOT is set
>>> with engine.session() as api: api.LoadScript("mission.script")
"""

from __future__ import annotations

import os

from .base import Engine, EngineError
from .embedded import EmbeddedEngine
from .install import InstallEngine

__all__ = ["Engine", "EngineError", "EmbeddedEngine", "InstallEngine", "get_engine", "resolve_engine_choice"]

_engines: dict[str, Engine] = {}


def resolve_engine_choice(choice: str | os.PathLike[str] | None = None) -> str:
    """Normalise an engine choice to ``"embedded"`` or an absolute GMAT install path.

    ``None`` means: the install named by ``GMAT_ROOT`` when that is set, else the embedded engine.
    """
    if choice is None:
        root = os.environ.get("GMAT_ROOT")
        return os.path.abspath(root) if root else "embedded"
    choice = os.fspath(choice)
    if choice == "embedded":
        return choice
    if choice == "install":
        root = os.environ.get("GMAT_ROOT")
        if not root:
            raise EngineError(
                'engine="install" needs GMAT_ROOT to name a GMAT install (the folder holding bin/ and data/), '
                'or pass that folder itself as engine="/path/to/GMAT".'
            )
        return os.path.abspath(root)
    return os.path.abspath(choice)


def get_engine(choice: str | os.PathLike[str] | None = None) -> Engine:
    """The engine for ``choice``, started once per process and reused by every later call."""
    key = resolve_engine_choice(choice)
    engine = _engines.get(key)
    if engine is None:
        if _engines:
            # GMAT keeps process-global state (its Moderator, FileManager, plugins): two engines cannot share it.
            other = next(iter(_engines))
            raise EngineError(
                f"this process already runs the GMAT engine {other!r}; a process can host one GMAT engine only. "
                "Use one engine per sweep, or run the other engine in a separate process."
            )
        engine = EmbeddedEngine() if key == "embedded" else InstallEngine(key)
        engine.start()
        _engines[key] = engine
    return engine
