"""Empty SPICE's kernel pool in one call before the next mission is loaded, instead of one text kernel at a time.

``LoadScript`` destroys the previous mission's solar system, and GMAT unloads its SPICE kernels one by one
(``unload_c``). SPICE keeps the pool consistent after each unload by clearing it and loading every text kernel
still loaded again, a character at a time: tearing down a mission re-reads the planetary constants once and the
leap seconds twice, and the binary kernels are closed one by one. Everything is loaded again from its files when
the next mission's solar system is built, so nothing read in the teardown is ever used.

:func:`clear_before_load` calls CSPICE's ``kclear_c`` (unload every kernel, clear the pool) in GMAT's own library
just before ``LoadScript``: GMAT's unloads then find nothing to unload (``unload_c`` of a file not loaded does
nothing), and the next mission loads the same kernels in the same order into an empty pool, as it does anyway
(the tests compare the pools and the loaded kernels after a run, and the runs' outputs bit for bit). It is done
only when the previous run in this process left no kernel of its own loaded that GMAT would not load again:
that is GMAT's behaviour for everything its solar system and force models load.

Set ``GMAT_SWEEP_CLEAR_KERNELS=0`` to leave the teardown to GMAT.
"""

from __future__ import annotations

import ctypes
import glob
import os
from typing import Any

ENV = "GMAT_SWEEP_CLEAR_KERNELS"

_library: Any = None


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def gmat_cspice(api: Any) -> Any:
    """GMAT's own CSPICE (in ``libGmatBase``), through ctypes; ``None`` when it cannot be found."""
    global _library
    if _library is None:
        folder = os.path.dirname(getattr(api, "__file__", "") or "")
        found = sorted(glob.glob(os.path.join(folder, "libGmatBase.so*")))
        if not found:
            _library = False
        else:
            try:
                _library = ctypes.CDLL(found[0])
                _library.kclear_c.restype = None
            except (OSError, AttributeError):
                _library = False
    return _library or None


def clear_before_load(api: Any) -> None:
    """Unload every SPICE kernel and clear the pool at once, before ``LoadScript`` tears the last mission down.

    >>> clear_before_load(api)  # then api.LoadScript(path)  # doctest: +SKIP
    """
    if not enabled():
        return
    cspice = gmat_cspice(api)
    if cspice is not None:
        cspice.kclear_c()
