"""The crash-safe record of a sweep: ``manifest.jsonl``, a header line then one line per finished run.

Only the driver writes it. Each line is written whole with one ``write`` and then flushed and fsynced (a sweep
fsyncs groups of lines and counts a run only after its line's fsync: group_commit.py), so after a ``kill -9`` or a
power cut the file holds every run that was reported finished, plus at worst one torn last line, which the reader
ignores (and the writer cuts off before appending again). Very large sweeps can fsync in groups
(``fsync_every`` lines or ``fsync_seconds``): every line still reaches the kernel at once, so a killed driver loses
nothing, and only an operating-system crash or power cut can lose the last group's lines, whose runs are then
simply rerun on resume. (Each fsync commits the filesystem's journal, which can stall the workers writing run
files on the same disk: on a disk with slow cache flushes, per-line fsync costs sweeps of very short runs a few
percent of their throughput.) A line for a run id seen before replaces it (a resumed run that now succeeded).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.jsonl"
KIND = "gmat-sweep-manifest"


class ManifestError(ValueError):
    """The manifest cannot be read or does not match; the message names the line and what to do."""


@dataclass
class Manifest:
    path: str
    header: dict[str, Any]
    entries: dict[int, dict[str, Any]] = field(default_factory=dict)
    torn_tail: bool = False
    #: (device, inode, size, mtime in ns) of the file as read: see :func:`current`.
    signature: tuple[int, ...] = ()


def manifest_path(path: str | os.PathLike[str]) -> str:
    """Accept an out directory or the manifest file itself."""
    path = os.path.abspath(os.fspath(path))
    return os.path.join(path, MANIFEST_NAME) if os.path.isdir(path) else path


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read a manifest, tolerating a torn last line; a damaged line anywhere else is an error naming it."""
    path = manifest_path(path)
    if not os.path.exists(path):
        where = os.path.dirname(path) if os.path.basename(path) == MANIFEST_NAME else path
        raise ManifestError(f"no sweep manifest at {path}: {where} does not hold a gmat-sweep sweep. Give the out= "
                            "directory of an earlier sweep (the folder that contains manifest.jsonl).")
    with open(path, "rb") as handle:
        # Taken before reading: a line appended meanwhile changes the size, so current() reads the file again.
        signature = _signature(os.fstat(handle.fileno()))
        data = handle.read()
    end = data.rfind(b"\n") + 1
    torn = end != len(data)  # a whole line always ends with a newline: anything after the last one is torn
    first = data.find(b"\n")
    if first < 0:
        raise ManifestError(f"{path} is empty or holds only a partial header: the sweep was killed before it "
                            "started. Delete the folder and start the sweep again.")
    header = _parse(data[:first], path, 1, last=False)
    if header.get("kind") != KIND:
        raise ManifestError(f"{path}, line 1: not a gmat-sweep manifest header")
    if header.get("schema", 0) > SCHEMA_VERSION:
        raise ManifestError(f"{path} was written by a newer gmat-sweep (manifest schema {header['schema']}); "
                            "upgrade gmat-sweep to read it")
    manifest = Manifest(path, header, torn_tail=torn, signature=signature)
    with _no_collection():
        whole = _parse_all(data[first + 1:end])
        if whole is not None:
            manifest.entries = whole
            return manifest
        _parse_each(manifest, data.split(b"\n")[:-1], torn)
    return manifest


def current(manifest: Manifest | None, path: str | os.PathLike[str]) -> Manifest:
    """``manifest`` when the file at ``path`` is still the one it was read from, else the file read again.

    Lines are only ever appended (or a torn tail cut off), so an unchanged inode, size and modification time mean
    unchanged contents: a sweep opened by ``from_manifest`` and then resumed parses a 100 000-line file once.

    >>> m = read_manifest("sweeps/sma"); current(m, "sweeps/sma") is m
    True
    """
    path = manifest_path(path)
    if manifest is not None and manifest.signature and manifest.path == path:
        try:
            if _signature(os.stat(path)) == manifest.signature:
                return manifest
        except OSError:
            pass
    return read_manifest(path)


def _signature(stat: os.stat_result) -> tuple[int, ...]:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


@contextlib.contextmanager
def _no_collection():
    # Reading builds one dict per run and nothing cyclic: the garbage collector would walk every dict built so far
    # again and again (a third of the time of a 100 000-run manifest), and find nothing to free.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _parse_all(body: bytes) -> dict[int, dict[str, Any]] | None:
    """Every run line parsed by one decode of them all as a JSON array (one call instead of one a line: ~1.5x
    faster; msgspec's decoder, when installed, is ~2x faster again), or ``None`` when any line is not exactly one run
    record, for the line-by-line reader to say which."""
    if not body:
        return {}
    count = body.count(b"\n")
    text = b"[" + body[:-1].replace(b"\n", b",") + b"]"
    try:
        values = _decode(text)
    except ValueError:
        return None
    if not isinstance(values, list) or len(values) != count:
        return None  # a blank line, or a line holding two records
    try:
        entries = {value["run_id"]: value for value in values}
    except (TypeError, KeyError, IndexError):
        return None
    if not all(type(run_id) is int for run_id in entries):
        return None
    return entries


def _decode(text: bytes) -> Any:
    if _msgspec is not None:
        try:
            return _msgspec.json.decode(text)
        except _msgspec.DecodeError:
            pass  # e.g. a NaN, which Python's json writes and reads but msgspec refuses
    return json.loads(text)


try:
    import msgspec as _msgspec
except ImportError:  # pragma: no cover - a dependency, but reading works without it
    _msgspec = None


def _parse_each(manifest: Manifest, lines: list[bytes], torn: bool) -> None:
    path = manifest.path
    for number, raw in enumerate(lines[1:], 2):
        if not raw.strip():
            continue
        entry = _parse(raw, path, number, last=number == len(lines) and not torn)
        if entry is None:
            manifest.torn_tail = True
            continue
        manifest.entries[int(entry["run_id"])] = entry


def _parse(raw: bytes, path: str, number: int, last: bool) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
        if not isinstance(value, dict) or (number > 1 and "run_id" not in value):
            raise ValueError("not a run record")
        return value
    except ValueError:
        if last:
            return None  # a final line cut short mid-write; that run is simply not recorded
        raise ManifestError(
            f"{path}, line {number} is corrupt ({raw[:80]!r}...). The lines after it are intact; remove or repair "
            f"line {number} (its run will be rerun on resume), then try again."
        ) from None


class ManifestWriter:
    """Appends run lines durably. Opening an existing manifest first cuts off a torn last line."""

    def __init__(self, path: str, header: Mapping[str, Any] | None = None, *, fsync_every: int = 1,
                 fsync_seconds: float = 0.0) -> None:
        self.path = path
        self.fsync_every = max(1, fsync_every)
        self.fsync_seconds = fsync_seconds
        self._pending = 0
        self._last_sync = time.monotonic()
        if header is not None:
            self._file = open(path, "xb")
            self._write(dict(header))
            self.sync()
        else:
            _cut_torn_tail(path)
            self._file = open(path, "ab")

    def append(self, entry: Mapping[str, Any]) -> None:
        self._write(entry)
        self._file.flush()  # in the kernel now: a killed driver loses nothing, grouped fsync or not
        self._pending += 1
        if self._pending >= self.fsync_every or time.monotonic() - self._last_sync >= self.fsync_seconds > 0:
            self.sync()

    def write_line(self, entry: Mapping[str, Any]) -> None:
        """Write and flush ``entry``'s line without syncing it: for a caller that fsyncs groups of lines itself
        (group_commit.py)."""
        self._write(entry)
        self._file.flush()

    def fileno(self) -> int:
        return self._file.fileno()

    def _write(self, entry: Mapping[str, Any]) -> None:
        self._file.write(_ENCODER.encode(entry).encode() + b"\n")

    def sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._pending = 0
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if not self._file.closed:
            self.sync()
            self._file.close()

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cut_torn_tail(path: str) -> None:
    with open(path, "r+b") as handle:
        data = handle.read()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            handle.truncate(end)
            handle.flush()
            os.fsync(handle.fileno())


def _fallback(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


# One encoder for every line (what json.dumps with these options builds anew on each call).
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_fallback)
