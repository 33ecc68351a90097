"""The Search-R1 protocol (Jin et al., arXiv:2503.09516).

``<search> query </search>`` → ``\\n\\n<information>...</information>\\n\\n``; the answer is
``<answer> X </answer>`` (no box needed). An invalid action gets Search-R1's own message, word
for word, so policies trained on Search-R1 see what they were trained on; the specific reason
is in ``info["invalid_reason"]``. Other enabled tools (``<python>``, ``<browse>``) use the same
tag form and result wrapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from branchgym.envs.protocols.arpo import TagProtocol
from branchgym.envs.tools.registry import tool_spec

__all__ = ["SearchR1Protocol", "SEARCH_R1_INVALID"]

#: Search-R1's invalid-action observation (search_r1/llm_agent/generation.py).
SEARCH_R1_INVALID = (
    "\nMy previous action is invalid. If I want to search, I should put the query between "
    "<search> and </search>. If I want to give the final answer, I should put the answer "
    "between <answer> and </answer>. Let me try again.\n"
)


class SearchR1Protocol(TagProtocol):
    """Search-R1 tags: ``<search>`` → ``<information>``; ``<answer>X</answer>``.

    >>> p = SearchR1Protocol()
    >>> p.format_result("Doc 1(Title: T) text")
    '\\n\\n<information>Doc 1(Title: T) text</information>\\n\\n'
    >>> p.parse("<answer> Beijing </answer>", {"search": None}).answer
    'Beijing'
    """

    name: ClassVar[str] = "search-r1"
    result_open: ClassVar[str] = "<information>"
    result_close: ClassVar[str] = "</information>"

    def system_prompt(self, tools: Mapping[str, Any]) -> str:
        extra = [
            f"You can also use <{n}> ... </{n}> ({tool_spec(n, t, 'usage') or 'its input'})."
            for n, t in tools.items()
            if n != "search"
        ]
        return (
            " ".join(
                [
                    "Answer the given question. Reason inside <think> and </think> every time you "
                    "get new information.",
                    "If some knowledge is missing, call the search engine with <search> query "
                    "</search>; its top results come back between <information> and "
                    "</information>."
                    if "search" in tools
                    else "",
                    *extra,
                    "You may search as many times as you need. When you know the answer, give it "
                    "inside <answer> and </answer> with no further explanation, for example "
                    "<answer> Beijing </answer>.",
                ]
            )
            .replace("  ", " ")
            .strip()
        )

    def format_result(self, text: str) -> str:
        return f"\n\n<information>{text}</information>\n\n"

    def format_invalid(self, reason: str) -> str:
        return SEARCH_R1_INVALID

    def format_answer(self, answer: str) -> str:
        return f"<answer>{answer}</answer>"
