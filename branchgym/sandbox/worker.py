"""A sandbox worker: one persistent interpreter bound to one workspace and one connection.

Runs user code with ``exec`` in a persistent namespace (a trailing bare expression is printed,
as ARPO's python tool does), captures stdout/stderr at the Python level and at the fd level
(memfds, so subprocess output is kept too), caps both with a note, and turns every exception in
user code into data. ``fork`` = ``os.fork()`` (copy-on-write interpreter) + a copy of the
workspace directory (bounded: ``FORK_MAX_FILES`` entries, the free space, ``FORK_COPY_S``), so
a fork succeeds in its normal time or is refused at once with a reason. Whatever the code did
to its own process (closed fds 1/2, lowered ``RLIMIT_NOFILE``, ``chdir('/')``, deleted its
workspace) cannot make a fork lose state. Every reply echoes the request's ``seq``
(see ``wire.py`` for the threat model). Stdlib only: this file is copied into the sandbox image.
"""

from __future__ import annotations

import ast
import errno
import fcntl
import io
import linecache
import os
import resource
import shutil
import signal
import socket
import sys
import time
import traceback

if __package__:
    from branchgym.sandbox.procs import (
        CopyRefused,
        copy_workspace,
        kill_tree,
        set_dumpable,
        set_subreaper,
    )
    from branchgym.sandbox.wire import FrameError, recv_frame, send_frame
else:  # inside the sandbox image, next to this file
    from procs import (  # type: ignore[no-redef]
        CopyRefused,
        copy_workspace,
        kill_tree,
        set_dumpable,
        set_subreaper,
    )
    from wire import FrameError, recv_frame, send_frame  # type: ignore[no-redef]

__all__ = ["Worker", "FORK_MAX_FILES", "FORK_COPY_S"]

_CELL_HISTORY = 64  # source of the last cells kept in linecache for tracebacks
FORK_MAX_FILES = 10_000
"""A fork refuses (at once, with a reason) to copy a workspace with more entries than this."""
FORK_COPY_S = 20.0
"""A fork whose workspace copy takes longer is refused (the host waits 60 s for a fork)."""


def _nofile_error() -> str:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return (f"the interpreter has no file descriptor left for the fork: the code lowered "
            f"RLIMIT_NOFILE to {soft} (hard limit {hard}) or holds that many files open; "
            f"close files or fork before lowering the limit")


def _high_fd(fd: int) -> int:
    """Move ``fd`` out of 0-2 (a received fd lands on the lowest free number: on 1 after
    ``os.close(1)``, where the output capture would then overwrite it)."""
    if fd > 2:
        return fd
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return new


class _Timeout(BaseException):
    """Raised by SIGALRM inside user code; a BaseException so ``except Exception`` won't eat it."""


def _on_alarm(signum, frame):
    raise _Timeout()


class _Capture(io.TextIOBase):
    """A text stream that keeps the first ``cap`` characters and counts the rest."""

    def __init__(self, cap: int, fd: int) -> None:
        self._parts: list[str] = []
        self._kept = 0
        self.total = 0
        self._cap = cap
        self._fd = fd
        self.buffer = _BinaryCapture(self)

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]
        return "replace"

    def write(self, s) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        n = len(s)
        self.total += n
        room = self._cap - self._kept
        if room > 0:
            piece = s[:room]
            self._parts.append(piece)
            self._kept += len(piece)
        return n

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:  # C-level writers (faulthandler, subprocess) use the captured fd
        return self._fd

    def flush(self) -> None:
        pass

    def close(self) -> None:  # "closing stdout" must not break the session: ignore it
        pass

    def value(self) -> str:
        return "".join(self._parts)


class _BinaryCapture(io.RawIOBase):
    def __init__(self, text: _Capture) -> None:
        self._text = text

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self._text.write(bytes(b).decode("utf-8", "replace"))
        return len(b)

    def close(self) -> None:
        pass


def _cut_note(kept: int, total: int, cap: int) -> str:
    return (
        f"\n[... {total - kept:,} more characters cut: output is capped at {cap:,} characters "
        f"per stream ...]\n"
    )


def _merge(py: _Capture, fd: int, cap: int) -> str:
    """Python-level text, then what C code / subprocesses wrote to the fd; capped with a note."""
    text = py.value()
    total = py.total
    try:
        size = os.fstat(fd).st_size
    except OSError:
        size = 0
    if size:
        room = max(cap - len(text), 0)
        if room * 4 >= size:
            decoded = os.pread(fd, size, 0).decode("utf-8", "replace")
            total += len(decoded)
        else:  # too much to read back: keep the head, count bytes as characters
            decoded = os.pread(fd, room * 4, 0).decode("utf-8", "replace")
            total += size
        text += decoded[:room]
    if total > len(text):
        return text + _cut_note(len(text), total, cap)
    return text


class Worker:
    """One persistent interpreter bound to one workspace directory and one host connection."""

    def __init__(self, conn: socket.socket, ws_root: str, ws_name: str, limits: dict) -> None:
        self.conn = conn
        self.ws_root = ws_root
        self.limits = limits
        self.ns: dict = {"__name__": "__main__", "__builtins__": __builtins__}
        self.children: list[int] = []
        self.cells = 0
        self._nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        set_subreaper()
        self._enter_workspace(ws_name)
        self._new_output_fds()

    # -- setup ---------------------------------------------------------------------------------
    def _enter_workspace(self, ws_name: str) -> None:
        self.ws_name = ws_name
        path = os.path.join(self.ws_root, ws_name)
        os.makedirs(path, exist_ok=True)
        os.chdir(path)
        os.environ["HOME"] = path
        os.environ["PWD"] = path
        old = getattr(self, "_path_entry", None)
        if old in sys.path:
            sys.path.remove(old)
        sys.path.insert(0, path)  # modules written to the workspace are importable
        self._path_entry = path

    def _new_output_fds(self) -> None:
        # Fresh memfds after every fork: a dup'd fd would share its offset with the parent.
        for target, name in ((1, "stdout"), (2, "stderr")):
            fd = os.memfd_create(f"bg-{name}", 0)
            os.dup2(fd, target)
            os.close(fd)

    @staticmethod
    def apply_limits(limits: dict) -> None:
        def setl(which: int, value: int | None) -> None:
            if value is None or value < 0:
                return
            try:
                _soft, hard = resource.getrlimit(which)
                if hard != resource.RLIM_INFINITY:
                    value = min(value, hard)
                resource.setrlimit(which, (value, value))
            except (ValueError, OSError):
                pass

        mb = 1024 * 1024
        if limits.get("worker_memory_mb"):
            setl(resource.RLIMIT_AS, int(limits["worker_memory_mb"]) * mb)
        if limits.get("file_size_mb"):
            setl(resource.RLIMIT_FSIZE, int(limits["file_size_mb"]) * mb)
        if limits.get("nproc") and os.getuid() != 0:
            setl(resource.RLIMIT_NPROC, int(limits["nproc"]))
        setl(resource.RLIMIT_CORE, 0)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # oversized writes fail with EFBIG instead
        set_dumpable(True)  # /proc/self is root's while non-dumpable
        try:  # be the OOM killer's first choice, never the server
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")
        except OSError:
            pass
        set_dumpable(False)  # no other branch may trace us or read our memory / fds

    # -- loop ----------------------------------------------------------------------------------
    def serve(self) -> None:
        send_frame(self.conn, {"op": "ready", "pid": os.getpid(), "workspace": self.ws_name})
        while True:
            try:
                msg, fds = recv_frame(self.conn, with_fds=True)
            except (FrameError, OSError):
                self._exit()
            self._reap()
            op = msg.get("op")
            try:
                if op == "run":
                    reply = self.run(msg)
                elif op == "fork":
                    reply = self.fork(msg, fds)
                    if reply is None:  # we are the child: continue serving our own connection
                        continue
                elif op == "ping":
                    reply = {"ok": True, "pid": os.getpid()}
                elif op == "exit":
                    self._exit()
                else:
                    reply = {"ok": False, "error": f"unknown op {op!r}"}
            except Exception as e:  # a bug here must not kill the session silently
                reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            reply["seq"] = msg.get("seq")
            try:
                send_frame(self.conn, reply)
            except OSError:
                self._exit()

    def _exit(self) -> None:
        """Session over: take down everything the code started (not our forks), then exit."""
        kill_tree(os.getpid(), self._branches())
        os._exit(0)

    def _branches(self) -> set[int]:
        self._reap()
        return set(self.children)

    def _reap(self) -> None:
        for pid in list(self.children):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.children.remove(pid)

    # -- fork ----------------------------------------------------------------------------------
    def fork(self, msg: dict, fds: list[int]) -> dict | None:
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            why = (_nofile_error() if msg.get("_fds_truncated") or not fds else
                   f"fork needs exactly one connection fd, got {len(fds)}")
            return {"ok": False, "error": why}
        new_name = msg["workspace"]
        src = os.path.join(self.ws_root, self.ws_name)
        dst = os.path.join(self.ws_root, new_name)
        cwd = None
        try:
            cwd = os.getcwd()
        except OSError:  # the code deleted its working directory
            pass
        try:
            copy_workspace(src, dst, max_files=FORK_MAX_FILES, deadline_s=FORK_COPY_S)
        except (CopyRefused, OSError, shutil.Error) as e:
            os.close(fds[0])
            shutil.rmtree(dst, ignore_errors=True)
            if getattr(e, "errno", None) == errno.EMFILE:
                return {"ok": False, "error": _nofile_error()}
            return {"ok": False, "error": f"copying the workspace failed: {e}"}
        sys.stdout.flush()
        try:
            pid = os.fork()
        except OSError as e:  # EAGAIN: the pids limit is full
            os.close(fds[0])
            shutil.rmtree(dst, ignore_errors=True)
            return {"ok": False, "error": f"{type(e).__name__}: {e}"}
        if pid == 0:
            self.conn.close()
            self.conn = socket.socket(fileno=_high_fd(fds[0]))
            self.children = []
            os.setsid()
            set_subreaper()
            self._enter_workspace(new_name)
            self._new_output_fds()
            if cwd is not None and cwd != src:  # the code's cwd, mirrored into our copy
                rel = os.path.relpath(cwd, src)
                try:
                    outside = rel == ".." or rel.startswith("../")
                    os.chdir(cwd if outside else os.path.join(dst, rel))
                except OSError:
                    pass
            send_frame(self.conn, {"op": "ready", "pid": os.getpid(), "workspace": new_name})
            return None
        os.close(fds[0])
        self.children.append(pid)
        return {"ok": True, "pid": pid}

    # -- run -----------------------------------------------------------------------------------
    def _compile(self, code: str):
        self.cells += 1
        name = f"<cell {self.cells}>"
        lines = code.splitlines(True)
        linecache.cache[name] = (len(code), None, lines, name)
        old = f"<cell {self.cells - _CELL_HISTORY}>"
        linecache.cache.pop(old, None)
        tree = ast.parse(code, name, "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        parts = [(compile(tree, name, "exec"), False)]
        if last is not None:
            parts.append((compile(last, name, "eval"), True))
        return parts

    def run(self, msg: dict) -> dict:
        code = msg.get("code", "")
        timeout_s = float(msg.get("timeout_s", 10.0))
        cap = int(msg.get("max_output_chars", 20000))
        t0 = time.perf_counter()
        out, err = _Capture(cap, 1), _Capture(cap, 2)
        for fd in (1, 2):
            try:
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
            except OSError:  # user code closed or replaced fd 1/2: give it a fresh one
                fresh = os.memfd_create("bg-out", 0)
                os.dup2(fresh, fd)
                os.close(fresh)
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        error = None
        timed_out = False
        try:
            signal.signal(signal.SIGALRM, _on_alarm)
            self._arm_cpu_limit(timeout_s)
            signal.setitimer(signal.ITIMER_REAL, timeout_s)
            try:
                for compiled, is_expr in self._compile(code):
                    if is_expr:
                        value = eval(compiled, self.ns)
                        if value is not None:
                            print(value)
                    else:
                        exec(compiled, self.ns)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except _Timeout:
            timed_out = True
            stopped = kill_tree(os.getpid(), self._branches())
            error = (
                f"TimeoutError: the code ran longer than {timeout_s:g} s and was interrupted; "
                f"the interpreter state so far is kept"
                + (f"; {stopped} process(es) it started were killed" if stopped else "")
            )
        except SystemExit as e:
            error = f"SystemExit: {e.code} (the session keeps running)"
        except BaseException as e:  # user errors are data
            error = self._format_error(e, err)
        finally:
            sys.stdout, sys.stderr = saved
        self._restore_nofile()
        if error is not None and len(error) > cap:  # a huge exception message is output too
            error = error[:cap] + _cut_note(cap, len(error), cap)
        try:
            stdout = _merge(out, 1, cap)
            stderr = _merge(err, 2, cap)
        except Exception as e:  # never lose the result because of odd fds
            stdout, stderr = out.value(), err.value() + f"\n[output capture failed: {e}]"
        return {
            "ok": True,
            "stdout": stdout,
            "stderr": stderr,
            "error": error,
            "timed_out": timed_out,
            "duration_s": time.perf_counter() - t0,
        }

    def _restore_nofile(self) -> None:
        """A soft RLIMIT_NOFILE the code lowered is raised back, so that a fork can still
        receive its connection (a lowered hard limit cannot be: fork then says so)."""
        try:
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            want = self._nofile if hard == resource.RLIM_INFINITY else min(self._nofile, hard)
            if soft < want:
                resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass

    def _arm_cpu_limit(self, timeout_s: float) -> None:
        # Backstop for code that blocks SIGALRM: SIGXCPU soon after the CPU budget is spent.
        try:
            used = resource.getrusage(resource.RUSAGE_SELF)
            spent = used.ru_utime + used.ru_stime
            _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
            want = int(spent + timeout_s + 2)
            if hard != resource.RLIM_INFINITY:
                want = min(want, hard)
            resource.setrlimit(resource.RLIMIT_CPU, (want, hard))
        except (ValueError, OSError):
            pass

    @staticmethod
    def _format_error(e: BaseException, err: _Capture) -> str:
        tb = e.__traceback__
        while tb is not None and not tb.tb_frame.f_code.co_filename.startswith("<cell"):
            tb = tb.tb_next  # drop the server's own frames
        if isinstance(e, SyntaxError):
            tb = None
        lines = traceback.format_exception(type(e), e, tb)
        err.write("".join(lines))
        last = traceback.format_exception_only(type(e), e)[-1].strip()
        return last or type(e).__name__
