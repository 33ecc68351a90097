"""The local backend: the sandbox server as a host subprocess (under bubblewrap when installed).

Same protocol and behaviour as the Docker backend, with rlimits on each interpreter (address
space, CPU, file size, and nproc when not root). It is NOT isolation: without bubblewrap, code
can read the host's files and open network connections; it warns about that once.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import warnings

from branchgym.errors import SandboxError
from branchgym.sandbox.host import ServerHost
from branchgym.sandbox.limits import SandboxLimits

__all__ = ["LocalHost", "LocalSandboxWarning", "server_path", "bwrap_available", "jail_tmp_binds"]

_WARNED = False
_CLEANED = False


class LocalSandboxWarning(UserWarning):
    """The local backend runs code on this machine with rlimits only: no isolation."""


def server_path() -> str:
    from branchgym.sandbox import server

    return os.path.abspath(server.__file__)


def jail_tmp_binds() -> list[str]:
    """Paths under ``/tmp`` the jail must still see read-only: the sandbox server's directory
    and the Python installation, when a checkout or a venv lives in /tmp (the jail's /tmp is a
    private tmpfs that would hide them)."""
    tmp = os.path.realpath("/tmp")
    out: list[str] = []
    for path in (os.path.dirname(server_path()), sys.prefix, sys.base_prefix):
        real = os.path.realpath(path)
        if (real == tmp or real.startswith(tmp + os.sep)) and real not in out:
            out.append(real)
    return out


def bwrap_available() -> bool:
    return shutil.which("bwrap") is not None


def warn_not_isolated(reason: str = "") -> None:
    global _WARNED
    if _WARNED:
        return
    _WARNED = True
    how = ("under bubblewrap (no network, read-only filesystem)" if bwrap_available()
           else "with rlimits only (install bubblewrap for a read-only, network-less jail)")
    warnings.warn(
        f"branchgym sandbox: using the local backend{reason}, which runs code on this machine "
        f"{how}; it is not isolation. Use backend='docker' (and `branchgym sandbox build-image`) "
        f"for untrusted code.",
        LocalSandboxWarning,
        stacklevel=4,
    )


def _remove_stale_dirs() -> None:
    """Workspace roots left by a process that was killed (its pid is gone) are removed."""
    global _CLEANED
    if _CLEANED:
        return
    _CLEANED = True
    tmp = tempfile.gettempdir()
    for name in os.listdir(tmp):
        parts = name.split("-")
        if not name.startswith("branchgym-local-") or len(parts) < 4 or not parts[2].isdigit():
            continue
        try:
            os.kill(int(parts[2]), 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)
        except PermissionError:
            pass


class LocalHost(ServerHost):
    """The sandbox server as a subprocess; its control socket is inherited (no listener)."""

    backend = "local"

    def __init__(self, limits: SandboxLimits) -> None:
        super().__init__(limits)
        self.root = tempfile.mkdtemp(prefix=f"branchgym-local-{os.getpid()}-")
        self.ws_root = os.path.join(self.root, "ws")
        os.makedirs(self.ws_root)
        self.proc: subprocess.Popen | None = None
        self.jailed = False

    @classmethod
    def start(cls, limits: SandboxLimits, timeout_s: float = 30.0) -> LocalHost:
        """Start a server; if bubblewrap cannot start here (no user namespaces), go without."""
        _remove_stale_dirs()
        host = cls(limits)
        try:
            host._launch(timeout_s)
        except SandboxError as e:
            host.close()
            if not host.jailed:
                raise
            warnings.warn(f"bubblewrap could not start the local sandbox ({e}); running it "
                          f"without bubblewrap. Pass bwrap=False to skip this attempt.",
                          LocalSandboxWarning, stacklevel=2)
            host = cls(dataclasses.replace(limits, bwrap=False))
            try:
                host._launch(timeout_s)
            except BaseException:
                host.close()
                raise
        except BaseException:
            host.close()
            raise
        return host

    def _command(self, fd: int) -> list[str]:
        cmd = [sys.executable, "-I", server_path(), "--fd", str(fd),
               "--workspace-root", self.ws_root,
               "--limits", json.dumps(self.limits.worker_limits())]
        if self.limits.bwrap and bwrap_available():
            self.jailed = True
            # Read-only view of the host, private /tmp, the workspace root writable, no network.
            # No --die-with-parent: it follows the spawning *thread*; EOF on the control socket
            # is what stops the server when this process goes away.
            keep = [arg for path in jail_tmp_binds() for arg in ("--ro-bind", path, path)]
            return ["bwrap", "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev",
                    "--proc", "/proc", "--tmpfs", "/tmp", *keep, "--bind", self.root, self.root,
                    "--chdir", self.ws_root, "--new-session", *cmd]
        return cmd

    def _launch(self, timeout_s: float) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._log = open(os.path.join(self.root, "server.log"), "wb")
        try:
            self.proc = subprocess.Popen(
                self._command(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._log,
                start_new_session=True,  # a Ctrl-C in the terminal must not hit the sandbox
                close_fds=True,
                env={**os.environ, **self.limits.server_env()},
            )
        except OSError as e:
            mine.close()
            raise SandboxError(f"could not start the local sandbox server: {e}") from None
        finally:
            theirs.close()
        self._attach(mine, timeout_s)

    def describe_failure(self) -> str:
        try:
            with open(os.path.join(self.root, "server.log"), errors="replace") as f:
                log = f.read()[-2000:]
        except OSError:
            log = ""
        return f"server log: {log.strip() or '(empty)'}"

    def _terminate(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                proc.wait(timeout=2.0)  # it exits by itself on EOF of the control socket
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                proc.wait(timeout=5.0)
        log = getattr(self, "_log", None)
        if log is not None:
            log.close()
        shutil.rmtree(self.root, ignore_errors=True)
