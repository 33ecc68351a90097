"""The tool contract the env calls. A tool turns one call's argument string into text.

Tools never raise for bad *agent* input: a bad query, an unknown URL or failing code becomes a
:class:`ToolOutput` with ``ok=False`` and a message saying what to do. They raise only for
infrastructure failures (e.g. ``SandboxError``).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = ["Tool", "ToolOutput"]


@dataclass(frozen=True)
class ToolOutput:
    """What one tool call produced. ``text`` goes (wrapped by the protocol) to the agent."""

    text: str
    ok: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)


class Tool(abc.ABC):
    """A tool an env exposes to the agent.

    Class attributes:
        name: the tag / function name (``"search"``, ``"browse"``, ``"python"``).
        main_arg: the JSON argument the tag body maps to (``"query"``, ``"url"``, ``"code"``);
            the ``hermes`` protocol reads it from ``{"arguments": {main_arg: ...}}``.

    Instance attributes ``description`` and ``parameters`` (a JSON schema) describe the tool to
    the model and go into ``info["tools"]``.
    """

    name: ClassVar[str]
    main_arg: ClassVar[str]
    description: str = ""
    parameters: dict[str, Any] = {}

    @abc.abstractmethod
    def call(self, argument: str) -> ToolOutput:
        """Run one call. ``argument`` is the raw text inside the tool's tags."""

    def fork(self) -> Tool:
        """Return a tool whose future equals this one's. Stateless tools return ``self``."""
        return self

    def get_state(self) -> Any:
        """A serialisable snapshot of per-episode state (``None`` for stateless tools)."""
        return None

    def set_state(self, state: Any) -> None:
        """Restore a snapshot from :meth:`get_state` (already passed :meth:`check_state`)."""

    def check_state(self, state: Any) -> None:
        """Raise ``ValueError``/``TypeError`` naming the problem if :meth:`set_state` could not
        restore ``state`` exactly; change nothing. ``env.set_state`` checks every tool's state
        before it restores any.

        Default: a tool that keeps no state (does not override ``set_state``) accepts only
        ``None``; a tool that overrides ``set_state`` but not this is checked by its
        ``set_state`` (a failure there puts the env back as it was).
        """
        if type(self).set_state is Tool.set_state and state is not None:
            raise ValueError(f"the {self.name} tool keeps no episode state; expected None, got "
                             f"{type(state).__name__}")

    def reset(self) -> None:
        """Start a new episode (drop per-episode state, e.g. open a fresh sandbox session)."""

    def close(self) -> None:
        """Release resources. Idempotent."""

    def schema(self) -> dict[str, Any]:
        """OpenAI-style function schema, as listed in ``info["tools"]``."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}
