"""Small real sweeps that the plot, report, archive and diff tests look at (built once per test module)."""

from __future__ import annotations

import pathlib

import numpy as np

from gmat_sweep import Sweep

# A LEO with drag whose report has latitude and longitude. A run with Sat.INC > 90 fails in the mission sequence
# (an Array index out of range), as GMAT finds only when it runs: a failure with GMAT's own message.
MISSION = """\
Create Spacecraft Sat;
GMAT Sat.DateFormat = UTCGregorian;
GMAT Sat.Epoch = '01 Jan 2026 12:00:00.000';
GMAT Sat.CoordinateSystem = EarthMJ2000Eq;
GMAT Sat.DisplayStateType = Keplerian;
GMAT Sat.SMA = 6878.137;
GMAT Sat.ECC = 0.001;
GMAT Sat.INC = 51.6;
GMAT Sat.DryMass = 100;
GMAT Sat.Cd = 2.2;
GMAT Sat.DragArea = 1.5;
Create ForceModel FM;
GMAT FM.CentralBody = Earth;
GMAT FM.PrimaryBodies = {Earth};
GMAT FM.GravityField.Earth.Degree = 4;
GMAT FM.GravityField.Earth.Order = 4;
GMAT FM.Drag.AtmosphereModel = Exponential;
Create Propagator Prop;
GMAT Prop.FM = FM;
GMAT Prop.MaxStep = 120;
Create Variable TOF Idx;
GMAT TOF = 3000;
GMAT Idx = 1;
Create Array Gains[1,3];
Create ReportFile Track;
GMAT Track.Filename = 'track.txt';
GMAT Track.Add = {Sat.UTCGregorian, Sat.ElapsedSecs, Sat.Earth.SMA, Sat.Earth.Altitude, Sat.Earth.Latitude, Sat.Earth.Longitude};
BeginMissionSequence;
If Sat.INC > 90
   Idx = 5;
EndIf;
Gains(1, Idx) = 1;
Propagate Prop(Sat) {Sat.ElapsedSecs = TOF};
"""

GRID = {"Sat.SMA": [6778.137, 6828.137, 6878.137, 6928.137], "Sat.INC": [28.5, 51.6, 97.8]}


def mission(folder: pathlib.Path) -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "leo_track.script"
    path.write_text(MISSION)
    return path


def grid_sweep(folder: pathlib.Path, pool, out_name: str = "grid") -> Sweep:
    """4 x 3 grid of SMA and inclination; the three runs at 97.8 deg fail."""
    return Sweep(mission(folder / "mission"), grid=GRID, out=folder / out_name, collect=["Sat.Earth.ECC"]).run(
        pool, progress=False)


def samples_rows(count: int = 24, seed: int = 7) -> list[dict]:
    """Random draws standing in for a Monte Carlo design: SMA and drag coefficient dispersed."""
    rng = np.random.default_rng(seed)
    return [{"Sat.SMA": float(a), "Sat.Cd": float(c)}
            for a, c in zip(rng.normal(6878.137, 20.0, count), rng.uniform(1.8, 2.6, count))]


def samples_sweep(folder: pathlib.Path, pool, count: int = 24) -> Sweep:
    return Sweep(mission(folder / "mission"), samples=samples_rows(count), out=folder / "samples").run(
        pool, progress=False)
