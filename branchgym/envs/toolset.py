"""Build an env's tools from ``TOOLS`` names (``"search"``, ``"browse"``, ``"python"``, or any
registered tool) or ``Tool`` instances (docs/tools.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from branchgym.envs.tools.base import Tool, ToolContext
from branchgym.envs.tools.registry import TOOLS, check_tool_name, get_tool_class
from branchgym.errors import ConfigError

__all__ = ["build_tools"]

_BACKEND_KEYS = ("search_backend", "fetcher")


def build_tools(
    tools: Sequence[str | Tool],
    *,
    source: Any,
    protocol: str,
    search_backend: str | Any,
    fetcher: str | Any,
    sandbox: str,
    tool_kwargs: Mapping[str, Mapping[str, Any]],
) -> dict[str, Tool]:
    """Name -> tool, in the given order. Tool modules are imported only when named.

    A name is built by ``TOOLS[name].build(context, **tool_kwargs[name])``;
    ``tool_kwargs["search_backend"]`` and ``tool_kwargs["fetcher"]`` go to the backend/fetcher
    factories (through ``context.backend_kwargs``).
    """
    if isinstance(tools, (str, Tool)) or not isinstance(tools, Sequence):
        raise ConfigError(
            f"tools={tools!r} must be a list of names or Tool objects, e.g. tools=['search']."
        )
    names = [t.name if isinstance(t, Tool) else t for t in tools]
    allowed = [*TOOLS, *(n for n in names if isinstance(n, str) and n not in TOOLS),
               *_BACKEND_KEYS]
    unknown_kw = set(tool_kwargs) - set(allowed)
    if unknown_kw:
        raise ConfigError(
            f"tool_kwargs has unknown keys {sorted(unknown_kw)}; use tool names {list(TOOLS)} "
            f"or {list(_BACKEND_KEYS)}."
        )
    context = ToolContext(
        source=source,
        protocol=protocol,
        search_backend=search_backend,
        fetcher=fetcher,
        sandbox=sandbox,
        backend_kwargs={k: tool_kwargs[k] for k in _BACKEND_KEYS if k in tool_kwargs},
    )
    built: dict[str, Tool] = {}
    for item in tools:
        tool = item if isinstance(item, Tool) else _build(item, context, tool_kwargs)
        check_tool_name(getattr(tool, "name", None))
        if tool.name in built:
            raise ConfigError(f"tool {tool.name!r} is enabled twice in tools={tools!r}.")
        built[tool.name] = tool
    return built


def _build(name: Any, context: ToolContext, tool_kwargs: Mapping[str, Mapping[str, Any]]) -> Tool:
    if not isinstance(name, str):
        raise ConfigError(
            f"tools entries are tool names or Tool instances; got {name!r}. Registered tools: "
            f"{list(TOOLS)}."
        )
    cls = get_tool_class(name)  # unknown names list the registered tools and how to add one
    tool = cls.build(context, **dict(tool_kwargs.get(name, {})))
    if not isinstance(tool, Tool) or tool.name != name:
        raise ConfigError(
            f"{cls.__name__}.build returned {tool!r}, not a Tool named {name!r}; build must "
            f"return an instance of the registered class."
        )
    return tool
