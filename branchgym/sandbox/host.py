"""A running sandbox server and its control connection (base of the docker and local hosts).

A *host* is one server process (``server.py``): PID 1 of a container, or a local subprocess.
The host object talks to it over one control socket, serialised by a lock: spawn a worker,
kill a worker's process tree (sparing the other live workers, whose pids the host tracks), ask
why a worker died, reset everything for reuse (workspaces and the scratch places of
:meth:`ServerHost.scratch`).
"""

from __future__ import annotations

import abc
import itertools
import secrets
import select
import signal
import socket
import threading

from branchgym.errors import SandboxError
from branchgym.sandbox.limits import SandboxLimits
from branchgym.sandbox.wire import PROTOCOL_VERSION, FrameError, recv_frame, send_frame

__all__ = ["ServerHost", "peer_alive", "peer_state"]

_IDS = itertools.count(1)


class ServerHost(abc.ABC):
    """One sandbox server. Subclasses start it (:meth:`start`) and end it (:meth:`_terminate`)."""

    backend = "abstract"
    CONTROL_TIMEOUT_S = 30.0

    def __init__(self, limits: SandboxLimits) -> None:
        self.limits = limits
        self.name = f"{self.backend}-{next(_IDS)}"
        self._ctl: socket.socket | None = None
        self._ctl_lock = threading.Lock()
        self.dead = False
        self.closed = False
        self.server_pid: int | None = None
        self.server_python = ""
        self.preloaded: list[str] = []
        self._spare: tuple[socket.socket, int, str] | None = None
        self.workers: set[int] = set()  # live worker pids: spared when another one is killed

    # -- connection ----------------------------------------------------------------------------
    def _attach(self, ctl: socket.socket, timeout_s: float) -> None:
        ctl.settimeout(timeout_s)
        try:
            hello, _ = recv_frame(ctl)
        except (FrameError, OSError) as e:
            ctl.close()
            raise SandboxError(f"the sandbox server of {self.name} did not say hello within "
                               f"{timeout_s:g} s ({e}); {self.describe_failure()}") from None
        if hello.get("version") != PROTOCOL_VERSION:
            ctl.close()
            raise SandboxError(
                f"sandbox server protocol {hello.get('version')!r} != host protocol "
                f"{PROTOCOL_VERSION}: rebuild the image with `branchgym sandbox build-image`"
            )
        self.server_pid = int(hello["pid"])
        self.server_python = str(hello.get("python", ""))
        self.preloaded = list(hello.get("preloaded", []))
        self._ctl = ctl

    def describe_failure(self) -> str:
        """A hint about why the server may have failed (subclasses add logs)."""
        return "check that the sandbox can start"

    def request(self, msg: dict, fds: tuple[int, ...] = (), timeout_s: float | None = None) -> dict:
        """One control request/response; a broken connection marks the host dead."""
        if self.dead or self._ctl is None:
            raise SandboxError(f"sandbox {self.name} is not running")
        with self._ctl_lock:
            ctl = self._ctl  # close() may drop it from another thread (the pool's reset thread)
            if ctl is None:
                raise SandboxError(f"sandbox {self.name} is not running")
            try:
                ctl.settimeout(timeout_s or self.CONTROL_TIMEOUT_S)
                send_frame(ctl, msg, fds)
                reply, _ = recv_frame(ctl)
            except (FrameError, OSError) as e:
                self.dead = True
                raise SandboxError(f"sandbox {self.name} stopped answering ({e})") from None
        if not reply.get("ok", False):
            raise SandboxError(f"sandbox {self.name} refused {msg.get('op')!r}: "
                               f"{reply.get('error')}")
        return reply

    def alive(self) -> bool:
        if self.dead or self.closed:
            return False
        try:
            self.request({"op": "ping"}, timeout_s=5.0)
            return True
        except SandboxError:
            return False

    # -- workers -------------------------------------------------------------------------------
    @staticmethod
    def new_workspace_name() -> str:
        return f"s{secrets.token_hex(6)}"

    def spawn(self, workspace: str, timeout_s: float = 30.0) -> tuple[socket.socket, int]:
        """Start a fresh interpreter in ``workspace`` (created if missing, kept if present)."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            reply = self.request({"op": "spawn", "workspace": workspace}, (theirs.fileno(),))
        except SandboxError:
            mine.close()
            raise
        finally:
            theirs.close()
        return mine, self.await_ready(mine, int(reply["pid"]), timeout_s)

    def prespawn(self) -> None:
        """Start a spare interpreter now, so that the next :meth:`take_worker` costs no fork."""
        if self._spare is None and not self.dead and not self.closed:
            workspace = self.new_workspace_name()
            sock, pid = self.spawn(workspace)
            self._spare = (sock, pid, workspace)

    def take_worker(self) -> tuple[socket.socket, int, str]:
        """A fresh interpreter in a new, empty workspace: the spare if there is one."""
        spare, self._spare = self._spare, None
        if spare is not None:
            sock = spare[0]
            if _peer_alive(sock):
                return spare
            sock.close()
        workspace = self.new_workspace_name()
        sock, pid = self.spawn(workspace)
        return sock, pid, workspace

    def _drop_spare(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:
            spare[0].close()  # it sees EOF and exits
            self.workers.discard(spare[1])

    def await_ready(self, sock: socket.socket, pid: int, timeout_s: float) -> int:
        sock.settimeout(timeout_s)
        try:
            ready, _ = recv_frame(sock)
        except (FrameError, OSError) as e:
            sock.close()
            raise SandboxError(f"a new interpreter in {self.name} did not start ({e}); "
                               f"{self.why_dead(pid)}") from None
        if ready.get("pid", pid) != pid:  # the new interpreter must be the process announced
            sock.close()
            raise SandboxError(f"a new interpreter in {self.name} announced pid "
                               f"{ready.get('pid')!r} instead of {pid}; it was not started")
        self.workers.add(pid)
        return pid

    def kill(self, pid: int) -> None:
        """SIGKILL the worker and whatever it started (``setsid`` daemons too), sparing the
        subtrees of the other live workers (its forks)."""
        self.workers.discard(pid)
        if not self.dead and not self.closed:
            try:
                self.request({"op": "kill", "pid": pid, "keep": sorted(self.workers)},
                             timeout_s=10.0)
            except SandboxError:
                pass

    def why_dead(self, pid: int) -> str:
        """How worker ``pid`` ended, in words, as far as the server knows."""
        if self.dead or self.closed:
            return "the sandbox itself stopped"
        try:
            st = self.request({"op": "status", "pid": pid}, timeout_s=5.0)
        except SandboxError:
            return "the sandbox itself stopped"
        if not st.get("known"):
            return "the interpreter process ended (killed or exited)"
        if "signal" in st:
            sig = st["signal"]
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            hint = " (out of memory, or killed)" if sig == signal.SIGKILL else ""
            return f"the interpreter was killed by {name}{hint}"
        return f"the interpreter exited with code {st.get('exit_code')} (os._exit?)"

    def scratch(self) -> tuple[tuple[str, ...], bool]:
        """Writable places besides the workspaces that only this sandbox sees, wiped by
        :meth:`reset`, and whether its System V IPC is its own (wiped too). Each backend says
        what it has; by default, none."""
        return (), False

    def reset(self) -> bool:
        """Kill every worker, wipe all workspaces and :meth:`scratch`; True when the sandbox is
        clean for reuse (else the pool destroys it)."""
        self._drop_spare()
        self.workers.clear()
        dirs, ipc = self.scratch()
        try:
            reply = self.request({"op": "reset", "scratch": list(dirs), "ipc": ipc},
                                 timeout_s=30.0)
        except SandboxError:
            return False
        return bool(reply.get("clean"))

    # -- lifecycle -----------------------------------------------------------------------------
    @abc.abstractmethod
    def _terminate(self) -> None:
        """Stop the server for good (remove the container / kill the process)."""

    def close(self) -> None:
        """Stop the server and release everything; idempotent."""
        if self.closed:
            return
        self.closed = True
        self._drop_spare()
        ctl, self._ctl = self._ctl, None
        if ctl is not None:
            try:
                # shutdown first: it also wakes a request blocked in recv on another thread (the
                # pool's reset threads), which a bare close() of the fd would leave waiting.
                ctl.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                ctl.close()  # the server sees EOF, kills its workers and exits
            except OSError:
                pass
        self._terminate()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "dead" if self.dead else "up"
        return f"<{type(self).__name__} {self.name} {state}>"


def peer_state(sock: socket.socket) -> str:
    """``"idle"`` (nothing to read), ``"pending"`` (bytes the host did not ask for wait to be
    read) or ``"closed"`` (the peer hung up), without blocking."""
    try:
        poller = select.poll()  # the socket may have a timeout, so recv() itself would wait
        poller.register(sock, select.POLLIN)
        if not poller.poll(0):
            return "idle"
        return "pending" if sock.recv(1, socket.MSG_PEEK) != b"" else "closed"
    except OSError:
        return "closed"


def peer_alive(sock: socket.socket) -> bool:
    """False when the peer already hung up (EOF pending), without blocking."""
    return peer_state(sock) != "closed"


_peer_alive = peer_alive
