"""SPK ephemerides (binary SPICE kernels) -> the ephemeris table, through NAIF's toolkit (``spiceypy``).

GMAT writes Hermite segments (SPK type 13), which store the states themselves: they are read as stored, not
interpolated. Epochs are converted from TDB seconds past J2000 to UTC with the leap-second kernel GMAT ships, so
the table's times compare with a ReportFile's ``UTCGregorian``. ``spiceypy`` is an optional dependency
(the ``[spice]`` extra: ``pip install '.[spice]'`` in a clone of the source).
"""

from __future__ import annotations

import os
import threading

import numpy as np
import pyarrow as pa

from ..distribution import install_hint
from . import ephemeris

_J2000_UTC = np.datetime64("2000-01-01T12:00:00", "us")
_lock = threading.Lock()
_lsk_loaded: str | None = None


def read_spk(path: str) -> tuple[pa.Table, list[str]]:
    """Read every type 13 segment of an SPK file, in file order.

    >>> tbl, warnings = read_spk("runs/0/SPK.bsp")
    """
    try:
        import spiceypy as spice
    except ImportError:
        raise ephemeris.UnknownFormat(f"SPK ephemerides need spiceypy to be read: {install_hint('spice')}") from None
    warnings: list[str] = []
    epochs: list[np.ndarray] = []
    states: list[np.ndarray] = []
    meta: dict[str, str] = {"format": "SPK", "time_system": "UTC"}
    with _lock:
        _load_leapseconds(spice)
        handle = spice.dafopr(path)
        try:
            spice.dafbfs(handle)
            while spice.daffna():
                dc, ic = spice.dafus(spice.dafgs(), 2, 6)
                target, center, frame, kind, begin, end = (int(v) for v in ic)
                if kind != 13:
                    warnings.append(f"{path}: SPK segment of type {kind} skipped (GMAT writes type 13)")
                    continue
                data = np.asarray(spice.dafgda(handle, begin, end), dtype=np.float64)
                count = int(data[-1])
                states.append(data[: 6 * count].reshape(count, 6))
                epochs.append(data[6 * count: 7 * count])
                meta.update(object=str(target), central_body=_body(spice, center), frame=spice.frmnam(frame))
        finally:
            spice.dafcls(handle)
        et = np.concatenate(epochs) if epochs else np.zeros(0)
        utc = np.array([t - spice.deltet(t, "ET") for t in et])
    times = _J2000_UTC + np.rint(utc * 1e6).astype(np.int64).astype("timedelta64[us]")
    return ephemeris.table(times, np.concatenate(states) if states else np.zeros((0, 6)), meta), warnings


def _body(spice, code: int) -> str:  # noqa: ANN001 - the spiceypy module
    try:
        return spice.bodc2n(code).title()
    except Exception:  # noqa: BLE001 - an unnamed body keeps its NAIF code
        return str(code)


def _load_leapseconds(spice) -> None:  # noqa: ANN001 - the spiceypy module
    global _lsk_loaded
    path = leapseconds_kernel()
    if _lsk_loaded != path:
        spice.furnsh(path)
        _lsk_loaded = path


def leapseconds_kernel() -> str:
    """The leap-second kernel of the GMAT that wrote the file: a GMAT install's, else the embedded engine's."""
    roots = [os.environ.get("GMAT_ROOT", "")]
    try:
        import gmatpy

        roots.append(os.path.dirname(gmatpy.__file__))
    except ImportError:
        pass
    for root in roots:
        candidate = os.path.join(root, "data", "time", "SPICELeapSecondKernel.tls")
        if root and os.path.exists(candidate):
            return candidate
    raise ephemeris.UnknownFormat("no SPICE leap-second kernel found (GMAT's data/time/SPICELeapSecondKernel.tls)")
