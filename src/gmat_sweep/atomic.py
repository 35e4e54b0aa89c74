"""Writing a file so that no reader ever sees half of it: write a temporary file beside it, then rename.

The temporary name is unique to the call (several threads or processes may write the same path at once; the
last rename wins, whole), and a failed write removes it.

>>> write_bytes("out/runs/0/note.json", b"{}")
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Buffer


def write_bytes(path: str | os.PathLike[str], data: Buffer) -> None:
    """Replace ``path`` with ``data`` (bytes, or any buffer such as an Arrow one) in one rename; the folder must
    exist."""
    directory, name = os.path.split(os.fspath(path))
    tmp = os.path.join(directory, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)  # only a failed write leaves it: after the rename there is nothing to remove
        raise
