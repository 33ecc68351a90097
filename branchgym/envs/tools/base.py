"""The tool contract the env calls. A tool turns one call's argument string into text.

Tools never raise for bad *agent* input: a bad query, an unknown URL or failing code becomes a
:class:`ToolOutput` with ``ok=False`` and a message saying what to do. They raise only for
infrastructure failures (e.g. ``SandboxError``).

A tool class also describes itself (docs/tools.md): its tag/function ``name``, ``main_arg``, the
``usage`` line of the system prompt, ``default_max_calls``, the phrase of its limit message
(``limit_verb``) and the :class:`Probe` calls ``check_env`` makes. ``Tool.build(context,
**kwargs)`` is the one factory signature of the ``TOOLS`` registry
(:mod:`branchgym.envs.tools.registry`); :class:`ToolContext` carries what the env knows.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = ["Tool", "ToolOutput", "ToolContext", "Probe"]


@dataclass(frozen=True)
class ToolOutput:
    """What one tool call produced. ``text`` goes (wrapped by the protocol) to the agent."""

    text: str
    ok: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Probe:
    """Harmless calls :func:`branchgym.envs.check_env` makes to a tool.

    Attributes:
        first: an argument called before the env is cloned.
        then: an argument called after cloning, on the original and on its clones; their
            observations must agree (``None``: only ``first`` is used).
        disturb: an argument called on the original only, after ``then``; a clone taken
            earlier must still answer ``then`` exactly as the original did (for tools with
            episode state: the python tool overwrites a variable).
    """

    first: str
    then: str | None = None
    disturb: str | None = None


@dataclass(frozen=True)
class ToolContext:
    """What an env knows when it builds its tools: the second half of ``Tool.build``'s signature.

    Attributes:
        source: the env's ``TaskSource`` (its world feeds the offline search index and sites).
        protocol: the protocol's registry name (``"arpo"``, ``"search-r1"``, ``"hermes"``).
        search_backend: a ``SEARCH_BACKENDS`` name or a ``SearchBackend`` object.
        fetcher: a ``FETCHERS`` name or a ``PageFetcher`` object.
        sandbox: the sandbox backend for code tools (``"auto"``, ``"docker"``, ``"local"``).
        backend_kwargs: ``tool_kwargs["search_backend"]`` and ``tool_kwargs["fetcher"]``.
    """

    source: Any = None
    protocol: str = "arpo"
    search_backend: Any = "bm25"
    fetcher: Any = "world"
    sandbox: str = "auto"
    backend_kwargs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


class Tool(abc.ABC):
    """A tool an env exposes to the agent.

    Class attributes:
        name: the tag / function name (``"search"``, ``"browse"``, ``"python"``).
        main_arg: the JSON argument the tag body maps to (``"query"``, ``"url"``, ``"code"``);
            the ``hermes`` protocol reads it from ``{"arguments": {main_arg: ...}}``.
        usage: what goes between the tool's tags and what comes back, as the system prompt
            says it (one line, no final period).
        default_max_calls: executed calls allowed per episode unless the env's ``max_calls``
            says otherwise (``None``: unlimited).
        limit_verb: completes "You are not allowed to ..." when the limit is reached
            (``""``: ``"call <name>"``).
        probe: the calls ``check_env`` makes (``None``: the tool is only exercised through a
            task's gold path).

    A class that leaves ``usage``, ``default_max_calls``, ``limit_verb`` or ``probe`` undeclared
    while registered tools have its ``name`` (a stand-in for a built-in) takes the registered
    tool's values (:func:`branchgym.envs.tools.registry.tool_spec`).

    Instance attributes ``description`` and ``parameters`` (a JSON schema) describe the tool to
    the model and go into ``info["tools"]``; left empty, :meth:`schema` derives them from
    ``usage`` and ``main_arg``.
    """

    name: ClassVar[str]
    main_arg: ClassVar[str]
    usage: ClassVar[str] = ""
    default_max_calls: ClassVar[int | None] = None
    limit_verb: ClassVar[str] = ""
    probe: ClassVar[Probe | None] = None
    description: str = ""
    parameters: dict[str, Any] = {}

    @classmethod
    def build(cls, context: ToolContext, **kwargs: Any) -> Tool:
        """The ``TOOLS`` registry's factory: a tool for an env. ``kwargs`` is
        ``tool_kwargs[name]``; tools that need nothing from ``context`` take only those."""
        return cls(**kwargs)

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
        """OpenAI-style function schema, as listed in ``info["tools"]``.

        Without ``description``/``parameters`` of its own, a tool is described by its ``usage``
        and one required string argument, ``main_arg``.
        """
        params = self.parameters or {
            "type": "object",
            "properties": {self.main_arg: {"type": "string", "description": self.usage}},
            "required": [self.main_arg],
        }
        return {"name": self.name, "description": self.description or self.usage,
                "parameters": params}
