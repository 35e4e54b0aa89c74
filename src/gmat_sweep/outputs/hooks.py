"""The per-run ``postprocess`` hook: a user's ``"package.module:function"`` called on the worker after each run.

It is called as ``function(run_dir, outcome)`` with the run's folder and its :class:`~gmat_sweep.records.RunOutcome`
(``status``, ``error``, ``outputs``, ``warnings``), and may return:

* ``None`` - nothing to add (files it wrote in ``run_dir`` are still recorded in the manifest);
* a ``dict`` whose values are scalars (``int``, ``float``, ``str``, ``bool``, ``None``: columns added to the run's
  ``summary()`` row) and/or tables (``pyarrow.Table`` or ``pandas.DataFrame``: saved as ``<key>.parquet`` and read
  back across runs like a ReportFile, with ``results(report=key)``);
* a bare table - the same as ``{"postprocess": table}``.

Anything else fails the run with a message saying what came back; an exception fails the run with its traceback.
"""

from __future__ import annotations

import importlib
import numbers
import os
import traceback
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from ..records import FAILED, RunOutcome

DEFAULT_TABLE = "postprocess"


class HookError(ValueError):
    """The postprocess hook cannot be used; the message says why and what to write instead."""


def resolve(spec: str) -> Callable[..., Any]:
    """Import ``"package.module:function"`` and check it is callable.

    >>> resolve("json:dumps")
    <function dumps at ...>
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise HookError(f"postprocess {spec!r} is not of the form 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - an import that fails in any way is the same problem for the user
        raise HookError(f"postprocess {spec!r}: module {module_name!r} does not import ({type(exc).__name__}: "
                        f"{exc}); make it importable on every worker (installed, or on PYTHONPATH)") from None
    target: Any = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise HookError(f"postprocess {spec!r}: module {module_name!r} has no {attribute!r}")
    if not callable(target):
        raise HookError(f"postprocess {spec!r}: {attribute!r} is a {type(target).__name__}, not a function")
    return target


def run(spec: str, run_dir: str, outcome: RunOutcome) -> None:
    """Call the hook on one finished run and fold what it returns into ``outcome``. Never raises."""
    try:
        returned = resolve(spec)(run_dir, outcome)
    except Exception:  # noqa: BLE001 - the hook's failure is this run's failure, with its traceback
        outcome.status = FAILED
        outcome.error = f"postprocess {spec} raised:\n{traceback.format_exc()}"
        return
    if returned is None:
        return
    if _is_table(returned):
        returned = {DEFAULT_TABLE: returned}
    if not isinstance(returned, dict) or not all(isinstance(k, str) for k in returned):
        _fail(spec, outcome, f"returned a {type(returned).__name__}")
        return
    for name, value in returned.items():
        if _is_table(value):
            if name in outcome.outputs:
                _fail(spec, outcome, f"returned a table named {name!r}, the name of one of the run's own outputs")
                return
            table = _arrow(value)
            table = table.append_column("run_id", pa.array([outcome.run_id] * table.num_rows, pa.int64()))
            from ..gmat.report import write_parquet

            target = f"{name}.parquet"
            write_parquet(table, os.path.join(run_dir, target))
            outcome.outputs[name] = target
        elif value is None or isinstance(value, (str, bool, numbers.Number)):
            outcome.extra[name] = value.item() if hasattr(value, "item") else value
        else:
            _fail(spec, outcome, f"returned {name!r}: a {type(value).__name__}")
            return


def _fail(spec: str, outcome: RunOutcome, what: str) -> None:
    outcome.status = FAILED
    outcome.error = (f"postprocess {spec} {what}; it must return None, a table (pyarrow.Table or pandas.DataFrame) "
                     "or a dict of scalars and tables")


def _is_table(value: Any) -> bool:
    if isinstance(value, pa.Table):
        return True
    import pandas as pd

    return isinstance(value, pd.DataFrame)


def _arrow(value: Any) -> pa.Table:
    if isinstance(value, pa.Table):
        return value
    return pa.Table.from_pandas(value, preserve_index=False)
