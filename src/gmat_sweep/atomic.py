"""Writing a file so that no reader ever sees half of it: write a temporary file beside it, then rename.

The temporary name is unique to the call (several threads or processes may write the same path at once; the
last rename wins, whole), and a failed write removes it. ``durable=True`` also makes the new content survive a
power cut once the call returns (the file is fsynced before the rename, its folder after it).

>>> write_bytes("out/runs/0/note.json", b"{}")
>>> with replacing("out/compact/RF.parquet") as tmp:  # for writers that want a path: Parquet, zip
...     pq.write_table(table, tmp)
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Buffer, Iterator


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str], durable: bool = False) -> Iterator[str]:
    """A temporary path beside ``path`` to write to; when the block ends without an error, it replaces ``path`` in
    one rename, else it is removed. The folder must exist."""
    directory, name = os.path.split(os.fspath(path))
    # The writer's process and host in the name: a writer killed outright leaves the file, and abandoned() tells it
    # from one still writing.
    tmp = os.path.join(directory, f".{name}.{os.getpid()}@{socket.gethostname()}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        if durable:
            _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)  # only a failed write leaves it: after the rename there is nothing to remove
        raise
    if durable:
        _fsync(directory or os.curdir)  # the rename itself, in the folder's entry


def write_bytes(path: str | os.PathLike[str], data: Buffer, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` (bytes, or any buffer such as an Arrow one) in one rename; the folder must
    exist."""
    with replacing(path, durable) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def _fsync(path: str) -> None:
    # A read-only descriptor is enough: fsync flushes the file (or folder), whichever descriptor asks.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def abandoned(directory: str | os.PathLike[str]) -> list[str]:
    """The temporary files in ``directory`` whose writer was killed (a process of this host that is gone); those of
    live processes, or of other hosts sharing the folder, are left alone.

    >>> for path in abandoned("out/compact"): os.remove(path)
    """
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    host, found = socket.gethostname(), []
    for name in names:
        if not (name.startswith(".") and name.endswith(".tmp") and "@" in name):
            continue
        writer, _, rest = name[:-len(".tmp")].rpartition("@")
        pid, where = writer.rpartition(".")[2], rest.rpartition(".")[0]
        if where == host and pid.isdigit() and not _alive(int(pid)):
            found.append(os.path.join(directory, name))
    return found


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
