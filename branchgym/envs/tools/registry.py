"""``TOOLS``: tool name -> :class:`~branchgym.envs.tools.base.Tool` subclass (docs/tools.md).

Every entry is a ``Tool`` subclass whose ``name`` is the registered name; the env builds it with
the one factory signature ``TOOLS[name].build(context: ToolContext, **tool_kwargs[name])``.
Built-ins are ``"module:Class"`` strings, imported when first named, so listing them costs
nothing. A user's tool is one decorator away::

    @TOOLS.register("calculator")
    class Calculator(Tool):
        name, main_arg = "calculator", "expression"
        ...

after which ``ToolEnv(tools=["calculator"])`` (or ``gym.make(..., tools=[...])``) enables it.

>>> sorted(TOOLS)[:3]
['browse', 'python', 'search']
>>> tool_spec("search", None, "default_max_calls")
10
"""

from __future__ import annotations

from typing import Any

from branchgym.envs.protocols.base import tag_name_problem
from branchgym.envs.tools.base import Tool
from branchgym.errors import ConfigError, UnknownName
from branchgym.registry import Registry

__all__ = ["TOOLS", "ToolRegistry", "get_tool_class", "tool_spec", "check_tool_name",
           "HOW_TO_REGISTER"]

HOW_TO_REGISTER = (
    "Register your own with @branchgym.envs.TOOLS.register('name') on a Tool subclass whose "
    "name is 'name' (docs/tools.md), or pass a Tool instance in tools=[...]."
)

class ToolRegistry(Registry[Any]):
    """A :class:`~branchgym.registry.Registry` that accepts only ``Tool`` subclasses named as
    they are registered (or lazy ``"module:Class"`` strings, checked when imported)."""

    def _add(self, name: str, obj: Any) -> None:
        if not isinstance(obj, str):
            _check_class(name, obj)
        super()._add(name, obj)


def check_tool_name(name: Any) -> None:
    """Raise ``ConfigError`` if ``name`` cannot be written as a tag by the agent."""
    problem = tag_name_problem(name)
    if problem is not None:
        raise ConfigError(f"tool name {name!r} cannot be used: {problem}. Pick e.g. 'calculator'.")


def _check_class(name: str, obj: Any) -> None:
    check_tool_name(name)
    if not (isinstance(obj, type) and issubclass(obj, Tool)):
        raise ConfigError(
            f"TOOLS entries are Tool subclasses; {name!r} was given {obj!r}. Subclass "
            "branchgym.envs.Tool, set name/main_arg/usage and implement call(argument) "
            "(docs/tools.md)."
        )
    if getattr(obj, "name", None) != name:
        raise ConfigError(
            f"tool class {obj.__name__} has name={getattr(obj, 'name', None)!r} but is registered "
            f"as {name!r}; set name = {name!r} on the class (it is the tag the agent writes)."
        )
    if not isinstance(getattr(obj, "main_arg", None), str) or not obj.main_arg:
        raise ConfigError(
            f"tool class {obj.__name__} needs main_arg, the argument its tag body maps to "
            "(e.g. main_arg = 'expression')."
        )


TOOLS: ToolRegistry = ToolRegistry("tool")
# One line per built-in tool.
TOOLS.register("search", "branchgym.envs.tools.search:SearchTool")
TOOLS.register("browse", "branchgym.envs.tools.browse:BrowseTool")
TOOLS.register("python", "branchgym.envs.tools.python:PythonTool")


def get_tool_class(name: Any) -> type[Tool]:
    """The registered class for ``name``; an unknown name lists the tools and how to add one."""
    try:
        cls = TOOLS.get(name)
    except UnknownName as exc:
        raise UnknownName(f"{exc} {HOW_TO_REGISTER}") from None
    _check_class(name, cls)
    return cls


def _declares(cls: type, attr: str) -> bool:
    return any(attr in vars(c) for c in cls.__mro__ if c not in (Tool, object))


def tool_spec(name: str, tool: Any, attr: str) -> Any:
    """``tool``'s ``attr`` (one of usage, default_max_calls, limit_verb, probe).

    A tool whose class does not declare ``attr`` takes the value of the registered tool with the
    same name (so a stand-in ``search`` keeps ARPO's limit and wording); ``tool`` may be any
    object, ``None`` included, as protocols accept plain name -> object maps.
    """
    if tool is not None and _declares(type(tool), attr):
        return getattr(tool, attr)
    if name in TOOLS:
        registered = TOOLS.get(name)
        if isinstance(registered, type) and issubclass(registered, Tool):
            return getattr(registered, attr)
    return getattr(Tool, attr)
