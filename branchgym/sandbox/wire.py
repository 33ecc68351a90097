"""The sandbox wire protocol: length-prefixed JSON frames over Unix stream sockets.

A frame is a 4-byte big-endian length, then that many bytes of UTF-8 JSON. File descriptors
(the connection of a new worker) ride along with a frame's first bytes as ``SCM_RIGHTS``.
Stdlib only: this file is copied into the sandbox image next to ``server.py``.

Threat model. User code runs inside the worker process that owns a session's connection, so it
can read everything the worker knows (``gc.get_objects()``, frames) and write any bytes to that
socket: no secret kept in that process can authenticate a reply. What the host relies on
instead (``session.py``): every request carries a sequence number that the reply must echo; a
frame that is malformed, too large, of the wrong shape, with the wrong number, or that arrives
between calls is *not the reply* and the worker is killed and restarted with a note. Code can
therefore make its *own* call's result say anything (as ``print`` can), and code that keeps
running and answers its session's later requests itself controls that session's later output
(as patching the worker could); it can never shift a real reply to another call, answer for
another session (each has its own socketpair; workers cannot be
traced to steal one), and never make the host raise. The control connection of the server is
out of reach: it lives only in the server process, which runs no user code and cannot be traced.
"""

from __future__ import annotations

import json
import socket
import struct

__all__ = ["PROTOCOL_VERSION", "MAX_FRAME_BYTES", "FrameError", "MalformedFrame", "send_frame",
           "recv_frame"]

PROTOCOL_VERSION = 2
_HDR = struct.Struct("!I")
MAX_FRAME_BYTES = 256 * 1024 * 1024


class FrameError(ConnectionError):
    """The peer closed the connection or sent a malformed frame."""


class MalformedFrame(FrameError):
    """The peer sent bytes that are not a frame (too large, not JSON, not an object)."""


# ---------------------------------------------------------------------------- framing


def send_frame(sock: socket.socket, obj: dict, fds: list[int] | tuple[int, ...] = ()) -> None:
    """Send ``obj`` as one frame; ``fds`` ride along (SCM_RIGHTS) with its first bytes."""
    data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "replace")
    buf = _HDR.pack(len(data)) + data
    if fds:
        sent = socket.send_fds(sock, [buf], list(fds))
        if sent < len(buf):
            sock.sendall(buf[sent:])
    else:
        sock.sendall(buf)


def _recv_exact(sock: socket.socket, n: int, into: bytearray | None = None) -> bytearray:
    buf = into if into is not None else bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise FrameError("connection closed by peer")
        buf += chunk
    return buf


def recv_frame(sock: socket.socket, with_fds: bool = False,
               limit: int = MAX_FRAME_BYTES) -> tuple[dict, list[int]]:
    """Receive one frame; returns ``(obj, fds)`` (``fds`` empty unless ``with_fds``).

    With ``with_fds``, a truncated control message (the receiver could not take the fds, e.g.
    ``RLIMIT_NOFILE``) is reported as the key ``"_fds_truncated": True`` in ``obj``.
    """
    fds: list[int] = []
    head = bytearray()
    truncated = False
    if with_fds:
        while not head:
            data, got, flags, _addr = socket.recv_fds(sock, _HDR.size, 8)
            fds.extend(got)
            truncated |= bool(flags & getattr(socket, "MSG_CTRUNC", 8))
            if not data:
                raise FrameError("connection closed by peer")
            head += data
    head = _recv_exact(sock, _HDR.size, head)
    (n,) = _HDR.unpack(bytes(head))
    if n > limit:
        raise MalformedFrame(f"frame of {n} bytes exceeds the {limit}-byte limit")
    body = _recv_exact(sock, n)
    try:
        obj = json.loads(body.decode("utf-8"))
    except ValueError as e:
        raise MalformedFrame(f"malformed frame: {e}") from None
    if not isinstance(obj, dict):
        raise MalformedFrame(f"a frame must hold a JSON object, got {type(obj).__name__}")
    if truncated:
        obj["_fds_truncated"] = True
    return obj, fds
