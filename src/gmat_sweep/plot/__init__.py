"""Figures of a sweep (matplotlib, the ``[plot]`` extra). Each function takes a Sweep, an out folder or the
DataFrame ``sweep()`` returned, and returns a matplotlib ``Figure``; nothing is shown or kept by pyplot.

>>> from gmat_sweep import plot
>>> plot.save(plot.heatmap("sweeps/leo", x="Sat.SMA", y="Sat.INC", z="Sat.Earth.Altitude"), "alt.png")
"""

from ._data import PlotError
from ._figure import save
from .dispersion import convergence, histogram, scatter_matrix
from .grid import failures, heatmap, line
from .series import band, groundtrack

#: The plots by name, as ``gmat-sweep plot OUT KIND`` knows them.
KINDS = {"heatmap": heatmap, "line": line, "band": band, "scatter_matrix": scatter_matrix, "histogram": histogram,
         "convergence": convergence, "groundtrack": groundtrack, "failures": failures}

__all__ = ["KINDS", "PlotError", "band", "convergence", "failures", "groundtrack", "heatmap", "histogram", "line",
           "save", "scatter_matrix"]
