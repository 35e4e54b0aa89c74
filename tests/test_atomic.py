"""The one atomic-write helper: readers see the old file or the new one, never a mix or a part, even with several
processes writing the same path at once (as processes making the same kernel copy do); a failed write leaves the
old file and no temporary file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gmat_sweep.atomic import replacing, write_bytes

WRITER = """
import sys
from gmat_sweep.atomic import write_bytes
path, mark = sys.argv[1], sys.argv[2].encode()
for _ in range(300):
    write_bytes(path, mark * 200_000)
"""


def test_processes_writing_one_path_at_once_never_show_a_reader_part_of_a_file(tmp_path: Path) -> None:
    target = tmp_path / "kernel.tpc"
    write_bytes(target, b"0" * 200_000)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(target), mark]) for mark in "abc"]
    seen = set()
    while any(w.poll() is None for w in writers):
        data = target.read_bytes()
        assert len(data) == 200_000 and len(set(data)) == 1, (len(data), set(data))
        seen.add(data[:1])
    assert all(w.wait(timeout=120) == 0 for w in writers)
    assert target.read_bytes()[:1] in {b"a", b"b", b"c"} and len(seen) > 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kernel.tpc"]  # no temporary file left behind


def test_a_write_that_fails_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "bundle.zip"
    write_bytes(target, b"old")
    with pytest.raises(RuntimeError), replacing(target) as tmp:
        Path(tmp).write_bytes(b"half of the ne")
        raise RuntimeError("the writer failed")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["bundle.zip"]
    (tmp_path / "taken").mkdir()  # the rename onto a folder fails after the bytes were written
    with pytest.raises(OSError):
        write_bytes(tmp_path / "taken", b"new", durable=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle.zip", "taken"]


def test_replacing_gives_a_path_beside_the_target_and_durable_writes_land_whole(tmp_path: Path) -> None:
    target = tmp_path / "manifest.jsonl"
    with replacing(target, durable=True) as tmp:
        assert Path(tmp).parent == tmp_path and not target.exists()
        Path(tmp).write_bytes(b'{"kind":"gmat-sweep"}\n')
    assert target.read_bytes() == b'{"kind":"gmat-sweep"}\n'
    write_bytes(target, memoryview(b"header\nline\n"), durable=True)
    assert target.read_bytes() == b"header\nline\n" and sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_abandoned_lists_only_the_temporary_files_of_dead_writers_of_this_host(tmp_path):
    import os
    import socket

    from gmat_sweep.atomic import abandoned

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(gone.stdout)  # a process that has exited
    host = socket.gethostname()
    names = {"dead": f".RF.parquet.{dead}@{host}.0a1b.tmp", "alive": f".RF.parquet.{os.getpid()}@{host}.0a1b.tmp",
             "elsewhere": f".RF.parquet.{dead}@not-{host}.0a1b.tmp", "other": "RF.parquet"}
    for name in names.values():
        (tmp_path / name).write_bytes(b"x")
    assert abandoned(tmp_path) == [str(tmp_path / names["dead"])]
    assert abandoned(tmp_path / "missing") == []
