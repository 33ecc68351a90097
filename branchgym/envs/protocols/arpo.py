r"""The ARPO / AEPO / Tool-Star tag protocol (the default; as ARPO's released evaluation code writes it).

Calls are ``<search> query </search>``, ``<python> code </python>`` and
``<browse> URL </browse>`` (or ``<browse> URL | what to look for </browse>``); results come back
as ``\n<result>\n...\n</result>\n``; the final answer is ``<answer> ... \boxed{X} ... </answer>``.
The system prompt is written in our own words.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar

from branchgym.envs.protocols.base import (
    ParsedAction,
    Protocol,
    clip,
    first_complete_tag,
    first_open_tag,
    has_boxed,
    unknown_tags,
)
from branchgym.envs.tools.registry import tool_spec

__all__ = ["ArpoProtocol", "TagProtocol"]


class TagProtocol(Protocol):
    """Shared parser for protocols whose calls are ``<tool>argument</tool>`` tags."""

    result_open: ClassVar[str] = "<result>"
    result_close: ClassVar[str] = "</result>"

    def _names(self, tools: Mapping[str, Any]) -> list[str]:
        return list(dict.fromkeys([*tools, *self.known_tools]))

    @property
    def stop_strings(self) -> tuple[str, ...]:
        return tuple(f"</{n}>" for n in self.known_tools) + ("</answer>",)

    def for_tools(self, tools: Mapping[str, Any]) -> TagProtocol:
        """A copy that also knows (and stops on) the enabled tools' tags; ``self`` when it
        already knows them all."""
        extra = tuple(n for n in tools if n not in self.known_tools)
        if not extra:
            return self
        bound = copy.copy(self)
        bound.known_tools = (*self.known_tools, *extra)  # type: ignore[misc]
        return bound

    def _parse(self, action: str, tools: Mapping[str, Any]) -> ParsedAction:
        names = self._names(tools)
        hit = first_complete_tag(action, [*names, "answer"])
        if hit is not None:
            name, inner, end = hit
            if name == "answer":
                return ParsedAction("answer", answer=inner.strip(), end=end)
            if name not in tools:
                return ParsedAction(
                    "invalid",
                    reason=f"the tool {name!r} is not available here; available tools: "
                    f"{sorted(tools) or 'none'}. {self.how_to(tools)}",
                )
            arg = inner.strip()
            if not arg:
                return ParsedAction(
                    "invalid", reason=f"the <{name}> call is empty. {self.how_to(tools)}"
                )
            return ParsedAction("call", tool=name, argument=arg, end=end)
        return ParsedAction("invalid", reason=self._diagnose(action, names, tools))

    def _diagnose(self, action: str, names: list[str], tools: Mapping[str, Any]) -> str:
        how = self.how_to(tools)
        if not action.strip():
            return f"the action is empty. {how}"
        opened = first_open_tag(action, [*names, "answer"])
        if opened is not None:
            return f"<{opened}> is never closed: end it with </{opened}>. {how}"
        closed = next((n for n in [*names, "answer"] if f"</{n}>" in action), None)
        if closed is not None:
            return f"</{closed}> has no opening <{closed}> before it. {how}"
        unknown = unknown_tags(action, names)
        if unknown:
            return f"unknown tool <{unknown[0]}>; available tools: {sorted(tools) or 'none'}. {how}"
        if has_boxed(action):
            return f"a boxed answer must be inside answer tags. {how}"
        return f"no tool call and no final answer found in {clip(action)!r}. {how}"

    def format_result(self, text: str) -> str:
        return f"\n{self.result_open}\n{text}\n{self.result_close}\n"

    def format_call(self, tool: str, argument: str, main_arg: str = "input") -> str:
        return f"<{tool}>{argument}</{tool}>"


class ArpoProtocol(TagProtocol):
    r"""ARPO tags: ``<search>``/``<python>``/``<browse>`` → ``<result>``; boxed ``<answer>``.

    >>> p = ArpoProtocol()
    >>> a = p.parse("<think>look it up</think><search> capital of Fooland </search>", {"search": 0})
    >>> a.kind, a.tool, a.argument
    ('call', 'search', 'capital of Fooland')
    >>> p.format_result("Page 1: ...")
    '\n<result>\nPage 1: ...\n</result>\n'
    """

    name: ClassVar[str] = "arpo"

    def system_prompt(self, tools: Mapping[str, Any]) -> str:
        lines = [
            "You answer questions by reasoning step by step and using tools when they help.",
            "Think inside <think> </think> before each step.",
        ]
        if tools:
            lines.append("You can use these tools, one call at a time:")
            for name, tool in tools.items():
                usage = (
                    tool_spec(name, tool, "usage")
                    or getattr(tool, "description", "")
                    or "its input"
                )
                lines.append(f"- <{name}> ... </{name}>: {usage}.")
            lines.append(
                "After a closing tool tag, stop writing: the environment appends the tool's "
                "output between <result> and </result>, and you continue from there."
            )
        lines.append(
            "When you are confident, write the final answer once, as "
            "<answer> The final answer is \\boxed{your answer} </answer>, with a short answer "
            "(a name, a number, a date) inside the box."
        )
        return "\n".join(lines)

    def format_answer(self, answer: str) -> str:
        return f"<answer>The final answer is \\boxed{{{answer}}}</answer>"
