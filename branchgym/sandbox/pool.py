"""A warm pool of sandbox hosts (containers or local servers) handing out sessions.

Placement:
    ``"tree"`` (default): every root session gets a host of its own; its forks live there too.
        A released host is reset (all processes killed, workspaces wiped) in the background and
        reused when that leaves it clean, else destroyed, so closing a session and starting the
        next episode never wait for a reset. ``warm`` idle hosts are kept ready in the
        background, and reset hosts stay idle up to the most hosts ever wanted at once, held or
        still being acquired (a vector env, a GRPO group that resets every sub-env each round, or
        an RL worker's concurrent samples reuse their hosts instead of starting new servers).
    ``"spread"``: ``size`` hosts are shared; a new root session goes to the least-loaded one.
        Sessions that share a container are isolated from the host, not from each other (same
        uid, sibling workspaces are readable): use it for throughput on trusted workloads.

Cleanup: ``close()``; at interpreter exit (atexit) and when the pool is garbage-collected
(weakref finalizer) every host is stopped.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable

from branchgym.errors import ConfigError, SandboxError
from branchgym.sandbox.host import ServerHost
from branchgym.sandbox.limits import SandboxLimits
from branchgym.sandbox.session import SessionTree, WorkerSession

__all__ = ["SandboxPool", "PLACEMENTS"]

PLACEMENTS = ("tree", "spread")
_POOLS: weakref.WeakSet[SandboxPool] = weakref.WeakSet()


def _close_all() -> None:
    for pool in list(_POOLS):
        pool.close()


atexit.register(_close_all)


def _stop_hosts(hosts: list[ServerHost]) -> None:
    for host in list(hosts):
        try:
            host.close()
        except Exception:
            pass


class SandboxPool:
    """Hands out :class:`~branchgym.sandbox.session.WorkerSession` objects from warm hosts.

    Args:
        backend: ``"docker"`` or ``"local"`` (``open_sandbox`` resolves ``"auto"``).
        limits: resource limits of each host.
        warm: idle hosts kept started in the background (placement ``"tree"``).
        size: number of shared hosts (placement ``"spread"``; default ``max(warm, 1)``), or the
            most hosts at once (placement ``"tree"``; default unbounded).
        placement: ``"tree"`` or ``"spread"`` (see the module docstring).
        image: Docker image tag (default: the tag built by ``branchgym sandbox build-image``).
    """

    def __init__(self, backend: str = "local", limits: SandboxLimits | None = None, *,
                 warm: int = 1, size: int | None = None, placement: str = "tree",
                 image: str | None = None) -> None:
        if backend not in ("docker", "local"):
            raise ConfigError(f"pool backend {backend!r} is invalid: give 'docker' or 'local' "
                              f"(open_sandbox(backend='auto') picks one for you)")
        if placement not in PLACEMENTS:
            raise ConfigError(f"placement={placement!r} is invalid: give one of {PLACEMENTS}")
        if isinstance(warm, bool) or not isinstance(warm, int) or warm < 0:
            raise ConfigError(f"warm={warm!r} is invalid: give a count >= 0, e.g. warm=1")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ConfigError(f"size={size!r} is invalid: give a count >= 1, or None")
        self.backend = backend
        self.limits = limits or SandboxLimits()
        self.warm = warm
        self.placement = placement
        self.size = size if size is not None else (max(warm, 1) if placement == "spread" else None)
        self.image = image
        self._factory = self._make_factory()
        self._lock = threading.Condition()
        self._idle: list[ServerHost] = []
        self._busy: list[ServerHost] = []
        self._recycling: list[ServerHost] = []  # released, being reset in the background
        self._peak_demand = 0  # most root sessions held or being acquired at once ("tree")
        self._acquiring = 0  # _take_host() calls that hold no host yet
        self._recycler: threading.Thread | None = None
        self._load: dict[int, int] = {}  # spread: root sessions per host (by id)
        self._starting = 0  # hosts being started, by the filler or by acquire()
        self._filling = 0  # of those, the filler's: they land in _idle for anyone
        self._waiters = 0  # acquire() calls waiting for one of the hosts that land in _idle
        self._closed = False
        self._filler: threading.Thread | None = None
        self._hosts_ref: list[ServerHost] = []  # everything alive, for the finalizer
        self._finalizer = weakref.finalize(self, _stop_hosts, self._hosts_ref)
        self.started_hosts = 0
        _POOLS.add(self)
        if placement == "tree" and warm:
            self._kick_filler()

    def _make_factory(self) -> Callable[[], ServerHost]:
        limits = self.limits
        if self.backend == "local":
            from branchgym.sandbox.local import LocalHost

            return lambda: LocalHost.start(limits)
        from branchgym.sandbox.docker import DockerHost, reap_orphans

        reap_orphans()  # containers left by a killed process go now
        image = self.image
        return lambda: DockerHost.start(limits, image=image)

    # -- hosts ---------------------------------------------------------------------------------
    def _new_host(self) -> ServerHost:
        host = self._factory()
        with self._lock:
            self.started_hosts += 1
            if self._closed:
                host.close()
                raise SandboxError("the sandbox pool is closed")
            self._hosts_ref.append(host)
        return host

    def _kick_filler(self) -> None:
        with self._lock:
            if self._closed or (self._filler is not None and self._filler.is_alive()):
                return
            self._filler = threading.Thread(target=self._fill, name="branchgym-sandbox-warm",
                                            daemon=True)
            self._filler.start()

    def _fill(self) -> None:
        while True:
            with self._lock:
                coming = len(self._idle) + self._starting + len(self._recycling)
                total = coming + len(self._busy)
                if (self._closed or coming >= self.warm
                        or (self.size is not None and total >= self.size)):
                    return
                self._starting += 1
                self._filling += 1
            try:
                host = self._new_host()
                host.prespawn()
            except Exception:
                with self._lock:
                    self._starting -= 1
                    self._filling -= 1
                    self._lock.notify_all()
                return  # acquire() will start one itself and report the error
            with self._lock:
                self._starting -= 1
                self._filling -= 1
                self._idle.append(host)
                self._lock.notify_all()

    def _take_host(self) -> ServerHost:
        if self.placement == "spread":
            return self._take_shared()
        with self._lock:
            # Demand counts callers still waiting for a host: sessions of a round that open and
            # close quickly are never all busy at one instant, yet the round needs a host each.
            self._acquiring += 1
            self._peak_demand = max(self._peak_demand, len(self._busy) + self._acquiring)
            try:
                host = self._take_host_locked()
                self._busy.append(host)
            finally:
                self._acquiring -= 1
        self._kick_filler()
        return host

    def _take_host_locked(self) -> ServerHost:
        """An idle host, one on its way to idle, or a new one; called with the lock held."""
        while True:
            if self._closed:
                raise SandboxError("the sandbox pool is closed")
            while self._idle:
                host = self._idle.pop()
                if not host.dead:
                    return host
                self._forget(host)
            total = len(self._busy) + self._starting + len(self._recycling)
            if self.size is not None and total >= self.size:
                self._lock.wait(1.0)  # all hosts busy: wait for a release
                continue
            if self._filling + len(self._recycling) > self._waiters:
                # a host is on its way to _idle that no other caller waits for (a reset takes
                # milliseconds): wait for it. Otherwise start one now, in parallel with the
                # other callers' starts (a cold rollout needs many at once).
                self._waiters += 1
                try:
                    self._lock.wait(0.1)
                finally:
                    self._waiters -= 1
                continue
            self._starting += 1
            try:
                return self._new_host_unlocked()
            finally:
                self._starting -= 1

    def _new_host_unlocked(self) -> ServerHost:
        self._lock.release()
        try:
            return self._new_host()
        finally:
            self._lock.acquire()

    def _take_shared(self) -> ServerHost:
        with self._lock:
            if self._closed:
                raise SandboxError("the sandbox pool is closed")
            self._busy = [h for h in self._busy if not h.dead]
            assert self.size is not None
            while len(self._busy) + self._starting < self.size:
                self._starting += 1
                try:
                    host = self._new_host_unlocked()
                finally:
                    self._starting -= 1
                self._busy.append(host)
            while self._starting > 0 or not self._busy:  # place only once all are up
                self._lock.wait(0.05)
            host = min(self._busy, key=lambda h: self._load.get(id(h), 0))
            self._load[id(host)] = self._load.get(id(host), 0) + 1
            return host

    def _forget(self, host: ServerHost) -> None:
        for bucket in (self._idle, self._busy, self._recycling, self._hosts_ref):
            if host in bucket:
                bucket.remove(host)
        self._load.pop(id(host), None)

    def release(self, host: ServerHost) -> None:
        """A tree is done with ``host``: reset and reuse it, or destroy it."""
        if self.placement == "spread":
            with self._lock:
                self._load[id(host)] = max(self._load.get(id(host), 1) - 1, 0)
                if not host.dead and not self._closed:
                    return
                self._forget(host)
            host.close()
            return
        with self._lock:
            if host in self._busy:
                self._busy.remove(host)
            if self._closed or host.dead:
                self._forget(host)
                closing = True
            else:
                self._recycling.append(host)
                closing = False
                if self._recycler is None or not self._recycler.is_alive():
                    self._recycler = threading.Thread(target=self._recycle,
                                                      name="branchgym-sandbox-reset", daemon=True)
                    self._recycler.start()
        if closing:
            host.close()
            self._kick_filler()

    def _recycle(self) -> None:
        """Reset released hosts one after another, off the caller's thread."""
        while True:
            with self._lock:
                if not self._recycling:
                    self._recycler = None
                    return
                host = self._recycling[0]
            reusable = not self._closed and not host.dead and host.reset()
            if reusable:
                try:
                    host.prespawn()  # the next acquire() takes it without a fork
                except SandboxError:
                    reusable = False
            with self._lock:
                if host in self._recycling:  # close() may have emptied the list meanwhile
                    self._recycling.remove(host)
                keep = max(self.warm, 1, self._peak_demand)
                if reusable and not self._closed and len(self._idle) < keep:
                    self._idle.append(host)
                    self._lock.notify_all()
                    continue
                self._forget(host)
                self._lock.notify_all()
            host.close()
            self._kick_filler()

    def replace(self, broken: ServerHost) -> ServerHost:
        """Give a tree a new host in place of a dead one."""
        with self._lock:
            self._forget(broken)
        broken.close()
        host = self._take_host()
        return host

    # -- sessions ------------------------------------------------------------------------------
    def acquire(self) -> WorkerSession:
        """A new root session: a fresh interpreter in an empty workspace."""
        host = self._take_host()
        tree = SessionTree(self, host)
        try:
            sock, pid, workspace = host.take_worker()
        except SandboxError:
            if not host.dead:  # the server answered but refused (e.g. no pids left)
                tree.discard(tree.add())
                raise
            with self._lock:
                self._forget(host)
            host.close()
            host = self._take_host()  # one recovery attempt on a fresh host
            tree.host = host
            sock, pid, workspace = host.take_worker()
        return WorkerSession(tree, host, sock, pid, workspace)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"idle": len(self._idle), "busy": len(self._busy),
                    "recycling": len(self._recycling), "starting": self._starting,
                    "started_total": self.started_hosts}

    def hosts(self) -> list[ServerHost]:
        with self._lock:
            return list(self._hosts_ref)

    def close(self) -> None:
        """Stop every host; idempotent. Sessions still open raise ``SandboxError`` afterwards."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            hosts = list(self._hosts_ref)
            self._idle.clear()
            self._busy.clear()
            self._recycling.clear()
            self._lock.notify_all()
        _stop_hosts(hosts)
        self._hosts_ref.clear()
        for thread in (self._filler, self._recycler):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=30)
        _POOLS.discard(self)

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SandboxPool {self.backend} placement={self.placement} {self.stats()}>"
