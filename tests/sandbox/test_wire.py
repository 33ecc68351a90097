"""The wire protocol: length-prefixed JSON frames with optional SCM_RIGHTS fds."""

from __future__ import annotations

import os
import socket
import struct

import pytest

from branchgym.sandbox.wire import FrameError, recv_frame, send_frame


def test_frames_round_trip_unicode_and_large_payloads():
    a, b = socket.socketpair()
    with a, b:
        msg = {"op": "run", "code": "print('héllo ✓')", "n": [1, 2.5, None]}
        send_frame(a, msg)
        assert recv_frame(b) == (msg, [])
        big = {"stdout": "x" * 3_000_000}
        import threading

        t = threading.Thread(target=send_frame, args=(a, big))
        t.start()
        assert recv_frame(b)[0] == big
        t.join()


def test_file_descriptors_travel_with_a_frame():
    a, b = socket.socketpair()
    r, w = os.pipe()
    with a, b:
        send_frame(a, {"op": "spawn"}, (w,))
        msg, fds = recv_frame(b, with_fds=True)
        assert msg == {"op": "spawn"} and len(fds) == 1
        os.write(fds[0], b"through the passed fd")
        os.close(fds[0])
        os.close(w)
        assert os.read(r, 100) == b"through the passed fd"
        os.close(r)


def test_eof_and_malformed_frames_raise_frame_error():
    a, b = socket.socketpair()
    with b:
        a.close()
        with pytest.raises(FrameError, match="closed"):
            recv_frame(b)
    a, b = socket.socketpair()
    with a, b:
        a.sendall(struct.pack("!I", 5) + b"{nope")
        with pytest.raises(FrameError, match="malformed"):
            recv_frame(b)
        a.sendall(struct.pack("!I", 2**31))
        with pytest.raises(FrameError, match="exceeds"):
            recv_frame(b)


def test_frames_that_are_not_objects_or_too_large_for_the_caller_are_malformed():
    from branchgym.sandbox.wire import MalformedFrame

    a, b = socket.socketpair()
    with a, b:
        a.sendall(struct.pack("!I", 7) + b"[1,2,3]")
        with pytest.raises(MalformedFrame, match="JSON object"):
            recv_frame(b)
        send_frame(a, {"stdout": "x" * 100})
        with pytest.raises(MalformedFrame, match="exceeds the 64-byte limit"):
            recv_frame(b, limit=64)


def test_fds_the_receiver_cannot_take_are_reported_as_truncated():
    import resource
    import subprocess
    import sys

    # In a child process: lower RLIMIT_NOFILE so that no fd is free for SCM_RIGHTS.
    code = ("import os, resource, socket, sys\n"
            "sys.path.insert(0, os.getcwd())\n"
            "from branchgym.sandbox.wire import recv_frame, send_frame\n"
            "a, b = socket.socketpair()\n"
            "r, w = os.pipe()\n"
            "top = max(a.fileno(), b.fileno(), r, w)\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (top + 1, top + 1))\n"
            "send_frame(a, {'op': 'fork'}, (w,))\n"
            "msg, fds = recv_frame(b, with_fds=True)\n"
            "print(msg, fds)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=os.path.dirname(os.path.dirname(os.path.dirname(
                             os.path.abspath(__file__)))))
    assert out.stdout.strip() == "{'op': 'fork', '_fds_truncated': True} []", out.stderr
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] > 3  # ours is untouched
