"""Shared fixtures: small real missions, and GMAT's own samples from ../shared when present."""

from __future__ import annotations

import os
import pathlib
import re
import sys

import pytest

# The emulated Kubernetes cluster's fixtures (k8s_emulator, k8s_client, kube_cluster), for any test module.
pytest_plugins = ["k8s.fixtures"]

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


@pytest.fixture
def manifest_fsyncs(monkeypatch) -> dict[str, int]:
    """How many times this process (the driver) fsyncs each ``manifest.jsonl``, by path. The fsyncs still
    happen: ``os.fsync`` is wrapped, not replaced."""
    counts: dict[str, int] = {}
    real = os.fsync

    def counting(fd):
        try:
            path = os.readlink(f"/proc/self/fd/{fd if isinstance(fd, int) else fd.fileno()}")
        except OSError:
            path = ""
        if path.endswith("manifest.jsonl"):
            counts[path] = counts.get(path, 0) + 1
        return real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return counts


def result_of(done) -> dict:
    """What a test's program printed on its ``RESULT <json>`` line, once it exited 0."""
    import json

    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.split(" ", 1)[1])


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


# ------------------------------------------------------------------------------ nothing lands in the repository

#: Folders that tools (not runs) write into the repository while tests run.
_TOOL_FOLDERS = {".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", "build", ".mypy_cache",
                 ".ruff_cache"}


def _repository_files() -> set[str]:
    found: set[str] = set()
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in _TOOL_FOLDERS and not d.endswith(".egg-info")]
        found.update(os.path.relpath(os.path.join(folder, f), ROOT) for f in files)
    return found


@pytest.fixture(autouse=True)
def _nothing_written_into_the_repository():
    """Runs must never write into the repository (a relative output path resolved against the wrong folder, a
    default out= beside the script): every test fails if a file appeared in the repository tree while it ran."""
    before = _repository_files()
    yield
    appeared = sorted(_repository_files() - before)
    assert not appeared, f"the test wrote into the repository: {appeared[:10]}"


# ------------------------------------------------------------------------------ skips CI does not expect

#: One regular expression a line: the skip reasons CI accepts (see the file for why each is expected).
EXPECTED_SKIPS = pathlib.Path(__file__).with_name("expected_skips.txt")
#: Set (as .ci/run does) to fail the session when a test skipped for a reason not declared in EXPECTED_SKIPS.
CHECK_SKIPS = "GMAT_SWEEP_CHECK_SKIPS"
_skips: list[tuple[str, str]] = []


def expected_skip_patterns() -> list[re.Pattern[str]]:
    lines = EXPECTED_SKIPS.read_text().splitlines() if EXPECTED_SKIPS.exists() else []
    return [re.compile(line.strip()) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def unexpected_skips(skips: list[tuple[str, str]]) -> list[tuple[str, str]]:
    patterns = expected_skip_patterns()
    return [(test, reason) for test, reason in skips if not any(p.search(reason) for p in patterns)]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = report.longrepr[2]
        _skips.append((report.nodeid, reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason))


def pytest_collectreport(report: pytest.CollectReport) -> None:
    # A module-level importorskip skips the whole file at collection.
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = report.longrepr[2]
        _skips.append((report.nodeid, reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Under pytest-xdist the controller gets every worker's reports (above) and decides; a worker does not.
    if not os.environ.get(CHECK_SKIPS) or hasattr(session.config, "workerinput"):
        return
    wrong = unexpected_skips(_skips)
    if wrong:
        lines = "\n".join(f"  {test}: {reason}" for test, reason in wrong)
        print(f"\n{len(wrong)} test(s) skipped for a reason not declared in {EXPECTED_SKIPS.name} "
              f"({CHECK_SKIPS} is set):\n{lines}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
