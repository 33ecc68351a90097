"""One exception hierarchy, rooted at :class:`Error`.

Validation of user input raises ``ValueError``/``TypeError`` subclasses here so that callers can
catch either the builtin or our base class. Messages say what happened, the actual value, and what
to do.
"""

from __future__ import annotations

__all__ = [
    "Error",
    "ConfigError",
    "UnknownName",
    "InvalidSnapshot",
    "CheckpointError",
    "EnvError",
    "ResetNeeded",
    "CloneNotSupported",
    "InvalidAction",
    "DatasetUnavailable",
    "SandboxError",
    "SandboxTimeout",
    "PolicyError",
    "FetchError",
    "SSRFBlocked",
]


class Error(Exception):
    """Base class of every exception branchgym raises on purpose."""


class ConfigError(Error, ValueError):
    """A configuration value is invalid; the message names the value and the fix."""


class UnknownName(ConfigError, KeyError):
    """A registry lookup failed; the message lists the options and the closest match."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidSnapshot(ConfigError):
    """``set_state`` was given a snapshot it cannot restore exactly; nothing was changed.

    ``field`` names the offending entry (``"turn"``, ``"calls"``, ``"tools.python"``, ...).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class CheckpointError(Error, RuntimeError):
    """No training checkpoint could be verified for resume; the message names each file, what
    was wrong with it and how to go on."""


class EnvError(Error):
    """An environment was used incorrectly (e.g. ``step`` after the episode ended)."""


class ResetNeeded(EnvError):
    """``step`` was called before ``reset`` or after the episode terminated/truncated."""


class CloneNotSupported(EnvError):
    """The env (or one of its wrappers or tools) cannot be cloned; the message says which."""


class InvalidAction(EnvError, ValueError):
    """An action outside a wrapper's action space (text actions never raise: they get an observation)."""


class DatasetUnavailable(Error, RuntimeError):
    """A benchmark's data cannot be loaded; the message names the env var or file to set."""


class SandboxError(Error, RuntimeError):
    """The sandbox itself failed (dead container, broken worker) after one recovery attempt.

    Errors in *user code* are never raised: they are data in ``ExecResult``.
    """


class SandboxTimeout(SandboxError, TimeoutError):
    """A transport-level timeout talking to the sandbox (not a user-code timeout)."""


class PolicyError(Error, RuntimeError):
    """A policy backend failed (model load, generation, server)."""


class FetchError(Error, RuntimeError):
    """A web fetch failed (network, size/time cap, unsupported content)."""


class SSRFBlocked(FetchError):
    """A URL resolved to a loopback/private/link-local/metadata address and was refused."""
