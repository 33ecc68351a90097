"""The Hermes / Qwen function-calling protocol.

A call is ``<tool_call>{"name": "search", "arguments": {"query": "..."}}</tool_call>``; the result
comes back as ``\\n<tool_response>\\n...\\n</tool_response>\\n``; the final answer is
``<answer> ... </answer>`` or, outside any tool call, a ``\\boxed{X}``.

``arguments`` may be an object or a JSON string (OpenAI sends a string). The tool receives its
``main_arg`` (``query``, ``code``, ``url``); further string arguments declared in the tool's
schema are appended as ``" | value"``, which is how ``browse`` takes ``url | goal``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from branchgym.envs.protocols.base import (
    ParsedAction,
    Protocol,
    clip,
    first_complete_tag,
    has_boxed,
)
from branchgym.envs.tools.registry import tool_spec

__all__ = ["HermesProtocol"]


class HermesProtocol(Protocol):
    """``<tool_call>{json}</tool_call>`` → ``<tool_response>``; ``<answer>`` or ``\\boxed{}``.

    >>> p = HermesProtocol()
    >>> tools = {"search": type("T", (), {"main_arg": "query", "parameters": {}})()}
    >>> call = '<tool_call>{"name": "search", "arguments": {"query": "x"}}</tool_call>'
    >>> p.parse(call, tools).argument
    'x'
    >>> p.parse('<tool_call>{"name": "search", "arguments": {"query": </tool_call>', tools).kind
    'invalid'
    """

    name: ClassVar[str] = "hermes"

    @property
    def stop_strings(self) -> tuple[str, ...]:
        return ("</tool_call>", "</answer>")

    def system_prompt(self, tools: Mapping[str, Any]) -> str:
        lines = ["You answer questions by reasoning step by step and calling tools when they help."]
        if tools:
            schemas = []
            for name, tool in tools.items():
                schema = tool.schema() if hasattr(tool, "schema") else {"name": name}
                if not schema.get("description"):
                    schema = {**schema, "description": tool_spec(name, tool, "usage") or ""}
                schemas.append(json.dumps({"type": "function", "function": schema}))
            lines += [
                "",
                "# Tools",
                "",
                "The functions below are available. Their signatures are inside <tools></tools>:",
                "<tools>",
                *schemas,
                "</tools>",
                "",
                "To call one, write a JSON object with the function's name and arguments inside "
                "<tool_call></tool_call> tags and stop; the result comes back inside "
                "<tool_response></tool_response>. For example:",
                self.format_call(
                    next(iter(tools)),
                    "...",
                    getattr(next(iter(tools.values())), "main_arg", "input"),
                ),
            ]
        lines += [
            "",
            "When you are confident, give the final answer as <answer> \\boxed{your answer} "
            "</answer>, with a short answer inside the box.",
        ]
        return "\n".join(lines)

    def _parse(self, action: str, tools: Mapping[str, Any]) -> ParsedAction:
        how = self.how_to(tools)
        hit = first_complete_tag(action, ["tool_call", "answer"])
        if hit is None:
            if has_boxed(action):
                return ParsedAction("answer", answer=action.strip(), end=len(action))
            if not action.strip():
                return ParsedAction("invalid", reason=f"the action is empty. {how}")
            if "<tool_call>" in action:
                return ParsedAction(
                    "invalid",
                    reason=f"<tool_call> is never closed: end it with </tool_call>. {how}",
                )
            if "<answer>" in action:
                return ParsedAction(
                    "invalid", reason=f"<answer> is never closed: end it with </answer>. {how}"
                )
            return ParsedAction(
                "invalid",
                reason=f"no tool call and no final answer found in {clip(action)!r}. {how}",
            )
        tag, inner, end = hit
        if tag == "answer":
            return ParsedAction("answer", answer=inner.strip(), end=end)
        try:
            call = json.loads(inner)
        except (ValueError, RecursionError) as exc:
            return ParsedAction(
                "invalid",
                reason=f"the JSON inside <tool_call> is not valid ({clip(str(exc), 80)}). {how}",
            )
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            return ParsedAction(
                "invalid", reason=f'a tool call must be a JSON object with a string "name". {how}'
            )
        name = call["name"]
        if name not in tools:
            return ParsedAction(
                "invalid",
                reason=f"unknown tool {clip(name, 40)!r}; available tools: "
                f"{sorted(tools) or 'none'}. {how}",
            )
        args = call.get("arguments", call.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip().startswith("{") else args
            except (ValueError, RecursionError):
                return ParsedAction(
                    "invalid", reason=f'"arguments" is a string that is not valid JSON. {how}'
                )
        return self._call(name, args, tools[name], how, end)

    def _call(self, name: str, args: Any, tool: Any, how: str, end: int) -> ParsedAction:
        main = getattr(tool, "main_arg", "input")
        if isinstance(args, str):  # a bare string stands for the main argument
            args = {main: args}
        if (
            not isinstance(args, dict)
            or not isinstance(args.get(main), str)
            or not args[main].strip()
        ):
            return ParsedAction(
                "invalid",
                reason=f'the call to {name!r} needs a non-empty string argument "{main}". {how}',
            )
        parts = [args[main].strip()]
        props = (getattr(tool, "parameters", None) or {}).get("properties", {})
        parts += [
            str(args[k]).strip()
            for k in props
            if k != main and isinstance(args.get(k), str) and args[k].strip()
        ]
        return ParsedAction("call", tool=name, argument=" | ".join(parts), end=end)

    def format_result(self, text: str) -> str:
        return f"\n<tool_response>\n{text}\n</tool_response>\n"

    def format_call(self, tool: str, argument: str, main_arg: str = "input") -> str:
        body = json.dumps({"name": tool, "arguments": {main_arg: argument}}, ensure_ascii=False)
        return f"<tool_call>{body}</tool_call>"

    def format_answer(self, answer: str) -> str:
        return f"<answer>\\boxed{{{answer}}}</answer>"
