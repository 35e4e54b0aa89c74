"""Draw the figures of docs/seeing.md from two real sweeps of examples/leo_track.script.

    python docs/make_images.py [FOLDER]      # default: docs/images (the sweeps go to a temporary folder)
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

import numpy as np
import pandas as pd

import gmat_sweep
from gmat_sweep import Sweep, plot
from gmat_sweep.backends import LocalPool

HERE = pathlib.Path(__file__).resolve().parent
SCRIPT = HERE.parent / "examples" / "leo_track.script"
GRID = {"Sat.SMA": [6350.0, 6500.0, 6650.0, 6800.0, 6950.0, 7100.0], "Sat.INC": [28.5, 51.6, 97.8]}
DPI = 72  # small files: the docs show them at page width


def dispersion_rows(count: int = 60, seed: int = 1) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [{"Sat.SMA": float(a), "Sat.Cd": float(c)}
            for a, c in zip(rng.normal(6878.137, 15.0, count), rng.uniform(1.8, 2.6, count))]


def running_statistics(values: np.ndarray) -> pd.DataFrame:
    """Mean and 95th percentile of the first n runs with normal-theory 95 % bands (used when this gmat-sweep has
    no gmat_sweep.convergence)."""
    rows = []
    for n in range(5, len(values) + 1):
        head = values[:n]
        half = 1.96 * head.std(ddof=1) / np.sqrt(n)
        mean, p95 = head.mean(), np.percentile(head, 95)
        rows.append({"n": n, "mean": mean, "mean_lo": mean - half, "mean_hi": mean + half,
                     "p95": p95, "p95_lo": p95 - 1.5 * half, "p95_hi": p95 + 1.5 * half})
    return pd.DataFrame(rows).set_index("n")


def draw(folder: pathlib.Path) -> list[pathlib.Path]:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch, LocalPool() as pool:
        grid = Sweep(SCRIPT, grid=GRID, out=f"{scratch}/grid").run(pool, progress=False)
        spread = Sweep(SCRIPT, samples=dispersion_rows(), out=f"{scratch}/dispersion").run(pool, progress=False)
        altitude = "Sat.Earth.Altitude"
        if callable(getattr(gmat_sweep, "convergence", None)):
            convergence = plot.convergence(spread, altitude, stats=("mean", "p95"))
        else:
            finals = spread.results()[altitude].groupby(level="run_id").last().to_numpy()
            convergence = plot.convergence(spread, altitude, stats=("mean", "p95"),
                                           table=running_statistics(finals))
        figures = {
            "heatmap": plot.heatmap(grid, "Sat.SMA", "Sat.INC", altitude),
            "line": plot.line(grid, "Sat.SMA", altitude),
            "failures": plot.failures(grid),
            "band": plot.band(spread, altitude),
            "groundtrack": plot.groundtrack(grid),
            "scatter_matrix": plot.scatter_matrix(spread, ["Sat.SMA", "Sat.Cd", altitude]),
            "histogram": plot.histogram(spread, altitude),
            "convergence": convergence,
        }
        return [pathlib.Path(plot.save(fig, folder / f"{name}.png", dpi=DPI)) for name, fig in figures.items()]


if __name__ == "__main__":
    for path in draw(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "images"):
        print(f"{path} {path.stat().st_size // 1024} KiB")
