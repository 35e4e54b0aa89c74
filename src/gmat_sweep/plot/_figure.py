"""Figure making shared by the plot families: no pyplot, so no global state and no window ever opens."""

from __future__ import annotations

import os
from typing import Any

from ..distribution import install_hint

try:
    from matplotlib.figure import Figure
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(f"gmat_sweep.plot needs matplotlib: {install_hint('plot')}") from exc

#: Colours of a run's status wherever status is drawn.
OK_COLOUR, MISSING_COLOUR, FAILED_COLOUR = "#9e9e9e", "#202020", "#d62728"
FORMATS = ("png", "svg", "pdf")


def new_figure(width: float, height: float) -> Figure:
    """A Figure that is not registered with pyplot: it is freed with its last reference, and saving it uses
    matplotlib's Agg (or the SVG/PDF) canvas whatever backend the session has."""
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def save(fig: Figure, path: str | os.PathLike[str], dpi: int = 100, **options: Any) -> str:
    """Write ``fig`` to a .png, .svg or .pdf file (chosen by the suffix). ``save(heatmap(s, ...), "dv.png")``"""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if suffix not in FORMATS:
        raise ValueError(f"{path}: write the figure to a .png, .svg or .pdf file")
    metadata = {"Software": None} if suffix == "png" else {"Creator": None} if suffix == "svg" else {}
    fig.savefig(path, format=suffix, dpi=dpi, metadata=metadata or None, **options)
    return path


def status_legend(ax: Any, failed: int, missing: int) -> None:
    handles = []
    if failed:
        handles.append(ax.scatter([], [], marker="x", color=FAILED_COLOUR, label=f"failed ({failed})"))
    if missing:
        handles.append(ax.scatter([], [], marker="o", facecolors="none", edgecolors=MISSING_COLOUR,
                                  label=f"missing ({missing})"))
    if handles:
        ax.figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="small",
                         frameon=False)
