"""gmat-sweep: parallel parameter sweeps over GMAT mission scripts, into one tidy pandas table.

>>> from gmat_sweep import sweep
>>> df = sweep("mission.script", grid={"Sat.SMA": [7000.0, 7100.0]}, out="sweeps/sma")
"""

from .versions import __version__

from .gmat.script import ScriptError, load_script
from .records import RunOutcome, RunSpec, ScriptSource
from .worker import run_one, validate
from .sweep import Sweep, SweepError
from .manifest import ManifestError
from .design import DesignError
from .api import sweep
from .analysis.diff import diff
from .api_designs import convergence, latin_hypercube, monte_carlo, saltelli, sensitivity, sobol

__all__ = ["DesignError", "ManifestError", "RunOutcome", "RunSpec", "ScriptError", "ScriptSource", "Sweep",
           "SweepError", "__version__", "convergence", "diff", "latin_hypercube", "load_script", "monte_carlo",
           "run_one", "saltelli", "sensitivity", "sobol", "sweep", "validate"]
