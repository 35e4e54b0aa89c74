"""Postprocess hooks for the tests (imported by name on the workers, like a user's own module)."""

from __future__ import annotations

import os

import pandas as pd


def final_radius(run_dir, outcome):
    """A scalar from the run's own ReportFile Parquet, a table, and a file of its own."""
    frame = pd.read_parquet(os.path.join(run_dir, outcome.outputs["Burn"]))
    with open(os.path.join(run_dir, "note.txt"), "w") as handle:
        handle.write(outcome.status)
    last = frame.iloc[-1]
    return {"final_rmag": float(last["Sat.Earth.RMAG"]), "status_seen": outcome.status,
            "Steps": pd.DataFrame({"rmag": frame["Sat.Earth.RMAG"]})}


def explode(run_dir, outcome):
    raise RuntimeError("hook exploded on purpose")


def wrong_type(run_dir, outcome):
    return [1, 2, 3]


NOT_CALLABLE = 42
