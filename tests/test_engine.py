"""The GMAT engines on the real engine: what the fingerprint records, one engine per process, and GMAT installs.

There is no full GMAT install on the test machines, so ``gmat_install`` builds one with the same layout: a
``bin/gmatpy/__init__.py`` made like GMAT's own (star-import the SWIG module, then tell GMAT's FileManager where
``bin/`` is) whose SWIG module is the gmatpy wheel's real build of GMAT, and a ``bin/api_startup_file.txt`` in
GMAT's startup-file format whose data paths point at the wheel's data. Everything that depends on which engine a
process hosts runs in a fresh interpreter, because a process hosts one GMAT engine for its whole life.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import pathlib
import platform
import subprocess
import sys
import textwrap
from typing import Any

import gmatpy
import pytest

from gmat_sweep import RunSpec, load_script, run_one
from gmat_sweep.engine import EngineError, InstallEngine, get_engine, resolve_engine_choice

from conftest import LEO  # tests/ is on sys.path (pytest's rootdir-relative import of test modules)

WHEEL_DATA = pathlib.Path(gmatpy.__file__).parent / "data"

INIT = '''\
"""Stand-in for a GMAT install's bin/gmatpy, laid out like GMAT's own: the SWIG module is the wheel's."""
import os

filePath = os.path.dirname(os.path.abspath(__file__))
binPath = os.path.split(filePath)[0]

from gmatpy._native import gmat_py
from gmatpy._native.gmat_py import *

fileManager = gmat_py.FileManager.Instance()
fileManager.SetBinDirectory("gmatpy/__init__.py", binPath + os.sep)
'''

# The paths gmatpy/_runtime.py writes into the wheel's own startup file, in the form of a GMAT install's
# api_startup_file.txt (built on ROOT_PATH / DATA_PATH / OUTPUT_PATH). GMAT checks paths it never reads headless,
# so those point at the install's output folder, as the wheel points them at its temp folder.
DATA_DIRS = {"TIME_PATH": "time", "PLANETARY_COEFF_PATH": "planetary_coeff",
             "PLANETARY_EPHEM_DE_PATH": "planetary_ephem/de", "PLANETARY_EPHEM_SPK_PATH": "planetary_ephem/spk",
             "EARTH_POT_PATH": "gravity/earth", "ATMOSPHERE_PATH": "atmosphere/earth"}
UNUSED_DIRS = ("VEHICLE_EPHEM_PATH VEHICLE_EPHEM_SPK_PATH VEHICLE_EPHEM_CCSDS_PATH LUNA_POT_PATH VENUS_POT_PATH "
               "MARS_POT_PATH OTHER_POT_PATH TEXTURE_PATH BODY_3D_MODEL_PATH MEASUREMENT_PATH GUI_CONFIG_PATH "
               "SPLASH_PATH ICON_PATH STAR_PATH VEHICLE_MODEL_PATH SPAD_PATH IONOSPHERE_PATH MARS_ATMOSPHERE_PATH "
               "FILE_UPDATE_PATH HELP_PATH").split()
FILES = {
    "DE405_FILE": "PLANETARY_EPHEM_DE_PATH/gmatpy_de405_1941_2201.405",
    "PLANETARY_SPK_FILE": "PLANETARY_EPHEM_SPK_PATH/gmatpy_de405_all_planets.bsp",
    "EOP_FILE": "PLANETARY_COEFF_PATH/eopc04_08.62-now",
    "NUTATION_COEFF_FILE": "PLANETARY_COEFF_PATH/NUTATION.DAT",
    "PLANETARY_PCK_FILE": "PLANETARY_COEFF_PATH/SPICEPlanetaryConstantsKernel.tpc",
    "EARTH_LATEST_PCK_FILE": "PLANETARY_COEFF_PATH/earth_latest_high_prec.bpc",
    "EARTH_PCK_PREDICTED_FILE": "PLANETARY_COEFF_PATH/SPICEEarthPredictedKernel.bpc",
    "EARTH_PCK_CURRENT_FILE": "PLANETARY_COEFF_PATH/SPICEEarthCurrentKernel.bpc",
    "LUNA_PCK_CURRENT_FILE": "PLANETARY_COEFF_PATH/SPICELunaCurrentKernel.bpc",
    "LUNA_FRAME_KERNEL_FILE": "PLANETARY_COEFF_PATH/SPICELunaFrameKernel.tf",
    "LEAP_SECS_FILE": "TIME_PATH/tai-utc.dat",
    "LSK_FILE": "TIME_PATH/SPICELeapSecondKernel.tls",
    "EGM96_FILE": "EARTH_POT_PATH/EGM96.cof",
    "JGM2_FILE": "EARTH_POT_PATH/JGM2.cof",
    "JGM3_FILE": "EARTH_POT_PATH/JGM3.cof",
    "EARTH_EXPONENTIAL_FILE": "ATMOSPHERE_PATH/EarthExponentialAtmosphereData.txt",
    "ICRF_FILE": "DATA_PATH/icrf/ICRF_Table.txt",
    "CSSI_FLUX_FILE": "OUTPUT_PATH/unbundled-space-weather.txt",
    "SCHATTEN_FILE": "OUTPUT_PATH/unbundled-schatten.txt",
}


def startup_file(root: pathlib.Path, data: pathlib.Path = WHEEL_DATA) -> str:
    lines = ["# GMAT API startup file", f"ROOT_PATH = {root.as_posix()}/", "MATLAB_MODE = NO_MATLAB",
             "RUN_MODE = TESTING_NO_PLOTS", "WRITE_PERSONALIZATION_FILE = OFF", "OUTPUT_PATH = ROOT_PATH/output/",
             "LOG_FILE = OUTPUT_PATH/GmatLog.txt", f"DATA_PATH = {data.as_posix()}/"]
    lines += [f"{key} = DATA_PATH/{folder}/" for key, folder in DATA_DIRS.items()]
    lines += [f"{key} = OUTPUT_PATH/" for key in UNUSED_DIRS]
    lines += [f"{key} = {path}" for key, path in FILES.items()]
    return "\n".join(lines) + "\n"


def make_install(root: pathlib.Path, *, package: str | None = INIT, startup: bool = True,
                 data: pathlib.Path = WHEEL_DATA) -> pathlib.Path:
    (root / "bin").mkdir(parents=True)
    (root / "output").mkdir()
    if package is not None:
        (root / "bin" / "gmatpy").mkdir()
        (root / "bin" / "gmatpy" / "__init__.py").write_text(package)
    if startup:
        (root / "bin" / "api_startup_file.txt").write_text(startup_file(root, data))
    return root


@pytest.fixture
def gmat_install(tmp_path: pathlib.Path) -> pathlib.Path:
    return make_install(tmp_path / "GMAT")


def in_fresh_process(code: str, stdin: Any = None, env: dict[str, str] | None = None) -> Any:
    """Run ``code`` in a new interpreter (GMAT_ROOT unset unless ``env`` sets it); return its last printed JSON."""
    environment = {k: v for k, v in os.environ.items() if k != "GMAT_ROOT"}
    environment.update(env or {})
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], input=json.dumps(stdin), env=environment,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.splitlines()[-1])


def leo_spec(path: pathlib.Path, out: pathlib.Path, engine: str | None = None) -> RunSpec:
    return RunSpec(0, load_script(path), {"Sat.SMA": 7100.0, "TOI.Element1": 0.05, "TOF": 900}, str(out),
                   ["Sat.Earth.SMA", "Sat.ElapsedSecs"], engine=engine)


# ------------------------------------------------------------------------------------------ embedded engine


def test_embedded_fingerprint_names_what_ran(monkeypatch, leo, tmp_path):
    monkeypatch.delenv("GMAT_ROOT", raising=False)
    engine = get_engine()
    assert engine.fingerprint() == {
        "engine": "embedded",
        "gmat_version": "R2026a",
        "gmatpy": importlib.metadata.version("gmatpy"),
        "location": os.path.dirname(gmatpy.__file__),
        "python": platform.python_version(),
        "platform": f"{sys.platform}-{platform.machine()}",
    }
    outcome = run_one(leo_spec(leo, tmp_path / "o"))
    assert outcome.ok, outcome.error
    assert outcome.fingerprint == engine.fingerprint()


ONE_PROCESS = """
    import json, sys
    from gmatpy._native import gmat_py

    setup_calls = []
    _setup = gmat_py.Setup

    def counting_setup(*args):  # a pass-through: GMAT really starts, and every start is counted
        setup_calls.append(args)
        return _setup(*args)

    gmat_py.Setup = counting_setup
    from gmatpy import _runtime
    from gmat_sweep import RunSpec, load_script, run_one, validate
    from gmat_sweep.engine import EngineError, get_engine

    args = json.loads(sys.stdin.read())
    script = load_script(args["script"])
    first = get_engine()
    runs = [run_one(RunSpec(i, script, {"TOF": 60 * (i + 1)}, f"{args['out']}/{i}", ["Sat.ElapsedSecs"]))
            for i in range(2)]
    validate(args["script"], {"TOF": 60})
    later = [get_engine(), get_engine("embedded")]
    try:
        get_engine(args["install"])
        refusal = None
    except EngineError as exc:
        refusal = str(exc)
    refused_run = run_one(RunSpec(9, script, {}, f"{args['out']}/9", engine=args["install"]))
    print(json.dumps({
        "setup_calls": len(setup_calls),
        "same_engine": all(engine is first for engine in later),
        "runtime_engine_is_ours": _runtime._engine is first._api(),
        "runs": [(r.status, r.error, r.collected) for r in runs],
        "refusal": refusal,
        "refused_run": [refused_run.status, refused_run.error],
    }))
"""


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> dict[str, Any]:
    """One fresh process: start the embedded engine, run twice, validate, then ask for a GMAT install."""
    base = tmp_path_factory.mktemp("one-process")
    (base / "leo.script").write_text(LEO)
    install = make_install(base / "GMAT")  # a working install: the refusal cannot be a layout error
    return in_fresh_process(ONE_PROCESS, {"script": str(base / "leo.script"), "out": str(base / "runs"),
                                          "install": str(install)})


def test_engine_starts_once_per_process(one_process):
    assert one_process["setup_calls"] == 1  # two runs and a validate later, GMAT was set up once
    assert one_process["same_engine"] and one_process["runtime_engine_is_ours"]
    (status1, error1, collected1), (status2, error2, collected2) = one_process["runs"]
    assert (status1, error1, status2, error2) == ("ok", None, "ok", None)
    # Each run got its own TOF: nothing of the first run's setup stuck (stopping conditions land within 1e-6 s).
    assert collected1["Sat.ElapsedSecs"] == pytest.approx(60.0, abs=1e-6)
    assert collected2["Sat.ElapsedSecs"] == pytest.approx(120.0, abs=1e-6)


def test_a_process_refuses_a_second_engine_kind(one_process):
    refusal = one_process["refusal"]
    assert refusal is not None and "already runs the GMAT engine 'embedded'" in refusal
    assert "one GMAT engine only" in refusal and "separate process" in refusal
    assert one_process["refused_run"] == ["failed", refusal]


# ------------------------------------------------------------------------------------ misconfigured installs


LAYOUTS = {
    "missing": (lambda root: root, "does not exist. Set GMAT_ROOT (or engine=) to the top folder of a GMAT install"),
    "no-gmatpy": (lambda root: make_install(root, package=None),
                  "bin/gmatpy/__init__.py is missing. Point GMAT_ROOT at the top folder of a GMAT R2020a or newer"),
    "no-startup-file": (lambda root: make_install(root, startup=False),
                        "api_startup_file.txt is missing. Create it by running 'python BuildApiStartupFile.py' in"),
    "wrong-python": (lambda root: make_install(root, package="raise ImportError('built for Python 3.9')\n"),
                     "could not import GMAT's Python API from"),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_broken_install_gives_one_clear_error(layout, tmp_path):
    build, fix = LAYOUTS[layout]
    root = build(tmp_path / "GMAT")
    with pytest.raises(EngineError) as info:
        InstallEngine(str(root)).start()  # fails on the layout, before GMAT's process-global state is touched
    assert fix in str(info.value) and str(root) in str(info.value)


def test_engine_install_without_gmat_root(monkeypatch):
    monkeypatch.delenv("GMAT_ROOT", raising=False)
    with pytest.raises(EngineError, match='engine="install" needs GMAT_ROOT to name a GMAT install'):
        resolve_engine_choice("install")


MISCONFIGURED = """
    import json, os, sys
    from gmat_sweep import RunSpec, ScriptError, load_script, run_one, validate

    args = json.loads(sys.stdin.read())
    script = load_script(args["script"])
    results = {}
    for name, root in args["roots"].items():
        # GMAT_ROOT is how a user points at an install; "install" without it is its own mistake.
        os.environ.pop("GMAT_ROOT", None)
        if root is not None:
            os.environ["GMAT_ROOT"] = root
        engine = "install" if root is None else None
        outcome = run_one(RunSpec(0, script, {}, os.path.join(args["out"], name), engine=engine))
        try:
            validate(script, {}, engine=engine)
            refused = None
        except ScriptError as exc:
            refused = str(exc)
        results[name] = [outcome.status, outcome.error, outcome.fingerprint, refused]
    os.environ.pop("GMAT_ROOT", None)
    after = run_one(RunSpec(1, script, {"TOF": 60}, os.path.join(args["out"], "after")))
    results["embedded-after"] = [after.status, after.error, (after.fingerprint or {}).get("engine")]
    print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def misconfigured(tmp_path_factory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("misconfigured")
    (base / "leo.script").write_text(LEO)
    roots: dict[str, str | None] = {name: str(build(base / name / "GMAT")) for name, (build, _) in LAYOUTS.items()}
    roots["install-without-gmat-root"] = None
    return in_fresh_process(MISCONFIGURED, {"script": str(base / "leo.script"), "out": str(base / "runs"),
                                            "roots": roots})


@pytest.mark.parametrize("layout", [*sorted(LAYOUTS), "install-without-gmat-root"])
def test_a_broken_install_is_a_failed_run(layout, misconfigured):
    status, error, fingerprint, refused = misconfigured[layout]
    fix = LAYOUTS[layout][1] if layout in LAYOUTS else 'engine="install" needs GMAT_ROOT'
    assert status == "failed" and fix in error and "Traceback" not in error
    assert fingerprint is None  # no engine ran
    assert refused == error  # validate refuses with the same message


def test_broken_installs_leave_the_process_usable(misconfigured):
    assert misconfigured["embedded-after"] == ["ok", None, "embedded"]


def test_a_startup_file_with_wrong_paths_fails_cleanly(tmp_path, leo):
    # GMAT's Setup accepts such a file without raising and then crashes on the first mission: the engine must
    # notice at start and say so, and the run must fail rather than take the process down.
    root = make_install(tmp_path / "GMAT", data=tmp_path / "no-such-data")
    code = """
        import json, sys
        from gmat_sweep import RunSpec, load_script, run_one
        args = json.loads(sys.stdin.read())
        outcome = run_one(RunSpec(0, load_script(args["script"]), {}, args["out"]))
        print(json.dumps([outcome.status, outcome.error]))
    """
    status, error = in_fresh_process(code, {"script": str(leo), "out": str(tmp_path / "o")},
                                     env={"GMAT_ROOT": str(root)})
    assert status == "failed"
    assert f"GMAT did not start from {root / 'bin' / 'api_startup_file.txt'}" in error
    assert "BuildApiStartupFile.py" in error


# ------------------------------------------------------------------------------------------- a GMAT install


INSTALL_RUN = """
    import json, os, sys
    from gmat_sweep import RunSpec, run_one
    from gmat_sweep.engine import EngineError, get_engine

    args = json.loads(sys.stdin.read())
    outcome = run_one(RunSpec.from_dict(args["spec"]))
    try:
        get_engine("embedded")
        refusal = None
    except EngineError as exc:
        refusal = str(exc)
    import gmatpy
    print(json.dumps({"outcome": outcome.to_dict(), "refusal": refusal, "gmatpy": gmatpy.__file__}))
"""


def test_gmat_install_runs_a_mission_like_the_embedded_engine(gmat_install, leo, tmp_path):
    out = tmp_path / "install-run"
    spec = leo_spec(leo, out).to_dict()  # engine=None: GMAT_ROOT chooses the install
    result = in_fresh_process(INSTALL_RUN, {"spec": spec}, env={"GMAT_ROOT": str(gmat_install)})
    outcome = result["outcome"]
    assert outcome["status"] == "ok", outcome["error"]
    assert outcome["fingerprint"]["engine"] == "install"
    assert outcome["fingerprint"]["location"] == str(gmat_install)
    assert outcome["fingerprint"]["gmat_version"] == "R2026a"
    # The install is loaded under a private name: `import gmatpy` in that process is still the wheel.
    assert result["gmatpy"] == gmatpy.__file__
    assert "already runs the GMAT engine" in result["refusal"] and str(gmat_install) in result["refusal"]

    embedded = run_one(leo_spec(leo, tmp_path / "embedded-run", engine="embedded"))
    assert embedded.ok, embedded.error
    assert outcome["outputs"] == embedded.outputs == {"RF": "RF.parquet"}
    assert (out / "RF.parquet").read_bytes() == (tmp_path / "embedded-run" / "RF.parquet").read_bytes()
    assert outcome["collected"] == embedded.collected
