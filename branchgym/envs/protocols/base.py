"""What a tool-call protocol is: parse an action, format a result, describe the tools.

A protocol turns the agent's text into one :class:`ParsedAction` (the first complete tool call,
an answer, or an invalid action with a reason) and turns tool output into the text that is
appended to the agent's context. Parsing never raises, whatever the string: that is part of the
env contract, so every concrete ``parse`` runs inside :meth:`Protocol.parse`'s
safety net.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

__all__ = ["ParsedAction", "Protocol", "first_complete_tag", "first_open_tag", "has_boxed",
           "tag_name_problem"]

Kind = Literal["call", "answer", "invalid"]

# Tags with fixed meaning that are never tool calls (ARPO asks the model to think in <think>).
_NOT_TOOLS = frozenset({"think", "result", "information", "tool_response", "answer", "tool_call"})
_OPEN_TAG = re.compile(r"<([A-Za-z_][A-Za-z0-9_\-]{0,40})>")


def tag_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a tool's tag (``None`` if it can): tags are 1-41 letters, digits,
    ``_`` or ``-`` starting with a letter or ``_``, and not one of the protocols' own tags."""
    if not isinstance(name, str) or not _OPEN_TAG.fullmatch(f"<{name}>"):
        return "a tool name is 1-41 letters, digits, '_' or '-', starting with a letter or '_'"
    if name in _NOT_TOOLS:
        return f"{name!r} is one of the protocols' own tags {sorted(_NOT_TOOLS)}"
    return None


@dataclass(frozen=True)
class ParsedAction:
    """The one thing an action asks the env to do.

    Attributes:
        kind: ``"call"`` (run ``tool`` on ``argument``), ``"answer"`` (``answer`` is the text
            between the answer tags, or the boxed text), or ``"invalid"``.
        tool: the tool name for a call.
        argument: the raw text inside the tool's tags (query, URL, code), stripped.
        answer: the answer span for an answer.
        reason: for an invalid action, what was wrong and how to do it right.
        end: index in the action just past the call/answer that was parsed (0 if invalid).
    """

    kind: Kind
    tool: str | None = None
    argument: str = ""
    answer: str = ""
    reason: str = ""
    end: int = 0

    @property
    def invalid(self) -> bool:
        return self.kind == "invalid"


def first_complete_tag(text: str, names: Sequence[str]) -> tuple[str, str, int] | None:
    """The tag pair among ``names`` whose closing tag comes first, as ``(name, inner, end)``.

    The agent stops generating at a closing tag (ARPO's stop strings), so the call that closes
    first is the one to run. The innermost opening tag before that close is used, so
    ``<search>a<search>b</search>`` runs ``b``. Linear in ``len(text)`` per name.

    >>> first_complete_tag("x <python>1+1</python> <search>q</search>", ["search", "python"])
    ('python', '1+1', 22)
    """
    best: tuple[str, str, int] | None = None
    best_close = len(text) + 1
    for name in names:
        open_t, close_t = f"<{name}>", f"</{name}>"
        close, lo = text.find(close_t), 0
        while close != -1 and close < best_close:
            start = text.rfind(open_t, lo, close)
            if start != -1:
                best_close = close
                best = (name, text[start + len(open_t) : close], close + len(close_t))
                break
            # no opening tag before this close: the next candidate opens after it. Searching
            # only forward keeps this linear even for "</search>" * 100_000.
            lo = text.find(open_t, close)
            if lo == -1:
                break
            close = text.find(close_t, lo)
    return best


def first_open_tag(text: str, names: Sequence[str]) -> str | None:
    """The name among ``names`` whose opening tag appears first (for "unclosed" messages)."""
    found = [(text.find(f"<{n}>"), n) for n in names]
    found = [(i, n) for i, n in found if i != -1]
    return min(found)[1] if found else None


def has_boxed(text: str) -> bool:
    r"""True if ``text`` contains ``\boxed{`` (or ``\fbox{``)."""
    return "\\boxed{" in text or "\\fbox{" in text


def unknown_tags(text: str, known: Sequence[str], limit: int = 20) -> list[str]:
    """Complete ``<x>...</x>`` pairs whose name is not a known tool (at most ``limit`` names).

    Each distinct name is looked up once (at most ``5 * limit`` names), so the cost stays
    linear in ``len(text)`` even for ``"<foo>" * 100_000``.
    """
    found: list[str] = []
    checked: set[str] = set()
    for m in _OPEN_TAG.finditer(text):
        name = m.group(1)
        if name in checked or name in known or name in _NOT_TOOLS:
            continue
        checked.add(name)
        if text.find(f"</{name}>", m.end()) != -1:
            found.append(name)
        if len(found) >= limit or len(checked) >= 5 * limit:
            break
    return found


def clip(text: str, n: int = 60) -> str:
    """A short, safe excerpt of agent text for error messages."""
    text = text.replace("\n", " ")
    return text if len(text) <= n else text[: n - 1] + "…"


class Protocol(abc.ABC):
    """A tool-call protocol. Stateless and immutable, so envs and their clones share one.

    Class attributes:
        name: the registry name (``"arpo"``, ``"search-r1"``, ``"hermes"``).
        known_tools: tool names the protocol knows tags for even when an env does not enable
            them (so ``<python>`` in a search-only env gets "not available", not "unknown");
            a tag protocol stops on their closing tags. :meth:`for_tools` adds the enabled
            tools an env brings beyond these.

    Everything a protocol says about a tool (its usage line, its argument) comes from the tool
    object (:class:`~branchgym.envs.tools.base.Tool`), so a registered tool of one's own is
    described, parsed and stopped on like a built-in (docs/tools.md).
    """

    name: ClassVar[str]
    known_tools: ClassVar[tuple[str, ...]] = ("search", "python", "browse")

    @property
    @abc.abstractmethod
    def stop_strings(self) -> tuple[str, ...]:
        """Strings at which a policy should stop generating (closing tool and answer tags)."""

    def for_tools(self, tools: Mapping[str, Any]) -> Protocol:
        """This protocol as spoken by an env with ``tools`` (name -> Tool) enabled.

        Protocols whose stop strings do not depend on the tools (``hermes``: every call ends at
        ``</tool_call>``) return ``self``; tag protocols add the tags of enabled tools they do
        not already know.
        """
        return self

    @abc.abstractmethod
    def system_prompt(self, tools: Mapping[str, Any]) -> str:
        """Instructions describing the enabled ``tools`` (name -> Tool) and the answer format."""

    @abc.abstractmethod
    def _parse(self, action: str, tools: Mapping[str, Any]) -> ParsedAction: ...

    def parse(self, action: str, tools: Mapping[str, Any]) -> ParsedAction:
        """Parse one action against the enabled ``tools``. Never raises."""
        if not isinstance(action, str):
            return ParsedAction(
                "invalid", reason=f"the action must be text, got {type(action).__name__}."
            )
        try:
            return self._parse(action, tools)
        except Exception as exc:  # the contract is "never raises"; report instead
            return ParsedAction(
                "invalid",
                reason=f"the action could not be parsed ({type(exc).__name__}). "
                f"{self.how_to(tools)}",
            )

    @abc.abstractmethod
    def format_result(self, text: str) -> str:
        """Wrap tool output so that it can be appended verbatim to the agent's context."""

    def format_feedback(self, message: str) -> str:
        """Wrap an env message (limit reached, episode over); defaults to a tool result."""
        return self.format_result(message)

    def format_invalid(self, reason: str) -> str:
        """The observation for an invalid action; defaults to the reason as feedback."""
        return self.format_feedback(f"Invalid action: {reason}")

    @abc.abstractmethod
    def format_call(self, tool: str, argument: str, main_arg: str = "input") -> str:
        """The text of a well-formed call (used by scripted agents and in error messages)."""

    @abc.abstractmethod
    def format_answer(self, answer: str) -> str:
        """The text of a well-formed final answer."""

    def how_to(self, tools: Mapping[str, Any]) -> str:
        """One sentence saying how to call the enabled tools and how to answer."""
        calls = ", ".join(
            self.format_call(n, "...", getattr(t, "main_arg", "input")) for n, t in tools.items()
        )
        how = f"Call a tool like {calls}; " if calls else ""
        return f"{how}give the final answer as {self.format_answer('...')}."

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
