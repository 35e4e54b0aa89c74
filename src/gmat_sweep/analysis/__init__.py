"""Functions of finished (or interrupted) sweeps, read through ``Sweep``; never of the engine."""

from .convergence import convergence
from .sensitivity import sensitivity

__all__ = ["convergence", "sensitivity"]
