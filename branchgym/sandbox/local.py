"""The local backend: the sandbox server as a host subprocess (under bubblewrap when installed).

Same protocol and behaviour as the Docker backend, with rlimits on each interpreter (address
space, CPU, file size, processes). It is NOT isolation (``isolation_note`` says what is and is
not kept apart in each mode, and it warns once). In both modes user code gets a minimal
environment (``PASSED_ENV``, never the trainer's secrets) and, when started as root, runs as
``limits.local_uid``: under bubblewrap always (``/root`` and the home directory hidden, the
interpreter re-bound readable); without it only when that uid can read the interpreter, else
the start is refused unless the user opts in (``allow_root`` / ``BRANCHGYM_SANDBOX_ALLOW_ROOT``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
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

__all__ = ["LocalHost", "LocalSandboxWarning", "server_path", "bwrap_available", "jail_tmp_binds",
           "readable_by", "isolation_note", "ALLOW_ROOT_ENV", "PASSED_ENV"]

ALLOW_ROOT_ENV = "BRANCHGYM_SANDBOX_ALLOW_ROOT"
"""Set to 1: the same opt-in as ``SandboxLimits(allow_root=True)``."""
PASSED_ENV = ("LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "LD_LIBRARY_PATH")
"""The only variables of this process that user code sees (plus PATH, HOME, TMPDIR set here)."""

# Runs first in the server process: Python's own SIGINT handler (even if the trainer ignores
# SIGINT: ignored signals stay ignored across exec), then the uid drop (argv[1]; -1: keep),
# no_new_privs (setuid programs cannot give root back), then the server script itself.
_BOOT = (
    "import os, runpy, signal, sys\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "uid = int(sys.argv[1])\n"
    "if uid >= 0:\n"
    "    os.setgroups([]); os.setgid(uid); os.setuid(uid)\n"
    "try:\n"
    "    import ctypes\n"
    "    ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)\n"
    "except Exception:\n"
    "    pass\n"
    "sys.argv = sys.argv[2:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)

_WARNED = False
_CLEANED = False


class LocalSandboxWarning(UserWarning):
    """The local backend runs code on this machine with rlimits only: no isolation."""


def server_path() -> str:
    from branchgym.sandbox import server

    return os.path.abspath(server.__file__)


def _interpreter(limits: SandboxLimits) -> str:
    return limits.python or sys.executable


def needed_paths(python: str) -> list[str]:
    """What the server needs to read: its own directory and the interpreter's installation."""
    paths = [os.path.dirname(server_path()), os.path.dirname(os.path.abspath(python)),
             os.path.dirname(os.path.dirname(os.path.realpath(python)))]
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        paths += [sys.prefix, sys.base_prefix]
    out: list[str] = []
    for path in sorted({os.path.realpath(p) for p in paths}, key=len):
        if not any(path == o or path.startswith(o.rstrip(os.sep) + os.sep) for o in out):
            out.append(path)
    return out


def jail_tmp_binds(python: str | None = None) -> list[str]:
    """Paths under ``/tmp`` the jail must still see read-only: the sandbox server's directory
    and the Python installation, when a checkout or a venv lives in /tmp (the jail's /tmp is a
    private tmpfs that would hide them)."""
    tmp = os.path.realpath("/tmp")
    return [p for p in needed_paths(python or sys.executable)
            if p == tmp or p.startswith(tmp + os.sep)]


def _allows(st: os.stat_result, uid: int, gid: int, bit: int) -> bool:
    if st.st_uid == uid:
        return bool((st.st_mode >> 6) & bit)
    if st.st_gid == gid:
        return bool((st.st_mode >> 3) & bit)
    return bool(st.st_mode & bit)


def _blocked_at(path: str, uid: int, gid: int) -> str | None:
    """The first directory on the way to ``path`` that ``uid:gid`` cannot search, ``path``
    itself if it cannot read it, or None."""
    for p in dict.fromkeys((os.path.abspath(path), os.path.realpath(path))):
        parts = [x for x in p.split(os.sep) if x]
        for i in range(len(parts)):
            d = os.sep + os.sep.join(parts[:i])
            try:
                if not _allows(os.stat(d), uid, gid, 1):
                    return d
            except OSError:
                return d
        try:
            st = os.stat(p)
        except OSError:
            return p
        if not _allows(st, uid, gid, 4) or (os.path.isdir(p) and not _allows(st, uid, gid, 1)):
            return p
    return None


def readable_by(path: str, uid: int, gid: int) -> bool:
    """Whether ``uid:gid`` (no supplementary groups) can reach and read ``path``."""
    return _blocked_at(path, uid, gid) is None


def bwrap_available() -> bool:
    return shutil.which("bwrap") is not None


def _allow_root(limits: SandboxLimits) -> bool:
    return limits.allow_root or os.environ.get(ALLOW_ROOT_ENV, "") not in ("", "0")


def isolation_note(jailed: bool, uid: int, limits: SandboxLimits) -> str:
    """What the local backend keeps apart, and what it does not, in one mode."""
    me = os.geteuid()
    if uid == 0:
        who = "as ROOT with every capability (allow_root): it can do anything on this machine"
    elif uid != me:
        who = f"as uid {uid} (not root, no capabilities)"
    else:
        who = f"as you (uid {uid}), with every right you have"
    nproc = (f"RLIMIT_NPROC={limits.pids} counted over every process of uid {uid} on this machine"
             if uid != 0 else "no process limit (root ignores RLIMIT_NPROC)")
    env = (f"a minimal environment (only {', '.join(PASSED_ENV)} of yours, so no API keys or "
           f"tokens)")
    if jailed:
        seen = ("a read-only view of the host's files (/root and your home hidden; other "
                "files that uid can read stay readable), a private /tmp and process table, "
                "no network")
    else:
        seen = ("no jail: it reads and writes every file that uid can, opens network "
                "connections and sees the host's processes" + (
                    " (and their environment in /proc: the trainer's secrets included)"
                    if uid == me else ""))
    return (f"user code runs {who}; {seen}; {env}; rlimits on memory, file size and processes "
            f"({nproc}). Not isolated: the kernel, CPU time and total memory")


def warn_not_isolated(reason: str = "") -> None:
    global _WARNED
    if _WARNED:
        return
    _WARNED = True
    limits = SandboxLimits()
    root = os.geteuid() == 0
    jailed = bwrap_available()
    if root and not jailed and _blocked(limits) and _allow_root(limits):
        uid = 0
    else:
        uid = limits.local_uid if root else os.geteuid()
    how = ("under bubblewrap" if jailed
           else "without a jail (install bubblewrap for a read-only, network-less one)")
    warnings.warn(
        f"branchgym sandbox: using the local backend{reason}, which runs code on this machine "
        f"{how}; it is not isolation: {isolation_note(jailed, uid, limits)}. Use "
        f"backend='docker' (and `branchgym sandbox build-image`) for untrusted code.",
        LocalSandboxWarning,
        stacklevel=4,
    )


def _blocked(limits: SandboxLimits) -> str | None:
    """The first path the sandbox uid cannot read to run the server, or None."""
    uid = limits.local_uid
    for path in needed_paths(_interpreter(limits)):
        blocked = _blocked_at(path, uid, uid)
        if blocked:
            return blocked
    return None


def _mount_point_dirs(path: str, tmpfs: list[str]) -> list[str]:
    """bwrap arguments that create, searchable by all, the directories between the tmpfs
    ``path`` lies in and ``path`` (bwrap would make them 0700: the dropped uid could not pass)."""
    real = os.path.realpath(path)
    under = [t for t in tmpfs if real.startswith(os.path.realpath(t).rstrip(os.sep) + os.sep)]
    if not under:
        return []
    top = max((os.path.realpath(t) for t in under), key=len)
    out: list[str] = []
    d = os.path.dirname(real)
    while d != top and d.startswith(top):
        out[:0] = ["--perms", "0755", "--dir", d]
        d = os.path.dirname(d)
    return out


def _hidden_dirs(needed: list[str], uid: int) -> list[str]:
    """Directories the jail covers with an empty tmpfs: /root, this user's home, and (for the
    dropped uid) the first unsearchable directory above each needed path."""
    homes = ["/root"]
    try:
        homes.append(pwd.getpwuid(os.geteuid()).pw_dir)
    except KeyError:
        pass
    if uid >= 0:
        homes += [b for p in needed if (b := _blocked_at(os.path.dirname(p), uid, uid))]
    out = []
    for d in sorted({os.path.realpath(h) for h in homes}, key=len):
        inside_needed = any(d == p or d.startswith(p.rstrip(os.sep) + os.sep) for p in needed)
        if d != os.sep and os.path.isdir(d) and not inside_needed:
            out.append(d)
    return out


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
    """The sandbox server as a subprocess; its control socket is inherited (no listener).

    ``jailed``: under bubblewrap. ``uid``: the uid user code runs as. ``isolation``: what that
    means (``isolation_note``).
    """

    backend = "local"

    def __init__(self, limits: SandboxLimits, no_jail_because: str = "") -> None:
        super().__init__(limits)
        self.root = tempfile.mkdtemp(prefix=f"branchgym-local-{os.getpid()}-")
        self.ws_root = os.path.join(self.root, "ws")
        os.makedirs(self.ws_root)
        self.proc: subprocess.Popen | None = None
        self.jailed = False
        self.uid = os.geteuid()
        self.isolation = ""
        self._no_jail_because = no_jail_because or (
            "bwrap=False" if not limits.bwrap else "bubblewrap is not installed")

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
            host = cls(dataclasses.replace(limits, bwrap=False),
                       no_jail_because="bubblewrap could not start here")
            try:
                host._launch(timeout_s)
            except BaseException:
                host.close()
                raise
        except BaseException:
            host.close()
            raise
        return host

    def _drop_to(self) -> int:
        """The uid to run the server as (-1: keep this process's); refuses root without a jail
        unless the user opted in."""
        if os.geteuid() != 0:
            return -1
        uid = self.limits.local_uid
        if self.jailed:
            return uid  # the jail re-binds what the server needs where uid can read it
        blocked = _blocked(self.limits)
        if blocked is None:
            return uid
        if _allow_root(self.limits):
            warnings.warn(f"branchgym sandbox: the local backend runs user code as root "
                          f"(allow_root): uid {uid} cannot read {blocked} and there is no jail "
                          f"({self._no_jail_because}). Code can do anything on this machine.",
                          LocalSandboxWarning, stacklevel=4)
            return -1
        raise SandboxError(
            f"the local sandbox would run user code as root with every capability: there is "
            f"no jail ({self._no_jail_because}) and uid {uid} cannot read {blocked}, which the "
            f"interpreter {_interpreter(self.limits)} needs. Install bubblewrap (apt-get "
            f"install bubblewrap), give an interpreter uid {uid} can read "
            f"(python='/usr/bin/python3'), or use backend='docker'; to run it as root anyway "
            f"(trusted code only) pass allow_root=True or set {ALLOW_ROOT_ENV}=1")

    def _env(self, tmp: str) -> dict[str, str]:
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        env.setdefault("LANG", "C.UTF-8")
        python_dir = os.path.dirname(os.path.abspath(_interpreter(self.limits)))
        env.update(PATH=f"{python_dir}:/usr/local/bin:/usr/bin:/bin", HOME=self.ws_root,
                   TMPDIR=tmp, **self.limits.server_env())
        return env

    def _command(self, fd: int) -> list[str]:
        python = _interpreter(self.limits)
        self.jailed = self.limits.bwrap and bwrap_available()
        drop = self._drop_to()
        self.uid = drop if drop >= 0 else os.geteuid()
        self.isolation = isolation_note(self.jailed, self.uid, self.limits)
        tmp = "/tmp" if self.jailed else os.path.join(self.root, "tmp")
        os.makedirs(tmp, exist_ok=True)
        if drop >= 0:
            for path in (self.root, self.ws_root, tmp):
                os.chown(path, drop, drop)
        self._environ = self._env(tmp)
        cmd = [python, "-I", "-c", _BOOT, str(drop), server_path(), "--fd", str(fd),
               "--workspace-root", self.ws_root,
               "--limits", json.dumps(self.limits.worker_limits())]
        if not self.jailed:
            return cmd
        # Read-only view of the host, private /tmp, /root and the home hidden (the interpreter
        # and the server re-bound), the workspace root writable, no network.
        # As root: no user namespace (the server drops to uid itself); else one (--unshare-all).
        # No --die-with-parent: it follows the spawning *thread*; EOF on the control socket
        # is what stops the server when this process goes away.
        needed = needed_paths(python)
        unshare = (["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                    "--unshare-cgroup-try"] if drop >= 0 else ["--unshare-all"])
        hide = [a for d in _hidden_dirs(needed, drop) for a in ("--perms", "0755", "--tmpfs", d)]
        tmpfs = ["/tmp", *_hidden_dirs(needed, drop)]
        keep = [a for p in needed for a in (*_mount_point_dirs(p, tmpfs), "--ro-bind", p, p)]
        return ["bwrap", *unshare, "--ro-bind", "/", "/", "--dev", "/dev",
                "--perms", "1777", "--tmpfs", "/dev/shm", "--proc", "/proc",
                "--perms", "1777", "--tmpfs", "/tmp", *hide, *keep,
                *_mount_point_dirs(self.root, tmpfs), "--bind", self.root, self.root,
                "--chdir", self.ws_root, "--new-session", *cmd]

    def _launch(self, timeout_s: float) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._log = open(os.path.join(self.root, "server.log"), "wb")
        try:
            cmd = self._command(theirs.fileno())
            self.proc = subprocess.Popen(
                cmd,
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._log,
                start_new_session=True,  # a Ctrl-C in the terminal must not hit the sandbox
                close_fds=True,
                env=self._environ,  # never this process's: no secrets reach user code
                cwd=self.ws_root,
            )
        except OSError as e:
            mine.close()
            raise SandboxError(f"could not start the local sandbox server: {e}") from None
        except BaseException:
            mine.close()
            raise
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

    def scratch(self) -> tuple[tuple[str, ...], bool]:
        """In the jail: its private ``/tmp`` and ``/dev/shm`` and its own IPC namespace. Without
        it: the ``TMPDIR`` this host gives its code (``tempfile``'s folder); the machine's own
        ``/tmp``, ``/dev/shm`` and IPC are shared and not wiped (a documented limit)."""
        if self.jailed:
            return ("/tmp", "/dev/shm"), True
        return (os.path.join(self.root, "tmp"),), False

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
