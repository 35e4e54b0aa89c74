"""GMAT's own sample missions through run_one, checked against a direct run of the same change on the engine.

Each sample gets one override and one collect chosen for that mission. The reference value comes from a
separate process that drives GMAT's API by hand, the way a GMAT user would: ``LoadScript``, ``SetField`` on
the configured object, ``RunScript``, then read the runtime object with ``GetRealParameter`` (full double
precision; ``GetField`` would round to 16 digits). The collect report is written with 17 significant digits,
which round-trips a double, so the two must agree exactly.

The overrides avoid Keplerian elements on a spacecraft whose script sets its state in Keplerian terms: setting
``Sat.SMA`` by a script line (as run_one does) and by ``SetField`` after loading (as the direct run does) convert
Keplerian to Cartesian at different moments and give initial states that differ in the last bit. On
Tut_SimulatingAnOrbit's eccentric orbit that grows to a 3e-12 relative difference after 1.3 days: a property of
the two ways of setting the field, not of gmat-sweep. ``DefaultSC.SMA`` and ``theSat.SMA`` (Cartesian-state
spacecraft) happen to round identically and are used below.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from dataclasses import asdict, dataclass

import pytest

from gmat_sweep import RunSpec, load_script, run_one

SAMPLES = pathlib.Path(__file__).parents[1].parent / "shared" / "gmat-samples"


@dataclass(frozen=True)
class Case:
    owner: str  # the configured object the override changes
    field: str
    value: float
    collect: str  # what run_one reports at the end of the mission
    read: tuple[str, str]  # (object, parameter) read from the runtime object; ("elapsed_days", sat) is special


CASES = {
    # A 3-day propagation with a finite burn: more thrust, a different final orbit.
    "Ex_FiniteBurn": Case("engine1", "C1", 80.0, "Sc.Earth.SMA", ("Sc", "SMA")),
    # A differential corrector solves the transfer burn; a lower starting orbit needs a bigger one.
    "Ex_HohmannTransfer": Case("DefaultSC", "SMA", 7000.0, "TOI.Element1", ("TOI", "Element1")),
    "Ex_R2016a_STKEphemOutput": Case("theSat", "SMA", 7100.0, "theSat.Earth.SMA", ("theSat", "SMA")),
    # No propagation at all: the mission only writes; the dry mass goes straight through to the total mass.
    "Ex_R2016a_WriteCommand": Case("mySat", "DryMass", 1234.5, "mySat.TotalMass", ("mySat", "TotalMass")),
    # The targeter solves for a Variable; a weaker engine needs a longer burn.
    "Ex_TargetFiniteBurn_CenterPeriapsisDuration": Case("engine1", "C1", 450.0, "halfBurnDuration",
                                                        ("halfBurnDuration", "Value")),
    # Drag and solar pressure depend on the mass, so the time to periapsis does too.
    "Tut_SimulatingAnOrbit": Case("Sat", "DryMass", 1000.0, "Sat.ElapsedDays", ("elapsed_days", "Sat")),
    "Tut_Target_Finite_Burn_to_Raise_Apogee": Case("ChemicalThruster1", "C1", 1200.0, "BurnDuration",
                                                   ("BurnDuration", "Value")),
}

# Runs in a fresh interpreter: no gmat-sweep, only gmatpy's native session. Prints, per script, the value
# with the change and without it (the second shows that each chosen override matters to its collect).
DIRECT = r"""
import json, sys
import gmatpy

def run(path, case, change):
    with gmatpy.native_session() as api:
        if not api.LoadScript(path):
            raise SystemExit(f"LoadScript failed: {path}")
        if change:
            api.GetObject(case["owner"]).SetField(case["field"], case["value"])
        obj, name = case["read"]
        start = api.GetObject(name).GetRealParameter("A1Epoch") if obj == "elapsed_days" else None
        if not api.RunScript():
            raise SystemExit(f"RunScript failed: {path}")
        if obj == "elapsed_days":  # ElapsedDays is the A1 epoch now minus the epoch the mission started at
            return api.GetRuntimeObject(name).GetRealParameter("A1Epoch") - start
        return api.GetRuntimeObject(obj).GetRealParameter(name)

cases = json.loads(sys.stdin.read())
print(json.dumps({path: [run(path, case, True), run(path, case, False)] for path, case in cases.items()}))
"""


@pytest.fixture(scope="module")
def direct() -> dict[str, list[float]]:
    """Reference values from a direct engine run, one subprocess for every sample present."""
    if not SAMPLES.is_dir():
        pytest.skip(f"GMAT sample missions not found at {SAMPLES}")
    cases = {str(SAMPLES / f"{name}.script"): asdict(case) for name, case in CASES.items()
             if (SAMPLES / f"{name}.script").exists()}
    done = subprocess.run([sys.executable, "-c", DIRECT], input=json.dumps(cases), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_every_sample_has_a_case(samples_dir):
    assert sorted(p.stem for p in samples_dir.glob("*.script")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_sample_matches_a_direct_engine_run(name, samples_dir, direct, tmp_path):
    path = samples_dir / f"{name}.script"
    if not path.exists():
        pytest.skip(f"{path} not present")
    case = CASES[name]
    outcome = run_one(RunSpec(0, load_script(path), {f"{case.owner}.{case.field}": case.value}, str(tmp_path / "run"),
                              [case.collect], engine="embedded"))
    assert outcome.status == "ok", outcome.error
    changed, unchanged = direct[str(path)]
    assert changed != unchanged, "the override should change the collected value"
    assert outcome.collected == {case.collect: changed}  # exact: 17 significant digits round-trip a double
