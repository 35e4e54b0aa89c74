"""The comment-free kernel copies: SPICE's kernel pool is the same, and so is everything a run writes.

The kernel pools are compared by SPICE itself: a fresh interpreter loads each file with CSPICE's ``furnsh_c``
from GMAT's own library and lists every variable with its values (``gnpool``/``dtpool``/``gdpool``/``gcpool``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import pathlib
import subprocess
import sys

import pytest

from gmat_sweep import RunSpec, load_script, run_one
from gmat_sweep.engine import get_engine
from gmat_sweep.gmat import kernels
from gmat_sweep.gmat.kernel_bodies import cut_to_bodies, ids_with_barycentres
from gmat_sweep.gmat.kernels import data_only, naif_ids, slim_copy
from gmat_sweep.gmat.script import list_items

# SPICE's pool read through GMAT's own CSPICE, for a test's child program that has ``ctypes``, ``lib`` (the library)
# and ``I = ctypes.c_int``: names() lists every variable, value(name) gives [type, values] (floats as hex: exact).
POOL_READERS = r"""
def names():
    start, out = 1, []
    while True:
        n, found, buf = I(), I(), ctypes.create_string_buffer(100 * 33)
        lib.gnpool_(b"*", ctypes.byref(I(start)), ctypes.byref(I(100)), ctypes.byref(n), buf, ctypes.byref(found),
                    I(1), I(33))
        out += [buf.raw[i * 33:(i + 1) * 33].decode().strip() for i in range(n.value)]
        if not found.value or n.value < 100:
            return out
        start += n.value

def value(name):
    found, n, kind = I(), I(), ctypes.create_string_buffer(1)
    lib.dtpool_(name.encode(), ctypes.byref(found), ctypes.byref(n), kind, I(len(name)), I(1))
    got, ok = I(), I()
    if kind.raw == b"N":
        values = (ctypes.c_double * n.value)()
        lib.gdpool_c(name.encode(), I(0), I(n.value), ctypes.byref(got), values, ctypes.byref(ok))
        return ["N", [v.hex() for v in values[:got.value]]]
    size = 1000
    buf = ctypes.create_string_buffer(n.value * size)
    lib.gcpool_(name.encode(), ctypes.byref(I(1)), ctypes.byref(n), ctypes.byref(got), buf, ctypes.byref(ok),
                I(len(name)), I(size))
    return ["C", [buf.raw[i * size:(i + 1) * size].decode().rstrip() for i in range(got.value)]]

"""

# Prints {path: {variable: [type, values]}} for each kernel path given, each loaded alone into a cleared pool.
POOL = r"""
import ctypes, glob, json, os, sys
import gmatpy._native as native

lib = ctypes.CDLL(glob.glob(os.path.join(os.path.dirname(native.__file__), "libGmatBase.so*"))[0])
I = ctypes.c_int
lib.erract_c(b"SET", 0, ctypes.create_string_buffer(b"RETURN", 10))

""" + POOL_READERS + r"""
pools = {}
for path in sys.argv[1:]:
    lib.kclear_c()
    lib.furnsh_c(path.encode())
    if lib.failed_c():
        raise SystemExit(f"SPICE could not load {path}")
    pools[path] = {name: value(name) for name in names()}
print(json.dumps(pools))
"""


def spice_pools(*paths: str) -> dict[str, dict[str, list]]:
    done = subprocess.run([sys.executable, "-c", POOL, *paths], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def default_text_kernels() -> list[str]:
    """The text kernels GMAT's default solar system names: the planetary constants and every body's frames."""
    with get_engine("embedded").session() as api:
        solar_system = api.Moderator.Instance().GetDefaultSolarSystem()
        found = [solar_system.GetField("PCKFilename")]
        for name in solar_system.GetBodiesInUse():
            found += list_items(solar_system.GetBody(name).GetField("FrameSpiceKernelName"))
    return found


def default_bodies() -> frozenset[int]:
    with get_engine("embedded").session() as api:
        return naif_ids(api.Moderator.Instance().GetDefaultSolarSystem())


def test_planetary_constants_cut_to_the_solar_system_give_its_bodies_the_same_variables():
    bodies = default_bodies()
    assert {10, 399, 301, 499, 999} <= bodies, bodies
    original = default_text_kernels()[0]
    cut = slim_copy(original, bodies)
    assert cut and os.path.getsize(cut) < 0.2 * os.path.getsize(original)
    pools = spice_pools(original, cut)
    whole, kept = pools[original], pools[cut]
    readable = ids_with_barycentres(bodies)
    assert {3, 4, 5} <= readable  # Earth's, Mars's, Jupiter's barycentres: their NUT_PREC_ANGLES are read

    def body(name: str) -> int | None:
        found = re.match(r"BODY(-?\d+)_", name)
        return int(found.group(1)) if found else None

    # Every variable a body of this solar system (or its barycentre) can read is there, with the same values...
    wanted = {name: value for name, value in whole.items() if body(name) is None or body(name) in readable}
    assert len(wanted) > 60 and "BODY3_NUT_PREC_ANGLES" in wanted and "BODY301_NUT_PREC_PM" in wanted
    assert kept == wanted
    # ... and the cut is real: the moons and asteroids not in this solar system are gone.
    assert "BODY501_RADII" in whole and "BODY501_RADII" not in kept
    assert len(whole) > 3 * len(kept)


def test_cut_to_bodies_keeps_whole_assignments_and_refuses_what_it_cannot_read():
    kernel = (b"KPL/PCK\n\\begindata\n"
              b"BODY10_GM = ( 1.0 )\n"
              b"\n"
              b"BODY501_PM = ( 1.0\n   2.0\n 3.0 )\n"
              b"BODY5_NUT_PREC_ANGLES += ( 4.0\n 5.0 )\n"
              b"BODY399_RADII =\n ( 6.0 )\n"
              b"OTHER_THING = 7\n"
              b"\\begintext\n")
    assert cut_to_bodies(kernel, {10, 399}) == (b"KPL/PCK\n\\begindata\n"
                                               b"BODY10_GM = ( 1.0 )\n"
                                               b"BODY399_RADII =\n ( 6.0 )\n"
                                               b"OTHER_THING = 7\n"
                                               b"\\begintext\n")
    assert cut_to_bodies(kernel.replace(b"7", b"'seven'"), {10}) is None  # strings: not read here
    assert cut_to_bodies(kernel.replace(b"3.0 )", b"3.0"), {10}) is None  # a value that does not close
    assert ids_with_barycentres([10, 301, 2000433]) == {10, 301, 3, 2000433}


def test_gmats_default_text_kernels_give_spice_the_same_pool(tmp_path):
    originals = default_text_kernels()
    assert any(p.endswith(".tpc") for p in originals) and any(p.endswith(".tf") for p in originals), originals
    copies = [slim_copy(p) for p in originals]
    assert all(copies), copies
    for original, copy in zip(originals, copies, strict=True):
        assert os.path.getsize(copy) < 0.6 * os.path.getsize(original)  # the point: much less to read
    # A control that must differ: the planetary constants with one digit of Earth's radius changed.
    tpc = next(c for c in copies if c.endswith(".tpc"))
    changed = tmp_path / "changed.tpc"
    text = pathlib.Path(tpc).read_text()
    assert "6378.1366" in text
    changed.write_text(text.replace("6378.1366", "6378.1367", 1))
    pools = spice_pools(*originals, *copies, str(changed))
    for original, copy in zip(originals, copies, strict=True):
        assert len(pools[original]) > 20
        assert pools[copy] == pools[original], f"{copy} gives SPICE other data than {original}"
    assert pools[str(changed)] != pools[originals[copies.index(tpc)]]


def test_data_only_keeps_the_first_line_and_the_data_blocks_byte_for_byte():
    kernel = (b"KPL/PCK\n"
              b"A comment that mentions \\begindata mid-sentence.\n"
              b"   \\begindata   \n"
              b"   BODY1_X = ( 1.0  2.0 )\n"
              b"\n"
              b"   BODY1_S = 'a  b'\n"
              b"\\begintext\n"
              + b"More comment.\n" * 50 +
              b"\\begindata\n"
              b"BODY2_Y += 3\n")
    assert data_only(kernel) == (b"KPL/PCK\n"
                                 b"   \\begindata   \n"
                                 b"   BODY1_X = ( 1.0  2.0 )\n"
                                 b"\n"
                                 b"   BODY1_S = 'a  b'\n"
                                 b"\\begintext\n"
                                 b"\\begindata\n"
                                 b"BODY2_Y += 3\n")


@pytest.mark.parametrize("kernel", [
    b"DAF/SPK " + b"\0" * 2000,  # a binary kernel
    b"KPL/PCK\r\n" + b"comment\r\n" * 100 + b"\\begindata\r\nX = 1\r\n",  # SPICE refuses these; keep that so
    b"KPL/FK\n" + b"comment\n" * 100,  # no data at all
    b"KPL/FK\n\\begindata\nX = 1\nY = 2\n",  # no comments: nothing to gain
    b"\\begindata\nX = 1\n" + b"comment\n" * 100,  # no id word
])
def test_data_only_leaves_alone_what_it_cannot_shrink_safely(kernel):
    assert data_only(kernel) is None


def run_files(script, out, slim, monkeypatch, collect=()):
    monkeypatch.setenv(kernels.ENV, "1" if slim else "0")
    outcome = run_one(RunSpec(0, load_script(script), {}, str(out), list(collect)))
    assert outcome.status == "ok", outcome.error
    with get_engine().session() as api:
        pck = api.Moderator.Instance().GetSolarSystemInUse().GetField("PCKFilename")
    files = {name: hashlib.sha256((out / name).read_bytes()).hexdigest()
             for name in sorted(os.listdir(out)) if name != "gmat.log"}
    return files, outcome.collected, pck


# Runs each script once in a fresh interpreter, in the order given, and prints what each run wrote. Fresh and in
# the same order for both settings, because GMAT numbers some objects per process (a spacecraft's NAIFId, which
# the Write command prints): a second run in one process differs from the first for that reason alone.
RUNS = r"""
import hashlib, json, os, sys
from gmat_sweep import RunSpec, load_script, run_one
from gmat_sweep.engine import get_engine

results = {}
for k, script in enumerate(sys.argv[2:]):
    spacecraft = [line.split()[2].rstrip(";") for line in open(script).read().splitlines()
                  if line.startswith("Create Spacecraft")]
    collect = [f"{sc}.{p}" for sc in spacecraft for p in ("X", "Y", "Z", "VX", "VY", "VZ", "A1ModJulian")]
    out = os.path.join(sys.argv[1], str(k))
    outcome = run_one(RunSpec(0, load_script(script), {}, out, collect))
    with get_engine().session() as api:
        pck = api.Moderator.Instance().GetSolarSystemInUse().GetField("PCKFilename")
    files = {name: hashlib.sha256(open(os.path.join(out, name), "rb").read()).hexdigest()
             for name in sorted(os.listdir(out)) if name != "gmat.log"}
    results[script] = [outcome.status, outcome.error, files, outcome.collected, pck]
print(json.dumps(results))
"""


def test_runs_of_the_projects_missions_write_the_same_bytes_with_the_copies(tmp_path, leo):
    """The drag example (exponential atmosphere, 4x4 gravity) and the test suite's burn-and-propagate mission."""
    check_same_bytes(tmp_path, [str(pathlib.Path(__file__).parents[1] / "examples" / "leo_drag.script"), str(leo)])


def test_runs_of_gmats_samples_write_the_same_bytes_with_the_copies(tmp_path, samples_dir):
    check_same_bytes(tmp_path, list(map(str, sorted(samples_dir.glob("*.script")))))


def check_same_bytes(tmp_path, scripts):
    runs = {}
    # A fresh temporary folder: the copies are made now by this code, not found from an earlier run.
    (tmp_path / "tmp").mkdir()
    # "0": GMAT's own kernels; "comments": copies without comments; "1": the planetary constants also cut to the
    # solar system's bodies.
    for slim in ("0", "comments", "1"):
        done = subprocess.run([sys.executable, "-c", RUNS, str(tmp_path / slim), *scripts], capture_output=True,
                              text=True, timeout=300,
                              env={**os.environ, kernels.ENV: slim, "TMPDIR": str(tmp_path / "tmp")})
        assert done.returncode == 0, done.stderr
        runs[slim] = json.loads(done.stdout.splitlines()[-1])
    for script in scripts:
        (status, error, files, collected, pck), comments, cut = runs["0"][script], runs["comments"][script], \
            runs["1"][script]
        assert status == "ok", error
        assert len(collected) >= 7, f"{script}: nothing to compare"
        assert comments[:4] == [status, error, files, collected], script
        assert cut[:4] == [status, error, files, collected], script
        # And the copies were really what GMAT loaded:
        assert pck.endswith("SPICEPlanetaryConstantsKernel.tpc"), pck
        folder = os.path.join(tmp_path, "tmp", f"gmat-sweep-kernels-{os.getuid()}")
        assert comments[4] == os.path.join(folder, os.path.basename(slim_copy(pck))), comments[4]
        assert os.path.dirname(cut[4]) == folder, cut[4]
        assert os.path.getsize(cut[4]) < 0.2 * os.path.getsize(pck) < os.path.getsize(comments[4]), cut[4]


def test_a_kernel_the_script_chooses_is_kept_and_slimmed(tmp_path, monkeypatch, leo):
    original = default_text_kernels()[0]
    custom = tmp_path / "custom.tpc"
    custom.write_text(pathlib.Path(original).read_text().replace("6378.1366   6378.1366", "6388.1366   6388.1366"))
    script = leo.parent / "custom.script"
    script.write_text(leo.read_text().replace(
        "Create ReportFile RF;", f"GMAT SolarSystem.PCKFilename = '{custom}';\nCreate ReportFile RF;"))
    plain = run_files(script, tmp_path / "plain", False, monkeypatch, ["Sat.X"])
    slim = run_files(script, tmp_path / "slim", True, monkeypatch, ["Sat.X"])
    assert plain[2] == str(custom)
    assert slim[2] == slim_copy(str(custom), default_bodies()) != slim_copy(original, default_bodies())
    assert b"BODY399_RADII     = ( 6388.1366   6388.1366" in pathlib.Path(slim[2]).read_bytes()
    assert slim[:2] == plain[:2]


def test_a_copy_that_disappears_is_made_again(tmp_path, monkeypatch, leo):
    monkeypatch.setattr(kernels, "_copies", {})
    copy = slim_copy(default_text_kernels()[0], default_bodies())
    os.remove(copy)
    files, _, pck = run_files(leo, tmp_path / "run", True, monkeypatch)
    assert pck == copy and os.path.exists(copy)


def test_no_usable_folder_means_the_original_kernels(tmp_path, monkeypatch, leo):
    unsafe = tmp_path / "shared-tmp"
    (unsafe / f"gmat-sweep-kernels-{os.getuid()}").mkdir(parents=True)
    (unsafe / f"gmat-sweep-kernels-{os.getuid()}").chmod(0o777)  # others could plant a kernel there
    monkeypatch.setattr("tempfile.tempdir", str(unsafe))
    monkeypatch.setattr(kernels, "_copies", {})
    original = default_text_kernels()[0]
    assert slim_copy(original) is None
    files, _, pck = run_files(leo, tmp_path / "run", True, monkeypatch)
    assert pck == original and files
