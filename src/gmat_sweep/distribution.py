"""The name this project is installed under, and the install line that messages and docs give.

The import package is ``gmat_sweep`` and the command ``gmat-sweep``, but the package registry's ``gmat-sweep`` is
another author's project, so the distribution is called ``gmat-param-sweep``: reading this project's version, or
telling a user how to install an extra, must use that name.

>>> install_hint("dask")
"pip install 'gmat-param-sweep[dask]' (from a clone of the source: pip install '.[dask]')"
"""

DISTRIBUTION = "gmat-param-sweep"


def install_hint(extra: str | None = None) -> str:
    """The pip command that installs this project (with ``extra``), from the registry or from a source clone."""
    suffix = f"[{extra}]" if extra else ""
    return f"pip install '{DISTRIBUTION}{suffix}' (from a clone of the source: pip install '.{suffix}')"
