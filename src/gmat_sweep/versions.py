"""The versions of what a run's numbers depend on, in one place: this package's own, the set a manifest header
records and ``gmat-sweep doctor`` prints, and the set every Dask worker must share with the driver.

>>> package_versions()["gmat-sweep"] == __version__
True
"""

from __future__ import annotations

import functools
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

from .distribution import DISTRIBUTION

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"


#: Versions every Dask worker must share with the driver (results and pickles depend on them).
DRIVER_KEYS = ("gmat-sweep", "python", "pandas", "pyarrow", "numpy", "distributed")


def package_versions() -> dict[str, str]:
    """The versions a manifest header records (their format is what old manifests hold) and ``doctor`` prints."""
    import numpy
    import pandas
    import pyarrow

    versions = {"gmat-sweep": __version__, "python": platform.python_version(), "pandas": pandas.__version__,
                "pyarrow": pyarrow.__version__, "numpy": numpy.__version__}
    for name in ("gmatpy", "distributed"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "unknown")
    return versions


@functools.cache
def installed_versions() -> dict[str, str]:
    """The versions a Dask worker must share with the driver, read from installed metadata (nothing is imported)."""
    versions = {"gmat-sweep": __version__, "python": ".".join(platform.python_version_tuple()[:2])}
    for name in ("pandas", "pyarrow", "numpy", "distributed", "gmatpy"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def gate_versions() -> dict[str, str]:
    """What the Dask gate compares between the driver and each worker (``gmat-sweep doctor`` prints it too)."""
    return {k: v for k, v in installed_versions().items() if k in DRIVER_KEYS}
