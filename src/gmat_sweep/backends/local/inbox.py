"""Reading every message a worker process has sent so far, in one system call and without blocking.

``Connection.recv_bytes`` reads one message in two reads (its length, then its bytes) and blocks; to learn whether
another message follows, ``Connection.poll`` builds a selector. When the dispatcher lets results gather between its
wake-ups (pool.py), one ``recv(MSG_DONTWAIT)`` on the pipe's socket takes them all, and the framing
``multiprocessing.connection`` writes (a 4-byte big-endian length, or -1 and an 8-byte length) is split here.
"""

from __future__ import annotations

import os
import socket
import struct
from multiprocessing.connection import Connection

_CHUNK = 1 << 16


class Inbox:
    """The driver's reading end of one worker's duplex pipe (a socket pair on POSIX).

    >>> messages, ended = Inbox(conn).read()  # whatever has arrived; ended: the other end closed
    """

    def __init__(self, conn: Connection) -> None:
        # A socket object on a copy of the descriptor: MSG_DONTWAIT makes only these reads non-blocking, while
        # the connection's own writes (tasks sent to the worker) stay blocking.
        self._sock = socket.socket(fileno=os.dup(conn.fileno()))
        self._buffer = bytearray()

    def read(self) -> tuple[list[bytes], bool]:
        """The complete messages received so far, and whether the worker's end is closed (its process died)."""
        ended = False
        while True:
            try:
                chunk = self._sock.recv(_CHUNK, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                ended = True
                break
            if not chunk:
                ended = True
                break
            self._buffer += chunk
            if len(chunk) < _CHUNK:
                break  # the pipe is (almost surely) empty now: spare the call that would say so
        return self._split(), ended

    def _split(self) -> list[bytes]:
        buffer, messages, at = self._buffer, [], 0
        while len(buffer) - at >= 4:
            (size,) = struct.unpack_from("!i", buffer, at)
            head = 4
            if size == -1:
                if len(buffer) - at < 12:
                    break
                (size,) = struct.unpack_from("!Q", buffer, at + 4)
                head = 12
            if len(buffer) - at - head < size:
                break
            messages.append(bytes(buffer[at + head:at + head + size]))
            at += head + size
        if at:
            del buffer[:at]
        return messages

    def close(self) -> None:
        self._sock.close()
