"""Archive bundles: byte-for-byte deterministic, complete, checked, and read back into identical tables."""

from __future__ import annotations

import hashlib
import os
import pathlib
import shlex
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from gmat_sweep import ManifestError, Sweep
from gmat_sweep.archive import ArchiveError, archive
from gmat_sweep.backends import LocalPool
from seeing import grid_sweep


@pytest.fixture(scope="module")
def pool():
    with LocalPool(max_workers=2) as shared:
        yield shared


@pytest.fixture(scope="module")
def done(tmp_path_factory, pool):
    return grid_sweep(tmp_path_factory.mktemp("archive"), pool)


def assert_same_sweep(a: Sweep, b: Sweep) -> None:
    pd.testing.assert_frame_equal(a.results(), b.results())
    pd.testing.assert_frame_equal(a.summary(), b.summary())
    assert a.design.to_dict() == b.design.to_dict() and a.source.sha256 == b.source.sha256


def test_the_same_sweep_gives_a_byte_identical_bundle(done, tmp_path):
    first = archive(done, tmp_path / "a.zip")
    for root, _, files in os.walk(done.out):  # new modification times must change nothing
        for name in files:
            os.utime(os.path.join(root, name), (1_800_000_000, 1_800_000_000))
    second = done.archive(tmp_path / "b.zip")
    assert open(first, "rb").read() == open(second, "rb").read()
    with zipfile.ZipFile(first) as bundle:
        infos = bundle.infolist()
    assert [i.filename for i in infos][:2] == ["grid/README.md", "grid/SHA256SUMS"]
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) and i.external_attr >> 16 == 0o100644 for i in infos)


def test_a_bundle_holds_the_script_manifest_every_runs_outputs_and_their_digests(done, tmp_path):
    path = archive(done.out, tmp_path / "bundle.zip")
    with zipfile.ZipFile(path) as bundle:
        names = set(bundle.namelist())
        members = {n: bundle.read(n) for n in names}
    out = done.out
    assert members["grid/manifest.jsonl"] == open(os.path.join(out, "manifest.jsonl"), "rb").read()
    assert members["grid/script/leo_track.script"] == open(done.source.path, "rb").read()
    for run_id, entry in done.manifest.entries.items():
        for name in entry["files"] + list(entry["outputs"].values()):
            assert f"grid/runs/{run_id}/{name}" in names
    assert "grid/runs/0/gmat.log" in names and "grid/runs/0/Track.parquet" in names
    listed = dict(reversed(line.split("  ", 1)) for line in members["grid/SHA256SUMS"].decode().splitlines())
    assert set(listed) == {n[len("grid/"):] for n in names} - {"SHA256SUMS"}
    for name, digest in listed.items():
        assert hashlib.sha256(members[f"grid/{name}"]).hexdigest() == digest
    readme = members["grid/README.md"].decode()
    assert "12 runs of `leo_track.script`" in readme and "8 ok, 4 failed, 0 missing" in readme
    assert ("gmat-sweep run script/leo_track.script --grid Sat.SMA=6778.137,6828.137,6878.137,6928.137 "
            "--grid Sat.INC=28.5,51.6,97.8 --collect Sat.Earth.ECC --out rerun") in readme


def test_from_manifest_reads_a_bundle_and_an_unpacked_copy_into_identical_tables(done, tmp_path):
    path = archive(done, tmp_path / "bundle.zip")
    assert_same_sweep(Sweep.from_manifest(path), done)
    with zipfile.ZipFile(path) as bundle:
        bundle.extractall(tmp_path / "unpacked")
    copy = Sweep.from_manifest(tmp_path / "unpacked" / "grid")
    assert_same_sweep(copy, done)
    assert copy.failed()["error"].str.contains("index out-of-bounds").all()


def test_no_logs_leaves_gmat_logs_out_and_still_reads_back(done, tmp_path):
    path = archive(done, tmp_path / "bundle.zip", logs=False)
    with zipfile.ZipFile(path) as bundle:
        assert not [n for n in bundle.namelist() if n.endswith("gmat.log")]
    assert_same_sweep(Sweep.from_manifest(path), done)


def test_the_readme_command_reproduces_the_sweep(done, tmp_path):
    path = archive(done, tmp_path / "bundle.zip", logs=False)
    with zipfile.ZipFile(path) as bundle:
        bundle.extractall(tmp_path)
        readme = bundle.read("grid/README.md").decode()
    command = next(line for line in readme.splitlines() if line.startswith("gmat-sweep run"))
    exe = os.path.join(os.path.dirname(sys.executable), "gmat-sweep")
    result = subprocess.run([exe, *shlex.split(command)[1:], "--workers", "2", "--no-progress"],
                            cwd=tmp_path / "grid", capture_output=True, text=True, timeout=240)
    assert result.returncode == 1, result.stderr  # the same four runs fail again
    again = Sweep.from_manifest(tmp_path / "grid" / "rerun")
    pd.testing.assert_frame_equal(again.results(), done.results())


def test_a_damaged_bundle_is_refused_naming_the_member(done, tmp_path):
    path = archive(done, tmp_path / "bundle.zip")
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(damaged, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, data + b"x" if info.filename.endswith("runs/3/Track.parquet") else data)
    with pytest.raises(ArchiveError, match="runs/3/Track.parquet in the bundle does not match its SHA-256"):
        Sweep.from_manifest(damaged)


def test_archive_into_the_sweeps_own_folder_or_of_a_folder_that_is_no_sweep_is_refused(done, tmp_path):
    for inside in (os.path.join(done.out, "bundle.zip"), os.path.join(done.out, "runs", "b.zip")):
        with pytest.raises(ArchiveError, match="inside the sweep's own folder"):
            archive(done, inside)
        assert not os.path.exists(inside)
    with pytest.raises(ManifestError, match="does not hold a gmat-sweep sweep"):
        archive(tmp_path, tmp_path.parent / "x.zip")
    with pytest.raises(ArchiveError, match="does not exist; create the folder"):
        archive(done, tmp_path / "no" / "x.zip")
    with pytest.raises(ArchiveError, match="with a .zip suffix"):
        archive(done, tmp_path / "x.tar")


def test_a_script_with_includes_travels_with_its_includes(tmp_path, pool):
    from seeing import MISSION

    folder = tmp_path / "mission"
    (folder / "parts").mkdir(parents=True)
    head, mission_sequence = MISSION.split("BeginMissionSequence;")
    (folder / "parts" / "objects.script").write_text(head)
    script = folder / "main.script"
    script.write_text("#Include 'parts/objects.script'\nBeginMissionSequence;" + mission_sequence)
    done = Sweep(script, grid={"Sat.SMA": [6800.0, 6900.0]}, out=tmp_path / "inc").run(pool, progress=False)
    path = archive(done, tmp_path / "inc.zip")
    with zipfile.ZipFile(path) as bundle:
        assert "inc/script/includes/parts/objects.script" in bundle.namelist()
        bundle.extractall(tmp_path / "unpacked")
    script.unlink()  # only the bundle's copy is left
    for opened in (Sweep.from_manifest(path), Sweep.from_manifest(tmp_path / "unpacked" / "inc")):
        assert opened.source.includes == done.source.includes and opened.source.text == done.source.text
        assert_same_sweep(opened, done)


def _sh_block(readme: str) -> list[str]:
    lines = readme.splitlines()
    start = lines.index("```sh") + 1
    return lines[start: lines.index("```", start)]


def _reproduce(bundle_path, tmp_path, top: str) -> tuple[list[str], Sweep]:
    """Run the README's commands in the unpacked bundle, as a user would; the sweep they made."""
    with zipfile.ZipFile(bundle_path) as bundle:
        bundle.extractall(tmp_path)
        readme = bundle.read(f"{top}/README.md").decode()
    commands = _sh_block(readme)
    folder = tmp_path / top
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    for command in commands:
        result = subprocess.run(["bash", "-c", f"{command} --workers 2 --no-progress"], cwd=folder, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (command, result.stderr)
    return commands, Sweep.from_manifest(folder / "rerun")


def test_a_dispersion_is_reproduced_as_its_design_not_as_samples(tmp_path, pool):
    from scipy import stats

    import gmat_sweep as gs

    script = tmp_path / "leo_state.script"
    script.write_text((pathlib.Path(__file__).resolve().parents[1] / "examples" / "leo_state.script").read_text())
    state = ("Sat.X", "Sat.Y", "Sat.Z", "Sat.VX", "Sat.VY", "Sat.VZ")
    cov = np.diag([0.01, 0.01, 0.01, 1e-8, 1e-8, 1e-8]) * 1.1
    cov[0, 4] = cov[4, 0] = -1.3e-6
    perturb = {"TOF": "uniform(60.5, 120)", "Sat.DryMass": "*normal(1, 0.0123456789)",
               "Sat.Cd": "choice(2.0, 2.2, 2.4)", state: ("+", stats.multivariate_normal(np.zeros(6), cov))}
    gs.monte_carlo(script, perturb, 3, seed=987654321, backend=pool, out=tmp_path / "mc", collect=["Sat.Earth.SMA"],
                   progress=False)
    done = Sweep.from_manifest(tmp_path / "mc").extend(1, pool, progress=False)  # n=4 is one sweep of 4
    path = archive(done, tmp_path / "mc.zip", logs=False)
    commands, again = _reproduce(path, tmp_path / "unpacked", "mc")
    assert len(commands) == 1 and commands[0].startswith("gmat-sweep mc script/leo_state.script --perturb ")
    assert "--n 4 --seed 987654321" in commands[0]
    assert "'Sat.X,Sat.Y,Sat.Z,Sat.VX,Sat.VY,Sat.VZ=+mvnormal(design/mvnormal-4.csv)'" in commands[0]
    assert again.manifest.header["design"] == done.manifest.header["design"]
    pd.testing.assert_frame_equal(again.results(), done.results())
    # the bundle stays a function of the sweep: archiving it again gives the same bytes
    assert open(archive(done, tmp_path / "again.zip", logs=False), "rb").read() == open(path, "rb").read()


def test_an_extended_latin_hypercube_is_reproduced_block_by_block(tmp_path, pool):
    import gmat_sweep as gs
    from seeing import MISSION

    script = tmp_path / "m.script"
    script.write_text(MISSION)
    gs.latin_hypercube(script, {"Sat.SMA": "uniform(6800, 6900)"}, 2, seed=5, backend=pool, out=tmp_path / "lhs",
                       progress=False)
    done = Sweep.from_manifest(tmp_path / "lhs").extend(2, pool, progress=False)
    commands, again = _reproduce(archive(done, tmp_path / "lhs.zip"), tmp_path / "unpacked", "lhs")
    assert commands[1:] == ["gmat-sweep extend rerun --n 2"] and "--n 2 --seed 5" in commands[0]
    assert again.manifest.header["design"]["blocks"] == [2, 2]
    assert again.manifest.header["design"] == done.manifest.header["design"]
    pd.testing.assert_frame_equal(again.results(), done.results())


def test_a_distribution_without_a_command_line_form_leaves_the_python_form(tmp_path, pool):
    from scipy import stats

    import gmat_sweep as gs
    from seeing import MISSION

    script = tmp_path / "m.script"
    script.write_text(MISSION)
    df = gs.monte_carlo(script, {"Sat.SMA": stats.gamma(2.0, loc=6800, scale=10)}, 2, seed=1, backend=pool,
                        out=tmp_path / "g", progress=False)
    assert len(df) > 0
    path = archive(tmp_path / "g", tmp_path / "g.zip")
    with zipfile.ZipFile(path) as bundle:
        readme = bundle.read("g/README.md").decode()
    assert "```sh" not in readme and "design=old.design" in readme and "(n=2, seed=1)" in readme


def test_a_sample_table_is_reproduced_as_samples(tmp_path, pool):
    from seeing import MISSION

    script = tmp_path / "m.script"
    script.write_text(MISSION)
    done = Sweep(script, samples=[{"Sat.SMA": 6800.25}, {"Sat.SMA": 6850.5}], out=tmp_path / "s").run(
        pool, progress=False)
    with zipfile.ZipFile(archive(done, tmp_path / "s.zip")) as bundle:
        readme = bundle.read("s/README.md").decode()
    assert "samples=list(old.design)" in readme and "```sh" not in readme
