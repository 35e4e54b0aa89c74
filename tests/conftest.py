"""Shared fixtures: small real missions, and GMAT's own samples from ../shared when present."""

from __future__ import annotations

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SAMPLES = ROOT.parent / "shared" / "gmat-samples"

LEO = """\
Create Spacecraft Sat;
GMAT Sat.DateFormat = UTCGregorian;
GMAT Sat.Epoch = '01 Jan 2026 12:00:00.000';
GMAT Sat.CoordinateSystem = EarthMJ2000Eq;
GMAT Sat.DisplayStateType = Keplerian;
GMAT Sat.SMA = 7000;
GMAT Sat.ECC = 0.001;
GMAT Sat.INC = 28.5;
GMAT Sat.Id = 'SAT-1';
Create ForceModel FM;
GMAT FM.CentralBody = Earth;
GMAT FM.PrimaryBodies = {Earth};
GMAT FM.GravityField.Earth.Degree = 4;
GMAT FM.GravityField.Earth.Order = 4;
Create Propagator Prop;
GMAT Prop.FM = FM;
GMAT Prop.MaxStep = 120;
Create ImpulsiveBurn TOI;
GMAT TOI.CoordinateSystem = Local;
GMAT TOI.Axes = VNB;
Create Variable TOF;
GMAT TOF = 1800;
Create Array Gains[1,3];
Create String Label;
GMAT Label = 'base';
Create ReportFile RF;
GMAT RF.Filename = 'leo.txt';
GMAT RF.Add = {Sat.UTCGregorian, Sat.ElapsedSecs, Sat.Earth.SMA, Sat.Earth.ECC};
BeginMissionSequence;
Maneuver TOI(Sat);
Propagate Prop(Sat) {Sat.ElapsedSecs = TOF};
"""


@pytest.fixture
def leo(tmp_path: pathlib.Path) -> pathlib.Path:
    """A 30-minute LEO mission with a burn, a Variable, an Array, a String and one ReportFile."""
    path = tmp_path / "mission" / "leo.script"
    path.parent.mkdir()
    path.write_text(LEO)
    return path


@pytest.fixture
def samples_dir() -> pathlib.Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"GMAT sample missions not found at {SAMPLES}")
    return SAMPLES


def run_in_thread(sweep, pool):
    """Run ``sweep`` on ``pool`` in a thread so a test can act mid-sweep; the thread's error lands in ``box``."""
    import threading

    box: dict = {}

    def target():
        try:
            sweep.run(pool, progress=False)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def pytest_configure(config: pytest.Config) -> None:
    # Runs must never write into the repository through a relative path.
    os.environ.setdefault("GMAT_SWEEP_TESTING", "1")
