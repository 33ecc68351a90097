"""The Sandbox/Session protocol. Backends: docker, local.

A :class:`Session` is one persistent Python interpreter with its own workspace directory.
Errors in user code are data in :class:`ExecResult`; a broken sandbox raises ``SandboxError``
after one automatic recovery attempt.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

__all__ = ["ExecResult", "Session"]


@dataclass(frozen=True)
class ExecResult:
    """The outcome of ``Session.run``.

    Attributes:
        stdout: captured standard output (capped; a note says how much was cut).
        stderr: captured standard error (capped likewise).
        error: ``None`` on success, else a short description of the failure of the user's code
            (the traceback's last line, ``"TimeoutError: ..."``, ``"MemoryError"``, "worker was
            killed by signal 9 ...").
        timed_out: the code ran past ``timeout_s`` and was stopped.
        duration_s: wall time of the call as seen by the host.
    """

    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    timed_out: bool = False
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the code ran to completion without an exception."""
        return self.error is None and not self.timed_out

    def as_text(self) -> str:
        """What an agent sees: stdout, then stderr/error if any (ARPO shows stderr on failure)."""
        parts = [self.stdout.rstrip("\n")] if self.stdout else []
        if self.stderr and not self.ok:
            parts.append(self.stderr.rstrip("\n"))
        elif self.error and self.error not in (self.stderr or ""):
            parts.append(self.error)
        return "\n".join(p for p in parts if p)


class Session(abc.ABC):
    """One persistent interpreter + workspace. Use as a context manager.

    Contract:
        run(code, timeout_s) executes ``code`` in the session's interpreter; variables, imports
            and workspace files persist across calls; a trailing bare expression is printed.
        fork() returns a new session with equal state (variables, imported modules, workspace
            files) that is independent afterwards, both ways.
        close() releases the session; idempotent.
    """

    backend: str = "abstract"

    @abc.abstractmethod
    def run(self, code: str, timeout_s: float = 10.0) -> ExecResult: ...

    @abc.abstractmethod
    def fork(self) -> Session: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    @property
    def closed(self) -> bool:  # pragma: no cover - backends override
        return False

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
