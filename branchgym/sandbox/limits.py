"""Resource limits of a sandbox, shared by both backends."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from branchgym.errors import ConfigError

__all__ = ["SandboxLimits"]


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandbox host (a container, or a local server process) and its workers.

    ``open_sandbox(**limits)`` accepts these field names as keyword arguments.
    """

    memory_mb: int = 2048
    """Docker: memory (and memory+swap) limit of the whole container (all its sessions)."""
    worker_memory_mb: int = 1536
    """Address-space limit (RLIMIT_AS) of each interpreter: a memory bomb gets MemoryError."""
    cpus: float = 1.0
    """Docker: CPU quota of the container, in cores."""
    pids: int = 512
    """Docker: pids limit of the container. Local: RLIMIT_NPROC of workers: the processes of
    their uid on this machine (``local_uid`` when started as root: all local sandboxes share it;
    the user's own processes when not root)."""
    workspace_mb: int = 256
    """Docker: size of the tmpfs that holds all workspaces of the container."""
    file_size_mb: int = 256
    """RLIMIT_FSIZE of each interpreter: the largest file it may write."""
    max_output_chars: int = 20000
    """stdout and stderr are each capped at this many characters, with a note saying the cut."""
    bwrap: bool = True
    """Local backend: run the server under bubblewrap (no network, read-only /) when installed."""
    local_uid: int = 65534
    """Local backend started as root: the uid (and gid) user code runs as (65534 is ``nobody``);
    it never keeps root unless ``allow_root``."""
    allow_root: bool = False
    """Local backend started as root without a jail, when ``local_uid`` cannot read the
    interpreter: run user code as root (every capability) instead of refusing. Trusted code
    only; ``BRANCHGYM_SANDBOX_ALLOW_ROOT=1`` in the environment does the same."""
    python: str = ""
    """Local backend: the interpreter of the server and of user code (default: this process's,
    ``sys.executable``). As root without a jail, give one ``local_uid`` can read (e.g.
    ``/usr/bin/python3``) when this one lives under ``/root``."""
    hugepages: bool = True
    """Let malloc put large allocations on transparent huge pages (``GLIBC_TUNABLES=
    glibc.malloc.hugetlb=1``, when THP is enabled or ``madvise``): ``fork()`` of an interpreter
    holding 200 MB of arrays then copies ~100 page-table entries instead of ~51,000."""
    preload: tuple[str, ...] = ("numpy", "sympy")
    """Modules the server imports once at start, so ``import numpy`` in a session is instant
    (workers fork from the server: copy-on-write). Missing modules are skipped."""

    def __post_init__(self) -> None:
        for name in ("memory_mb", "worker_memory_mb", "pids", "workspace_mb", "file_size_mb",
                     "max_output_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(
                    f"sandbox limit {name}={value!r} is invalid: give a positive integer, "
                    f"e.g. {name}={getattr(type(self), name)}"
                )
        if isinstance(self.cpus, bool) or not isinstance(self.cpus, (int, float)) or self.cpus <= 0:
            raise ConfigError(f"sandbox limit cpus={self.cpus!r} is invalid: give a positive "
                              f"number of cores, e.g. cpus=1.0")
        if self.worker_memory_mb < 64:
            raise ConfigError(f"worker_memory_mb={self.worker_memory_mb} is too small for a "
                              f"Python interpreter: give at least 64")
        if (isinstance(self.local_uid, bool) or not isinstance(self.local_uid, int)
                or not 0 < self.local_uid < 2 ** 32 - 1):
            raise ConfigError(f"local_uid={self.local_uid!r} is invalid: give a uid other than "
                              f"root, e.g. local_uid=65534 (nobody)")
        if not isinstance(self.python, str) or (self.python and not os.path.isabs(self.python)):
            raise ConfigError(f"python={self.python!r} is invalid: give an absolute path, e.g. "
                              f"python='/usr/bin/python3', or '' for this interpreter")
        if isinstance(self.preload, str) or not all(
                isinstance(m, str) and m.replace(".", "").replace("_", "").isalnum()
                for m in self.preload):
            raise ConfigError(f"preload={self.preload!r} is invalid: give a tuple of module "
                              f"names, e.g. preload=('numpy',), or () for none")
        object.__setattr__(self, "preload", tuple(self.preload))
        if self.max_output_chars < 100:
            raise ConfigError(f"max_output_chars={self.max_output_chars} is too small to hold "
                              f"an error message: give at least 100")

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> SandboxLimits:
        """Build from ``open_sandbox`` keyword arguments; unknown names are a clear error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            import difflib

            hints = [
                f"{u!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(u, names, 1))
                else repr(u) for u in unknown
            ]
            raise ConfigError(
                f"unknown sandbox limit(s) {', '.join(hints)}; valid names: {sorted(names)}"
            )
        return cls(**kwargs)

    def server_env(self) -> dict[str, str]:
        """Environment variables the server process must start with (read by ld.so)."""
        return {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"} if self.hugepages else {}

    def worker_limits(self, nproc: bool = True) -> dict[str, object]:
        """What the in-sandbox server applies to each worker (see ``server.Worker``).

        ``nproc=False`` for Docker: RLIMIT_NPROC counts the uid's processes across *all*
        containers, while the pids cgroup limit is per container.
        """
        out: dict[str, object] = {"worker_memory_mb": self.worker_memory_mb,
                                  "file_size_mb": self.file_size_mb,
                                  "preload": list(self.preload)}
        if nproc:
            out["nproc"] = self.pids
        return out
