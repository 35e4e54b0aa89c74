"""The manifest: durable appends, a torn last line ignored and cut, corruption mid-file named."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from gmat_sweep.manifest import KIND, ManifestError, ManifestWriter, read_manifest

HEADER = {"kind": KIND, "schema": 1, "design": {"kind": "grid", "grid": {"A": [1]}}}


def write(path, entries):
    with ManifestWriter(str(path), HEADER) as writer:
        for entry in entries:
            writer.append(entry)


def test_roundtrip_and_last_line_wins(tmp_path):
    path = tmp_path / "manifest.jsonl"
    write(path, [{"run_id": 0, "status": "failed"}, {"run_id": 1, "status": "ok"}, {"run_id": 0, "status": "ok"}])
    manifest = read_manifest(tmp_path)  # the folder works as well as the file
    assert manifest.header["kind"] == KIND
    assert manifest.entries == {0: {"run_id": 0, "status": "ok"}, 1: {"run_id": 1, "status": "ok"}}
    assert not manifest.torn_tail


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=1, max_value=60))
def test_any_torn_tail_is_ignored_and_cut_before_appending(tmp_path_factory, cut):
    path = tmp_path_factory.mktemp("m") / "manifest.jsonl"
    write(path, [{"run_id": i, "status": "ok", "pad": "x" * 20} for i in range(3)])
    data = path.read_bytes()
    path.write_bytes(data[:-cut])  # kill -9 in the middle of the last write
    manifest = read_manifest(path)
    whole_lines = data[:-cut].count(b"\n")
    assert set(manifest.entries) == set(range(whole_lines - 1))
    with ManifestWriter(str(path)) as writer:
        writer.append({"run_id": 9, "status": "ok"})
    again = read_manifest(path)
    assert 9 in again.entries and not again.torn_tail


def test_corrupt_line_in_the_middle_is_named(tmp_path):
    path = tmp_path / "manifest.jsonl"
    write(path, [{"run_id": i, "status": "ok"} for i in range(4)])
    lines = path.read_text().splitlines()
    lines[2] = '{"run_id": 1, "sta'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ManifestError, match="line 3 is corrupt"):
        read_manifest(path)


def test_missing_empty_and_foreign_manifests(tmp_path):
    with pytest.raises(ManifestError, match="no sweep manifest"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.jsonl").write_text("")
    with pytest.raises(ManifestError, match="killed before it started"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.jsonl").write_text(json.dumps({"hello": 1}) + "\n")
    with pytest.raises(ManifestError, match="not a gmat-sweep manifest"):
        read_manifest(tmp_path)


def test_writer_refuses_to_overwrite_an_existing_manifest(tmp_path):
    path = tmp_path / "manifest.jsonl"
    write(path, [])
    with pytest.raises(FileExistsError):
        ManifestWriter(str(path), HEADER)


def test_group_fsync_still_writes_every_line_on_close(tmp_path):
    path = tmp_path / "manifest.jsonl"
    with ManifestWriter(str(path), HEADER, fsync_every=100) as writer:
        for i in range(250):
            writer.append({"run_id": i, "status": "ok"})
    assert len(read_manifest(path).entries) == 250


def test_group_fsync_loses_nothing_when_the_driver_is_killed(tmp_path):
    """Grouping only delays fsync: every line is in the kernel at once, so kill -9 of the driver keeps them all."""
    path = tmp_path / "manifest.jsonl"
    code = (
        "import os, signal, sys\n"
        "from gmat_sweep.manifest import ManifestWriter\n"
        f"writer = ManifestWriter(sys.argv[1], {HEADER!r}, fsync_every=100, fsync_seconds=3600)\n"
        "for i in range(7):\n"
        "    writer.append({'run_id': i, 'status': 'ok'})\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], timeout=60)
    assert done.returncode == -signal.SIGKILL
    assert sorted(read_manifest(path).entries) == list(range(7))


@pytest.mark.parametrize("damage", [
    (b'{"run_id":1,"status":"ok"}\n', b'{"run_id":1,"sta\ntus":"ok"}\n'),  # one record split over two lines
    (b'{"run_id":1,"status":"ok"}\n', b'{"run_id":1},{"run_id":7}\n'),  # two records on one line
    (b'{"run_id":1,"status":"ok"}\n', b'[{"run_id":1}]\n'),  # not a record
])
def test_a_line_that_is_not_one_record_is_named_even_when_the_whole_file_parses(tmp_path, damage):
    # All the lines are parsed at once when they can be; a line that is not exactly one record must still be found.
    path = tmp_path / "manifest.jsonl"
    write(path, [{"run_id": i, "status": "ok"} for i in range(3)])
    path.write_bytes(path.read_bytes().replace(*damage))
    with pytest.raises(ManifestError, match=r"line 3 is corrupt"):
        read_manifest(path)


def test_blank_lines_and_a_torn_tail_read_the_same_either_way(tmp_path):
    path = tmp_path / "manifest.jsonl"
    write(path, [{"run_id": i, "status": "ok"} for i in range(3)])
    path.write_bytes(path.read_bytes().replace(b'\n{"run_id":1', b'\n\n  \n{"run_id":1') + b'{"run_id":3,"st')
    manifest = read_manifest(path)
    assert manifest.entries == {i: {"run_id": i, "status": "ok"} for i in range(3)} and manifest.torn_tail


def test_lines_the_fast_reader_cannot_take_are_read_line_by_line(tmp_path):
    path = tmp_path / "manifest.jsonl"
    # Python's json writes NaN (msgspec refuses it); a blank line; a run id seen twice.
    write(path, [{"run_id": 0, "status": "ok", "collected": {"X": float("nan")}}, {"run_id": 1, "status": "failed"}])
    with open(path, "ab") as handle:
        handle.write(b"\n" + json.dumps({"run_id": 1, "status": "ok"}).encode() + b"\n")
    manifest = read_manifest(path)
    assert sorted(manifest.entries) == [0, 1] and manifest.entries[1]["status"] == "ok"
    assert manifest.entries[0]["collected"]["X"] != manifest.entries[0]["collected"]["X"]  # NaN


def test_an_unchanged_manifest_is_not_read_again_and_a_grown_one_is(tmp_path):
    from gmat_sweep.manifest import current

    path = tmp_path / "manifest.jsonl"
    write(path, [{"run_id": 0, "status": "ok"}])
    first = read_manifest(path)
    assert current(first, tmp_path) is first
    with ManifestWriter(str(path)) as writer:  # another process finishes a run meanwhile
        writer.append({"run_id": 1, "status": "ok"})
    again = current(first, tmp_path)
    assert again is not first and sorted(again.entries) == [0, 1]
    assert current(None, path).entries == again.entries


@settings(max_examples=40, deadline=None)
@given(block=st.integers(min_value=1, max_value=400), cut=st.integers(min_value=0, max_value=30))
def test_a_manifest_read_in_blocks_holds_every_line_and_shares_what_lines_repeat(tmp_path_factory, block, cut):
    # Lines are decoded a block at a time; a block's last line is completed from the file, a torn tail left out.
    import gmat_sweep.manifest as manifest_module

    path = tmp_path_factory.mktemp("m") / "manifest.jsonl"
    fingerprint = {"engine": "embedded", "gmat_version": "R2026a"}
    lines = [{"run_id": i, "status": "ok" if i % 3 else "failed", "fingerprint": dict(fingerprint),
              "outputs": {"RF": "RF.parquet"} if i < 5 else {"RF": "other.parquet"}, "files": [], "extra": {},
              "collected": {"X": [1, 1.0, True][i % 3]}, "overrides": {"A": i * 0.5}} for i in range(12)]
    write(path, lines)
    data = path.read_bytes()
    path.write_bytes(data + b'{"run_id":99,"status":"o'[:cut])
    saved, manifest_module._BLOCK = manifest_module._BLOCK, block
    try:
        manifest = read_manifest(path)
    finally:
        manifest_module._BLOCK = saved
    expected = {e["run_id"]: json.loads(json.dumps(e)) for e in lines}
    assert manifest.entries == expected and manifest.torn_tail == (cut > 0)
    # Equal but typed differently (1, 1.0, True) stays as written: collected values are never shared.
    assert [type(manifest.entries[i]["collected"]["X"]) for i in range(3)] == [int, float, bool]
    entries = manifest.entries
    assert all(entries[i]["fingerprint"] is entries[0]["fingerprint"] for i in entries)
    assert entries[4]["outputs"] is entries[0]["outputs"] and entries[5]["outputs"] == {"RF": "other.parquet"}
