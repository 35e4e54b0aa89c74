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
from typing import Any, BinaryIO

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
        first = handle.readline()
        if not first.endswith(b"\n"):
            raise ManifestError(f"{path} is empty or holds only a partial header: the sweep was killed before it "
                                "started. Delete the folder and start the sweep again.")
        header = _parse(first[:-1], path, 1, last=False)
        if header.get("kind") != KIND:
            raise ManifestError(f"{path}, line 1: not a gmat-sweep manifest header")
        if header.get("schema", 0) > SCHEMA_VERSION:
            raise ManifestError(f"{path} was written by a newer gmat-sweep (manifest schema {header['schema']}); "
                                "upgrade gmat-sweep to read it")
        manifest = Manifest(path, header, signature=signature)
        with _no_collection():
            whole = _parse_all(handle)
            if whole is not None:
                manifest.entries, manifest.torn_tail = whole
                return manifest
            handle.seek(0)
            data = handle.read()
    # A line that is not one run record: read line by line, to name it.
    end = data.rfind(b"\n") + 1
    torn = end != len(data)  # a whole line always ends with a newline: anything after the last one is torn
    manifest.torn_tail = torn
    with _no_collection():
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


def _parse_all(handle: BinaryIO) -> tuple[dict[int, dict[str, Any]], bool] | None:
    """Every run line after the header, and whether a torn last line was left out; a block of lines per decoder
    call (one call per line costs ~1.5x more; msgspec's decoder, when installed, is ~2x faster again). ``None`` when
    any line is not exactly one run record, for the line-by-line reader to say which.

    What every line repeats (the engine's fingerprint, the output files' names, empty lists) is kept once, shared
    by all entries: a 100 000-run manifest read back holds ~100 MB instead of ~210. Reading and decoding a block
    at a time lets the next block reuse the memory of the copies the previous one dropped, and the file is never
    in memory whole. Entries are read-only records: nothing may change a shared value in place."""
    entries: dict[int, dict[str, Any]] = {}
    shared = _Shared()
    torn = False
    while block := handle.read(_BLOCK):
        if not block.endswith(b"\n"):
            block += handle.readline()  # the rest of the block's last line
        if not block.endswith(b"\n"):  # the file ends inside a line: a torn tail, which is not a run
            torn = True
            block = block[:block.rfind(b"\n") + 1]
            if not block:
                break
        try:
            values = _decode_lines(block)
        except ValueError:
            return None
        if not isinstance(values, list) or len(values) != block.count(b"\n"):
            return None  # a blank line, or a line holding two records
        for value in values:
            if type(value) is not dict or type(value.get("run_id")) is not int:
                return None
            shared.share(value)
            entries[value["run_id"]] = value
    return entries, torn


#: Bytes of run lines decoded at a time (~2 000 lines).
_BLOCK = 1 << 20
#: Fields whose value is usually the same as the line before's, and made of strings only (so that equal means the
#: same: 1 == 1.0 == True would not do). Per-run values (overrides, times, collected values) are not looked at.
_SHARED_FIELDS = ("status", "outputs", "files", "log", "warnings", "host", "worker", "fingerprint", "failure")
#: Fields shared only when empty (the common case); their values may be numbers.
_SHARED_WHEN_EMPTY = ("collected", "extra")


class _Shared:
    """Gives each entry the previous entry's value of a field when the two are equal: a comparison in C per field,
    no hashing of nested values."""

    def __init__(self) -> None:
        self.last: dict[str, Any] = {}
        self.empty: dict[type, Any] = {dict: {}, list: []}

    def share(self, entry: dict[str, Any]) -> None:
        last = self.last
        for name in _SHARED_FIELDS:
            value = entry.get(name)
            if value is None:
                continue
            before = last.get(name)
            if value == before:
                entry[name] = before
            else:
                last[name] = value
        for name in _SHARED_WHEN_EMPTY:
            value = entry.get(name)
            if not value and type(value) in self.empty:
                entry[name] = self.empty[type(value)]


def _decode_lines(block: bytes) -> Any:
    if _msgspec is not None:
        try:
            return _lines_decoder.decode_lines(block)
        except _msgspec.DecodeError:
            pass  # e.g. a NaN, which Python's json writes and reads but msgspec refuses
    return json.loads(b"[" + block[:-1].replace(b"\n", b",") + b"]")


try:
    import msgspec as _msgspec

    _lines_decoder = _msgspec.json.Decoder()
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
