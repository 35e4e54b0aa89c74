"""Group commit of manifest lines: a run is counted only after an fsync covers its line, and one fsync covers many."""

from __future__ import annotations

import errno
import os
import threading
import time

import pytest

import importlib
from gmat_sweep.backends import LocalPool
from gmat_sweep.group_commit import GroupCommit
from gmat_sweep.manifest import KIND, ManifestWriter, read_manifest
from gmat_sweep.sweep import Sweep

HEADER = {"kind": KIND, "schema": 1, "design": {"kind": "grid", "grid": {"A": [1]}}}


@pytest.fixture
def synced(monkeypatch) -> dict[str, int]:
    """The size of each ``manifest.jsonl`` as of the last fsync this process made of it that returned, by path
    (``os.fsync`` is wrapped: it still syncs)."""
    sizes: dict[str, int] = {}
    real = os.fsync

    def spying(fd):
        path = os.readlink(f"/proc/self/fd/{fd}")
        size = os.fstat(fd).st_size  # what this fsync covers at least
        real(fd)
        if path.endswith("manifest.jsonl"):
            sizes[path] = size
            sizes["fsyncs"] = sizes.get("fsyncs", 0) + 1

    monkeypatch.setattr(os, "fsync", spying)
    return sizes


def synced_lines(sizes: dict[str, int], path: str) -> int:
    with open(path, "rb") as handle:
        return handle.read(sizes.get(path, 0)).count(b"\n")


def test_each_line_is_fsynced_before_its_done_runs_and_lines_share_fsyncs(tmp_path, synced):
    path = str(tmp_path / "manifest.jsonl")
    writer = ManifestWriter(path, HEADER)
    seen: list[tuple[int, int]] = []  # (line number, lines synced when its done ran)
    commit = GroupCommit(writer, delay=0.05)
    before = synced["fsyncs"]
    for i in range(40):
        commit.append({"run_id": i, "status": "ok"}, lambda n=i + 2: seen.append((n, synced_lines(synced, path))))
        # Written and flushed at once: another reader (and a driver killed now) has the line already.
        assert read_manifest(path).entries.keys() == set(range(i + 1))
        time.sleep(0.002)
    commit.close()
    writer.close()
    assert [n for n, _ in seen] == list(range(2, 42))
    assert all(lines >= n for n, lines in seen), seen
    assert synced["fsyncs"] - before < 20  # grouped: 40 lines in ~80 ms, a group every 50 ms


def test_close_syncs_at_once_without_waiting_for_the_delay(tmp_path, synced):
    path = str(tmp_path / "manifest.jsonl")
    writer = ManifestWriter(path, HEADER)
    done = threading.Event()
    commit = GroupCommit(writer, delay=3600)
    commit.append({"run_id": 0, "status": "ok"}, done.set)
    assert not done.is_set()  # still gathering lines for its fsync
    commit.close()
    assert done.is_set() and synced_lines(synced, path) == 2
    writer.close()


def test_a_failed_fsync_counts_nothing_and_stops_the_sweep_with_why(tmp_path, monkeypatch):
    writer = ManifestWriter(str(tmp_path / "manifest.jsonl"), HEADER)

    def failing(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing)
    counted: list[int] = []
    commit = GroupCommit(writer, delay=0.01)
    commit.append({"run_id": 0, "status": "ok"}, lambda: counted.append(0))
    with pytest.raises(OSError, match="could not be written to disk .*rerun on resume"):
        commit.close()
    assert counted == []
    monkeypatch.undo()
    writer.close()


def test_grouped_fsync_by_count_counts_at_once(tmp_path, synced):
    path = str(tmp_path / "manifest.jsonl")
    with ManifestWriter(path, HEADER, fsync_every=100) as writer, GroupCommit(writer) as commit:
        counted: list[int] = []
        commit.append({"run_id": 0, "status": "ok"}, lambda: counted.append(0))
        assert counted == [0]  # fsync_every > 1: counted once flushed, as the user chose


class _CheckingBar:
    """A progress bar that checks, on every run the sweep counts, that the manifest on disk as of the last fsync
    holds at least as many run lines as runs counted."""

    def __init__(self, path: str, sizes: dict[str, int]) -> None:
        self.path, self.sizes = path, sizes
        self.counted = 0
        self.early: list[tuple[int, int]] = []

    def update(self, n: int = 1) -> bool:
        self.counted += n
        lines = synced_lines(self.sizes, self.path) - 1  # the header
        if lines < self.counted:
            self.early.append((self.counted, lines))
        return False

    def set_postfix(self, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_sweep_counts_no_run_before_its_line_is_fsynced(leo, tmp_path, synced, monkeypatch):
    out = tmp_path / "o"
    bar = _CheckingBar(str(out / "manifest.jsonl"), synced)
    monkeypatch.setattr(importlib.import_module("gmat_sweep.sweep"), "_progress", lambda *args: bar)
    with LocalPool(max_workers=2) as pool:
        s = Sweep(leo, grid={"TOF": [30 + i for i in range(24)]}, out=out).run(pool, progress=True)
    assert bar.counted == 24 and not bar.early, bar.early
    assert s.counts()["ok"] == 24 and len(read_manifest(out).entries) == 24
