"""Process trees, workspace copies and scratch wipes for the sandbox server and its workers.

Stdlib only: this file is copied into the sandbox image next to ``server.py``.

Processes are tracked by *descendants*, not by process group or session: every worker is a
child subreaper (``PR_SET_CHILD_SUBREAPER``), so whatever its code starts stays below it in the
process tree even after ``setsid()`` and a double fork. Killing a worker stops (``SIGSTOP``) its
whole subtree round after round, so that nothing can fork behind our back, then SIGKILLs it;
the subtrees of other live workers (its forks) are skipped.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import stat
import time

__all__ = ["proc_table", "subtree", "kill_tree", "set_subreaper", "set_dumpable",
           "copy_workspace", "CopyRefused", "wipe_dir", "wipe_sysv_ipc"]

_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


def set_subreaper() -> None:
    """Orphans of our descendants come back to us (not to PID 1), so we can find them."""
    try:
        _libc().prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def set_dumpable(on: bool) -> None:
    """Non-dumpable: no process of the same uid may ptrace us, open ``/proc/<pid>/mem``, or take
    our fds (``pidfd_getfd``). Inherited by ``fork()``, reset by ``execve``."""
    try:
        _libc().prctl(_PR_SET_DUMPABLE, 1 if on else 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def proc_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, pgrp, state letter) for every process we can see."""
    table: dict[int, tuple[int, int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                st = f.read()
            fields = st[st.rindex(b")") + 2:].split()
            table[int(entry)] = (int(fields[1]), int(fields[2]), fields[0].decode())
        except (OSError, ValueError, IndexError):
            continue
    return table


def subtree(root: int, skip: frozenset[int] | set[int] = frozenset(),
            table: dict[int, tuple[int, int, str]] | None = None) -> list[int]:
    """Live (non-zombie) descendants of ``root``, not entering the subtrees rooted in ``skip``."""
    table = proc_table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (ppid, _g, _s) in table.items():
        children.setdefault(ppid, []).append(pid)
    out: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child in skip or child == root:
                continue
            if table[child][2] != "Z":
                out.append(child)
            stack.append(child)
    return out


def _signal_all(sig: int, group: int | None) -> None:
    """One syscall for the many: the process group ``group`` (< 0: every process we may signal,
    only ever used by a container's PID 1)."""
    if group is None:
        return
    try:
        if group < 0:
            os.kill(-1, sig)
        else:
            os.killpg(group, sig)
    except OSError:
        pass


def kill_tree(root: int, skip: frozenset[int] | set[int] = frozenset(), *,
              include_root: bool = False, wait_s: float = 5.0, group: int | None = None) -> int:
    """Stop, then SIGKILL, ``root``'s descendants (and ``root`` with ``include_root``), except
    the subtrees in ``skip``; wait (≤ ``wait_s``) until they are gone. Returns how many.

    ``group``: a process group to stop first with one ``killpg`` (a fork bomb's hundreds of
    spinning processes would otherwise starve the scan of ``/proc`` of CPU); ``-1``: everything
    (PID 1 of a container only)."""
    me = os.getpid()
    _signal_all(signal.SIGSTOP, group)
    stopped: set[int] = set()
    for _ in range(50):
        table = proc_table()
        new = set(subtree(root, skip, table)) - stopped - {me}
        if include_root and root not in stopped and root in table and table[root][2] != "Z":
            new.add(root)
        if not new:
            break
        for pid in new:
            try:
                os.kill(pid, signal.SIGSTOP)
            except OSError:
                pass
        stopped |= new
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    _signal_all(signal.SIGKILL, group)
    deadline = time.monotonic() + wait_s
    while stopped:
        for pid in list(stopped):  # reap the ones that are (or became, as orphans) our children
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        table = proc_table()
        # Done when each is gone, or a zombie of another parent (who reaps it; as subreapers the
        # server and the workers do): zombies of ours would hold the pids limit.
        if not any(p in table and (table[p][2] != "Z" or table[p][0] == me) for p in stopped):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.002)
    return len(stopped - {root})


# ---------------------------------------------------------------------------- workspaces


class CopyRefused(Exception):
    """The workspace cannot be copied within the fork's bounds; the message says why."""


def _scan(src: str, max_files: int) -> tuple[int, int]:
    """(entries, bytes) under ``src``; stops early (CopyRefused) past ``max_files`` entries."""
    n = size = 0
    stack = [src]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                n += 1
                if n > max_files:
                    raise CopyRefused(
                        f"the workspace holds more than {max_files:,} files and directories; a "
                        f"fork copies the workspace, so delete files (e.g. shutil.rmtree) before "
                        f"forking")
                st = e.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(e.path)
                elif stat.S_ISREG(st.st_mode):
                    size += st.st_size
    return n, size


def copy_workspace(src: str, dst: str, *, max_files: int, deadline_s: float) -> None:
    """Copy the workspace ``src`` to the new ``dst`` within bounds, or raise CopyRefused/OSError.

    A missing ``src`` (the code deleted its workspace) gives an empty ``dst``. Regular files,
    directories and symlinks are copied; FIFOs are recreated (never opened); sockets and device
    nodes are skipped. Refused fast: more than ``max_files`` entries, more bytes than the free
    space, or a copy still running after ``deadline_s``.
    """
    if not os.path.isdir(src):
        os.mkdir(dst)
        return
    _n, size = _scan(src, max_files)
    vfs = os.statvfs(os.path.dirname(dst))
    free = vfs.f_bavail * vfs.f_frsize
    if size > free:
        raise CopyRefused(
            f"the workspace holds {size / 2**20:.1f} MB and only {free / 2**20:.1f} MB are free "
            f"in the sandbox; a fork copies the workspace, so delete files or raise workspace_mb")
    deadline = time.monotonic() + deadline_s
    os.mkdir(dst)
    shutil.copystat(src, dst)
    stack = [(src, dst)]
    while stack:
        s_dir, d_dir = stack.pop()
        with os.scandir(s_dir) as it:
            for e in it:
                if time.monotonic() > deadline:
                    raise CopyRefused(f"copying the workspace took more than {deadline_s:g} s")
                d = os.path.join(d_dir, e.name)
                st = e.stat(follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    os.symlink(os.readlink(e.path), d)
                elif stat.S_ISDIR(st.st_mode):
                    os.mkdir(d)
                    shutil.copystat(e.path, d)
                    stack.append((e.path, d))
                elif stat.S_ISREG(st.st_mode):
                    shutil.copy2(e.path, d)
                elif stat.S_ISFIFO(st.st_mode):
                    os.mkfifo(d, stat.S_IMODE(st.st_mode))


# ---------------------------------------------------------------------------- scratch


def _mount_points() -> list[str]:
    try:
        with open("/proc/self/mountinfo") as f:
            return [line.split()[4].replace("\\040", " ") for line in f]
    except OSError:
        return []


def wipe_dir(path: str) -> bool:
    """Remove everything in ``path`` except mount points (and what holds one); True if clean."""
    mounts = _mount_points()
    clean = True
    try:
        names = os.listdir(path)
    except OSError:
        return True
    for name in names:
        full = os.path.join(path, name)
        if any(m == full or m.startswith(full + "/") for m in mounts):
            continue
        try:
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)
        except OSError:
            clean = False
    return clean


def wipe_sysv_ipc() -> bool:
    """Remove System V shared memory, message queues and semaphores (this IPC namespace)."""
    libc = _libc()
    clean = True
    for kind, call, rmid in (("shm", "shmctl", 0), ("msg", "msgctl", 0), ("sem", "semctl", 0)):
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            try:
                ipc_id = int(row.split()[1])
                args = (ipc_id, 0, rmid) if kind == "sem" else (ipc_id, rmid, None)
                if getattr(libc, call)(*args) != 0:
                    clean = False
            except (ValueError, IndexError, AttributeError, OSError):
                clean = False
    return clean
