"""A session: one worker (persistent interpreter + workspace) in a sandbox host.

Recovery policy (documented in ``ExecResult.error`` when it happens):

- ``timeout_s`` passes: the worker raises ``TimeoutError`` inside the user's code (SIGALRM); the
  interpreter state is kept. If the code does not yield within a grace period (2 s + 10% of
  ``timeout_s``: C code, blocked signals, SIGSTOP), the worker's process group is SIGKILLed
  and a fresh interpreter starts in the same workspace: variables and imports are lost,
  workspace files are kept. Either way, every process the code started is killed.
- the worker dies during a call (``os._exit``, a signal, the OOM killer, closed connection): same
  restart; ``error`` says how it died.
- the host (container / server) dies: the session's tree moves to a new host from the pool, a
  fresh interpreter starts there (workspace files are lost too). If that recovery fails, the
  call raises ``SandboxError``.
- the connection carries a frame that is not the reply to this call (code in the session wrote
  to the sandbox's own socket: wrong sequence number, wrong shape, garbage, or bytes between
  calls): the worker is killed and restarted like above, with a note; results never shift and
  ``run`` never raises for it (threat model: ``wire.py``).

``fork()`` succeeds in its normal time or raises ``SandboxError`` at once with the reason (the
worker refuses a workspace too big or with too many files to copy, or a lowered
``RLIMIT_NOFILE``); the parent keeps its state. If the parent's interpreter had died or dies
during the fork, it is restarted, the fork raises, and the parent's next ``run`` says so.

``fork()`` is ``os.fork()`` of the worker: exact for single-threaded code (workers pin BLAS
pools to one thread); if user code started threads, only the forking thread exists in the fork.
"""

from __future__ import annotations

import math
import socket
import threading
import time
import weakref
from typing import TYPE_CHECKING

from branchgym.errors import SandboxError
from branchgym.sandbox.core import ExecResult, Session
from branchgym.sandbox.host import ServerHost, peer_state
from branchgym.sandbox.wire import FrameError, MalformedFrame, recv_frame, send_frame

if TYPE_CHECKING:
    from branchgym.sandbox.pool import SandboxPool

__all__ = ["WorkerSession", "SessionTree"]

FORK_TIMEOUT_S = 60.0
TAMPERED = ("the interpreter's connection carried a frame that was not the reply to this call "
            "(code in the session wrote to the sandbox's own socket), so the interpreter was "
            "killed; results are never taken from such a connection")


def _join(note: str, more: str) -> str:
    """Notes for the next result: none is dropped (a fork that restarted the session, then a
    tampered connection, are both reported)."""
    return f"{note}; {more}" if note else more


def _valid_run_reply(reply: dict, seq: int) -> bool:
    return (reply.get("seq") == seq and reply.get("ok") is True
            and isinstance(reply.get("stdout"), str) and isinstance(reply.get("stderr"), str)
            and (reply.get("error") is None or isinstance(reply.get("error"), str))
            and isinstance(reply.get("timed_out"), bool))


class SessionTree:
    """The sessions forked from one root session; by default they share one host exclusively."""

    def __init__(self, pool: SandboxPool, host: ServerHost) -> None:
        self.pool = pool
        self.host = host
        self._live: set[int] = set()
        self._ids = 0
        self._lock = threading.Lock()
        self._released = False

    def add(self) -> int:
        with self._lock:
            self._ids += 1
            self._live.add(self._ids)
            return self._ids

    def resets_on_release(self, sid: int) -> bool:
        """True when ``sid`` is the tree's last live session and its host will be reset when it
        goes (tree placement): the reset kills everything, so closing needs no kill of its own."""
        with self._lock:
            return self._live == {sid} and self.pool.placement == "tree"

    def discard(self, sid: int) -> None:
        with self._lock:
            self._live.discard(sid)
            if self._live or self._released:
                return
            self._released = True
            host = self.host
        self.pool.release(host)

    def recover(self, broken: ServerHost) -> ServerHost:
        """Move the tree off a dead host (once per dead host) and return the live one."""
        with self._lock:
            if self.host is broken:
                self.host = self.pool.replace(broken)
            return self.host


class WorkerSession(Session):
    """A :class:`~branchgym.sandbox.core.Session` backed by a worker process in a host."""

    def __init__(self, tree: SessionTree, host: ServerHost, sock: socket.socket, pid: int,
                 workspace: str) -> None:
        self._tree = tree
        self._host = host
        self._sock: socket.socket | None = sock
        self._pid = pid
        self.workspace = workspace
        self._lock = threading.Lock()
        self._closed = False
        self._sid = tree.add()
        self.restarts = 0
        self._seq = 0
        self._note = ""  # said by the next run: the interpreter was restarted outside a run
        self._finalizer = weakref.finalize(self, _finalize, sock, tree, self._sid)

    # -- properties ----------------------------------------------------------------------------
    @property
    def backend(self) -> str:  # type: ignore[override]
        return self._host.backend

    @property
    def host(self) -> ServerHost:
        """The sandbox host (container or local server) this session's worker lives in."""
        return self._host

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pid(self) -> int:
        """The worker's pid inside the sandbox."""
        return self._pid

    # -- run -----------------------------------------------------------------------------------
    def run(self, code: str, timeout_s: float = 10.0) -> ExecResult:
        if not isinstance(code, str):
            raise TypeError(f"code must be a str of Python source, got {type(code).__name__}")
        if (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float))
                or not math.isfinite(timeout_s) or timeout_s <= 0):
            raise ValueError(f"timeout_s={timeout_s!r} is invalid: give a positive number of "
                             f"seconds, e.g. timeout_s=10")
        with self._lock:
            self._check_open()
            t0 = time.perf_counter()
            note, self._note = self._note, ""
            if self._sock is None:
                note = _join(note, self._restart("the previous interpreter was lost"))
            self._seq += 1
            seq = self._seq
            msg = {"op": "run", "code": code, "timeout_s": float(timeout_s),
                   "max_output_chars": self._host.limits.max_output_chars, "seq": seq}
            sock = self._sock
            assert sock is not None
            try:
                state = peer_state(sock)
                if state == "pending":  # bytes nobody asked for: left by the previous call's code
                    note = _join(note, f"{TAMPERED} between calls; "
                                       f"{self._restart('tampered connection')}")
                elif state == "closed":
                    raise ConnectionResetError("worker connection closed")
                sock = self._sock
                assert sock is not None
                send_frame(sock, msg)
            except OSError:  # died between calls: recover, then run the code in the fresh one
                note = _join(note, self._restart(self._death("between calls")))
                sock = self._sock
                assert sock is not None
                send_frame(sock, msg)
            grace = 2.0 + 0.1 * timeout_s  # time for the in-worker interrupt, even under load
            limit = 16 * self._host.limits.max_output_chars + 65536
            try:
                sock.settimeout(timeout_s + grace)
                reply, _ = recv_frame(sock, limit=limit)
            except TimeoutError:
                self._host.kill(self._pid)
                restarted = self._restart("timeout")
                return ExecResult(
                    error=(f"TimeoutError: the code ran longer than {timeout_s:g} s and did not "
                           f"stop when interrupted, so the interpreter was killed; {restarted}"),
                    timed_out=True, duration_s=time.perf_counter() - t0)
            except MalformedFrame:
                reply = {}
            except (FrameError, OSError):
                cause = self._death("during this call")
                restarted = self._restart(cause)
                if "SIGXCPU" in cause:
                    # The CPU-time backstop (RLIMIT_CPU, armed per call) fired before the host's
                    # wall-clock kill: on an idle machine a busy loop that blocks the interrupt
                    # reaches it first. Either way it is a timeout.
                    return ExecResult(
                        error=(f"TimeoutError: the code ran longer than {timeout_s:g} s and did "
                               f"not stop when interrupted, so {cause}; {restarted}"),
                        timed_out=True, duration_s=time.perf_counter() - t0)
                return ExecResult(error=f"SandboxRestarted: {cause}; {restarted}",
                                  duration_s=time.perf_counter() - t0)
            if not _valid_run_reply(reply, seq):
                restarted = self._restart("tampered connection")
                return ExecResult(error=f"SandboxRestarted: {TAMPERED}; {restarted}",
                                  duration_s=time.perf_counter() - t0)
            stderr = reply["stderr"]
            if note:
                stderr = f"[sandbox: {note}]\n" + stderr
            return ExecResult(stdout=reply["stdout"], stderr=stderr, error=reply["error"],
                              timed_out=reply["timed_out"], duration_s=time.perf_counter() - t0)

    # -- fork ----------------------------------------------------------------------------------
    def fork(self) -> WorkerSession:
        with self._lock:
            self._check_open()
            if self._sock is None:
                self._note = self._restart("the previous interpreter was lost")
                raise SandboxError(f"fork refused: this session's interpreter was lost and has "
                                   f"been restarted ({self._note}); fork it again")
            state = peer_state(self._sock)
            if state != "idle":
                cause = (f"{TAMPERED} between calls" if state == "pending"
                         else self._death("between calls"))
                self._note = f"{cause}; {self._restart(cause)}"
                raise SandboxError(f"fork refused: {self._note}")
            try:
                return self._fork_once()
            except (FrameError, OSError) as e:  # died or stuck during the fork: state is lost
                cause = (TAMPERED if isinstance(e, MalformedFrame) else
                         f"the interpreter did not answer the fork within {FORK_TIMEOUT_S:g} s"
                         if isinstance(e, TimeoutError) else self._death("during fork"))
                self._note = f"{cause}; {self._restart(cause)}"
                raise SandboxError(f"fork failed and this session was restarted: "
                                   f"{self._note}") from None

    def _fork_once(self) -> WorkerSession:
        sock = self._sock
        assert sock is not None
        workspace = ServerHost.new_workspace_name()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._seq += 1
        try:
            sock.settimeout(FORK_TIMEOUT_S)
            send_frame(sock, {"op": "fork", "workspace": workspace, "seq": self._seq},
                       (theirs.fileno(),))
            reply, _ = recv_frame(sock, limit=65536)
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        if reply.get("seq") != self._seq:
            mine.close()
            raise MalformedFrame(f"fork reply with seq {reply.get('seq')!r} != {self._seq}")
        if not reply.get("ok"):
            mine.close()
            error = str(reply.get("error"))
            hint = (" Raise the pids limit or close sessions." if "Errno 11" in error else "")
            raise SandboxError(f"fork failed: {error}.{hint} This session keeps its state.")
        pid = reply.get("pid")
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 1:
            mine.close()
            raise MalformedFrame(f"fork reply with pid {pid!r}")
        pid = self._host.await_ready(mine, pid, FORK_TIMEOUT_S)
        return WorkerSession(self._tree, self._host, mine, pid, workspace)

    # -- recovery ------------------------------------------------------------------------------
    def _death(self, when: str) -> str:
        why = f"{self._host.why_dead(self._pid)} {when}"
        self._host.kill(self._pid)  # whatever the dead interpreter left running goes too
        return why

    def _restart(self, cause: str) -> str:
        """One recovery attempt: fresh worker on the same host, else on a replacement host."""
        old, self._sock = self._sock, None
        if old is not None:
            old.close()
        if self._pid in self._host.workers:  # whatever it left running goes too
            self._host.kill(self._pid)
        self.restarts += 1
        host = self._host
        if host.alive():
            try:
                self._sock, self._pid = host.spawn(self.workspace)
                self._finalizer.detach()
                self._finalizer = weakref.finalize(self, _finalize, self._sock, self._tree,
                                                   self._sid)
                return ("a fresh interpreter was started: variables and imports are lost, "
                        "workspace files are kept")
            except SandboxError:
                pass
        try:
            self._host = self._tree.recover(host)
            self._sock, self._pid = self._host.spawn(self.workspace)
        except SandboxError as e:
            raise SandboxError(
                f"the sandbox broke ({cause}) and one recovery attempt failed: {e}. "
                f"Check the Docker engine (`docker ps`) or use backend='local'."
            ) from None
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _finalize, self._sock, self._tree, self._sid)
        return ("the sandbox was restarted: variables, imports and workspace files are lost")

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxError("this sandbox session is closed: open a new one with "
                               "open_sandbox() or fork a live session")

    # -- close ---------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            sock, self._sock = self._sock, None
        if not self._tree.resets_on_release(self._sid):
            self._host.kill(self._pid)  # the worker and all it started (setsid daemons too)
        # else the pool resets the host in the background (every process killed, every writable
        # place wiped) before anyone can have it again: an episode start does not wait for that.
        if sock is not None:
            sock.close()
        self._finalizer.detach()
        self._tree.discard(self._sid)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"pid={self._pid}"
        return f"<WorkerSession {self.backend} {self._host.name} {self.workspace} {state}>"


def _finalize(sock: socket.socket | None, tree: SessionTree, sid: int) -> None:
    """A session that was garbage-collected unclosed still gives its host back."""
    if sock is not None:
        try:
            sock.close()
        except OSError:
            pass
    try:
        tree.discard(sid)
    except Exception:
        pass
