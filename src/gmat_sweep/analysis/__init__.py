"""Functions of finished (or interrupted) sweeps, read through ``Sweep``; never of the engine."""
