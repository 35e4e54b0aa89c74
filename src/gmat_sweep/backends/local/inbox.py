"""The dispatcher's side of the workers' pipes: waiting for them, reading every message a worker has sent so far in
one system call without blocking, and settling a task's future with its reply.

``Connection.recv_bytes`` reads one message in two reads (its length, then its bytes) and blocks; to learn whether
another message follows, ``Connection.poll`` builds a selector. When the dispatcher lets results gather between its
wake-ups (pool.py), one ``recv(MSG_DONTWAIT)`` on the pipe's socket takes them all, and the framing
``multiprocessing.connection`` writes (a 4-byte big-endian length, or -1 and an 8-byte length) is split here.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import select
import socket
import struct
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import ForkingPickler
from typing import Any

from ..base import WorkerLost

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


def deliver(future: Any, reply: bytes | BaseException) -> None:
    """Settle ``future`` with a worker's pickled ``(ok, value)`` reply, or with the error its task failed with."""
    if isinstance(reply, BaseException):
        ok, value = False, reply
    else:
        try:
            ok, value = ForkingPickler.loads(reply)
        except Exception as exc:  # noqa: BLE001 - e.g. a result class the driver cannot import
            ok, value = False, WorkerLost(f"the task's result could not be read back: {type(exc).__name__}: {exc}")
    try:
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
    except concurrent.futures.InvalidStateError:
        pass  # already settled: the pool was closed meanwhile


class Poller:
    """``multiprocessing.connection.wait`` for the dispatcher, keeping one poll registration while the set of pipes
    and process sentinels stays the same (it changes only when a worker starts or is replaced), instead of building
    and registering a new selector on every wake-up, i.e. on every run."""

    def __init__(self) -> None:
        self._key: tuple[int, ...] = ()
        self._poll: Any = None
        self._objects: dict[int, Any] = {}

    def wait(self, objects: list[Any], timeout: float | None) -> list[Any]:
        if not hasattr(select, "poll"):
            return wait(objects, timeout=timeout)
        fds = [o if isinstance(o, int) else o.fileno() for o in objects]
        # By object as well as number: a replaced worker's new pipe may reuse a closed one's descriptor numbers.
        key = (*fds, *map(id, objects))
        if key != self._key:
            self._poll = select.poll()
            for fd in fds:
                self._poll.register(fd, select.POLLIN)
            self._key, self._objects = key, dict(zip(fds, objects))
        # Rounded up, as multiprocessing's wait does: a deadline must not be polled for a millisecond early.
        events = self._poll.poll(None if timeout is None else math.ceil(timeout * 1000))
        return [self._objects[fd] for fd, _ in events]
