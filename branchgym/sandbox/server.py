"""The sandbox server: stdlib only, run inside each container (and on the host by the local
backend). It never runs user code itself; it forks workers (``worker.py``) that do.

Process model::

    server  (the zygote; PID 1 in a container; one control connection to the host)
      +- worker   (os.fork of the server, own session/process group, one connection per session)
           +- worker (os.fork of a worker on "fork": copy-on-write interpreter + copied workspace)

Transport: length-prefixed JSON frames (4-byte big-endian length, then UTF-8 JSON) over Unix
stream sockets. The host hands every worker its connection as one end of a ``socketpair``
passed with ``SCM_RIGHTS`` (to the server for "spawn", to the parent worker for "fork"), so
nothing listens inside the sandbox and user code cannot redirect the host anywhere.

Hostile code (see also ``wire.py``): the server never runs user code, ignores every signal it
can (``os.kill(1, SIGINT)`` is a no-op; as PID 1 of a container SIGKILL/SIGSTOP from inside are
dropped by the kernel) and is non-dumpable, as are the workers: no process of the sandbox uid
can ptrace them, read or write their memory (``/proc/<pid>/mem``) or take their fds. Every
worker is a child subreaper, so what its code starts (``setsid`` daemons included) stays below
it; closing or killing a worker kills its whole subtree except its forks. ``reset`` (a host
reused for the next episode) kills every process and wipes the workspaces and the scratch
places the host names (``/tmp``, ``/dev/shm``, ``/dev/mqueue``, System V IPC in a container).
Not covered: branches of one tree share a uid and a pid namespace, so one can still *signal*
another (a killed branch restarts with a note saying so); Docker's default seccomp profile
forbids the namespaces that would separate them.

Workers stay single-threaded (BLAS thread pools are pinned to 1) because ``fork()`` of a
threaded process is unsafe. A run is interrupted at ``timeout_s`` by ``SIGALRM`` (state kept);
the host SIGKILLs the worker's process group if that fails (state lost, workspace kept).

The hash of ``wire.py``, ``worker.py`` and this file is part of the image tag (``image.py``):
edit one and the image is rebuilt.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import socket
import sys
import time
import traceback

if __package__:
    from branchgym.sandbox.wire import (
        PROTOCOL_VERSION,
        FrameError,
        recv_frame,
        send_frame,
    )
    from branchgym.sandbox.procs import (
        kill_tree,
        proc_table,
        set_dumpable,
        set_subreaper,
        subtree,
        wipe_dir,
        wipe_sysv_ipc,
    )
    from branchgym.sandbox.worker import Worker
else:  # run as a script (in the image, or by the local backend): import the siblings
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from wire import PROTOCOL_VERSION, FrameError, recv_frame, send_frame  # type: ignore
    from procs import (  # type: ignore
        kill_tree,
        proc_table,
        set_dumpable,
        set_subreaper,
        subtree,
        wipe_dir,
        wipe_sysv_ipc,
    )
    from worker import Worker  # type: ignore

    del sys.path[0]  # user code must not import the sandbox's own modules by accident

__all__ = ["Server", "main", "SOURCE_FILES"]

SOURCE_FILES = ("wire.py", "procs.py", "worker.py", "server.py")
"""The files the sandbox image carries (all stdlib only); their hash is part of the image tag."""


KILL_WAIT_S = 5.0
"""how long ``kill`` waits for a killed worker's process group to disappear."""


def _ignore_signals() -> dict[int, object]:
    """Ignore every catchable signal except SIGCHLD; returns the dispositions to give workers
    back (SIG_IGN would survive into their code and its subprocesses)."""
    saved: dict[int, object] = {}
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
            continue
        try:
            saved[sig] = signal.getsignal(sig)
            signal.signal(sig, signal.SIG_IGN)
        except (OSError, ValueError, RuntimeError):
            saved.pop(sig, None)
    return saved


class Server:
    def __init__(self, ctl: socket.socket, ws_root: str, limits: dict) -> None:
        self.ctl = ctl
        self.ws_root = ws_root
        self.limits = limits
        self.status: dict[int, int] = {}
        self.signals: dict[int, object] = {}

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.status[pid] = status
            if len(self.status) > 4096:
                self.status.pop(next(iter(self.status)))

    def spawn(self, msg: dict, fds: list[int]) -> dict:
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            return {"ok": False, "error": f"spawn needs exactly one connection fd, got {len(fds)}"}
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # user code waits for its own
                for sig, handler in self.signals.items():
                    signal.signal(sig, signal.SIG_DFL if handler is None else handler)
                self.ctl.close()
                os.setsid()
                conn = socket.socket(fileno=fds[0])
                Worker.apply_limits(self.limits)
                Worker(conn, self.ws_root, msg["workspace"], self.limits).serve()
            except BaseException:
                traceback.print_exc()
            os._exit(70)
        os.close(fds[0])
        return {"ok": True, "pid": pid}

    def kill(self, msg: dict) -> dict:
        """SIGKILL a worker and everything below it, except the subtrees of ``msg["keep"]``
        (the other live workers: its forks), and wait (≤ ``KILL_WAIT_S``) until they are gone.

        Waiting matters after a fork bomb: hundreds of dying processes still hold the pids limit
        and the CPU for a while, so a worker spawned at once could fail to start, and the next
        run would compete with them.
        """
        pid = int(msg["pid"])
        keep = {int(p) for p in msg.get("keep", ()) if int(p) != pid}
        # Every worker leads its own process group (setsid), which none of its forks shares.
        n = kill_tree(pid, keep, include_root=True, wait_s=KILL_WAIT_S, group=pid)
        self.reap()
        return {"ok": True, "killed": n}

    def exit_status(self, msg: dict) -> dict:
        pid = int(msg["pid"])
        deadline = time.monotonic() + 0.5
        while True:  # the host may see EOF a moment before the child becomes a zombie
            self.reap()
            if pid in self.status or time.monotonic() > deadline:
                break
            if proc_table().get(pid, (None, None, None))[0] != os.getpid():
                break  # not (or no longer) our child: we cannot learn more
            time.sleep(0.005)
        status = self.status.get(pid)
        if status is None:
            return {"ok": True, "known": False}
        if os.WIFSIGNALED(status):
            return {"ok": True, "known": True, "signal": os.WTERMSIG(status)}
        return {"ok": True, "known": True, "exit_code": os.WEXITSTATUS(status)}

    def reset(self, msg: dict | None = None) -> dict:
        """Kill every descendant and wipe the workspace root and the scratch directories the
        host names (``msg["scratch"]``; plus System V IPC with ``msg["ipc"]``), for reuse."""
        msg = msg or {}
        me = os.getpid()
        for _ in range(3):
            if not subtree(me):
                break
            kill_tree(me, wait_s=KILL_WAIT_S, group=-1 if me == 1 else None)
            self.reap()
        left = subtree(me)
        wiped = wipe_dir(self.ws_root)
        for path in msg.get("scratch", ()):
            wiped = wipe_dir(str(path)) and wiped
        if msg.get("ipc"):
            wiped = wipe_sysv_ipc() and wiped
        return {"ok": True, "clean": not left and wiped, "left": len(left)}

    def preload(self) -> list[str]:
        """Import ``limits["preload"]`` once here, so every worker forks with them loaded."""
        loaded = []
        for name in self.limits.get("preload", ()):
            try:
                importlib.import_module(name)
                loaded.append(name)
            except Exception:  # not installed in this sandbox: users get the ImportError
                pass
        return loaded

    def serve(self) -> None:
        loaded = self.preload()
        # Everything imported so far is shared copy-on-write with every worker; keep the GC
        # from touching (and so copying) those pages in each of them.
        gc.collect()
        gc.freeze()
        # Reap at once (killed fork bombs, orphans handed to us as subreaper / PID 1), not only
        # when the next request comes; the handler runs between bytecodes, recv() resumes.
        signal.signal(signal.SIGCHLD, lambda _sig, _frame: self.reap())
        send_frame(self.ctl, {"op": "hello", "pid": os.getpid(), "version": PROTOCOL_VERSION,
                              "python": sys.version.split()[0], "uid": os.getuid(),
                              "preloaded": loaded})
        while True:
            try:
                msg, fds = recv_frame(self.ctl, with_fds=True)
            except (FrameError, OSError):
                self.reset()  # host gone: take every worker down with us
                return
            self.reap()
            op = msg.get("op")
            try:
                if op == "spawn":
                    reply = self.spawn(msg, fds)
                elif op == "kill":
                    reply = self.kill(msg)
                elif op == "status":
                    reply = self.exit_status(msg)
                elif op == "reset":
                    reply = self.reset(msg)
                elif op == "ping":
                    reply = {"ok": True, "workers": len(subtree(os.getpid()))}
                elif op == "shutdown":
                    self.reset()
                    send_frame(self.ctl, {"ok": True})
                    return
                else:
                    reply = {"ok": False, "error": f"unknown op {op!r}"}
            except Exception as e:
                reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            reply["seq"] = msg.get("seq")
            send_frame(self.ctl, reply)


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="branchgym sandbox server (stdlib only)")
    p.add_argument("--fd", type=int, help="an inherited, connected control socket fd")
    p.add_argument("--connect", help="a Unix socket path to connect to (the host listens)")
    p.add_argument("--workspace-root", required=True)
    p.add_argument("--limits", default="{}", help="JSON: worker_memory_mb, file_size_mb, nproc")
    args = p.parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMEXPR_NUM_THREADS"):
        os.environ[var] = "1"  # workers must stay single-threaded to fork safely
    os.environ.setdefault("MPLBACKEND", "Agg")
    if args.fd is not None:
        ctl = socket.socket(fileno=args.fd)
    elif args.connect:
        ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ctl.connect(args.connect)
    else:
        p.error("give --fd or --connect")
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
    except OSError:
        pass
    os.makedirs(args.workspace_root, exist_ok=True)
    set_subreaper()
    set_dumpable(False)  # no worker may ptrace us or read /proc/<server>/mem
    server = Server(ctl, args.workspace_root, json.loads(args.limits))
    server.signals = _ignore_signals()
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
