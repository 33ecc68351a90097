"""Page summarisers for the browse tool: an LLM reads the page and keeps what the goal needs.

``BrowseTool(fetcher, summarizer=...)`` calls ``summarizer(page_text, goal)`` when the agent
browses with a goal (``<browse>url | goal</browse>``); this mirrors ARPO's deep-search mode, where
a second model condenses fetched pages (docs/benchmarks.md#web-search-and-browsing). Two adapters:

- :class:`PolicySummarizer` over any ``branchgym.agents`` :class:`Policy` (HF, vLLM, OpenAI);
- :class:`ChatSummarizer` over an OpenAI-compatible chat endpoint
  (:class:`~branchgym.envs.web.judge_client.ChatClient`).

Pass one through ``gym.make(..., tool_kwargs={"browse": {"summarizer": s}})``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

from branchgym.errors import ConfigError

__all__ = ["SUMMARY_PROMPT", "summary_prompt", "final_information", "PolicySummarizer",
           "ChatSummarizer"]

SUMMARY_PROMPT = (
    "You read a web page for a research assistant. The assistant is looking for: {goal}\n\n"
    "Page text (possibly cut):\n{page}\n\n"
    "Write down only the facts from this page that help with what the assistant is looking "
    "for, with numbers, names and dates exactly as the page gives them. If the page has "
    "nothing relevant, say so. End with a line starting with 'Final Information:' followed "
    "by the relevant facts."
)
_MARK = "final information"


def summary_prompt(page_text: str, goal: str, max_page_chars: int) -> str:
    """The summariser's user message, the page cut to ``max_page_chars``."""
    return SUMMARY_PROMPT.format(goal=goal.strip(), page=page_text[:max_page_chars])


def final_information(reply: str) -> str:
    """The text after the last 'Final Information' marker, else the whole reply (stripped).

    >>> final_information("notes...\\n**Final Information**: first lit in 1887")
    'first lit in 1887'
    """
    low = reply.lower()
    i = low.rfind(_MARK)
    if i < 0:
        return reply.strip()
    return reply[i + len(_MARK):].lstrip("*: \n\t").strip() or reply.strip()


class _Base(abc.ABC):
    def __init__(self, max_page_chars: int) -> None:
        if not isinstance(max_page_chars, int) or max_page_chars < 100:
            raise ConfigError(f"max_page_chars must be an int >= 100, got {max_page_chars!r}")
        self.max_page_chars = max_page_chars

    @abc.abstractmethod
    def _reply(self, prompt: str) -> str:
        """The summariser model's reply to ``prompt``."""

    def __call__(self, page_text: str, goal: str) -> str:
        return final_information(self._reply(summary_prompt(page_text, goal,
                                                            self.max_page_chars)))


class PolicySummarizer(_Base):
    """Summarise with a ``Policy``: chat template over one user message, one completion.

    Args:
        policy: any :class:`branchgym.agents.policy.Policy`.
        params: its ``SamplingParams`` (default: greedy, 512 new tokens).
        max_page_chars: page characters put in the prompt (ARPO keeps ~6,000 around a match).
    """

    def __init__(self, policy: Any, params: Any = None, *, max_page_chars: int = 6000) -> None:
        super().__init__(max_page_chars)
        if not (callable(getattr(policy, "generate", None))
                and callable(getattr(policy, "encode_chat", None))):
            raise ConfigError(f"PolicySummarizer needs a branchgym Policy, got {policy!r}")
        if params is None:
            from branchgym.agents.policy import SamplingParams

            params = SamplingParams(max_new_tokens=512, temperature=0.0)
        self.policy, self.params = policy, params

    def _reply(self, prompt: str) -> str:
        ids = self.policy.encode_chat([{"role": "user", "content": prompt}])
        (completion,) = self.policy.generate([ids], self.params)
        return completion.text


class ChatSummarizer(_Base):
    """Summarise through a ``(prompt) -> reply`` callable such as :class:`ChatClient`."""

    def __init__(self, call: Callable[[str], str], *, max_page_chars: int = 6000) -> None:
        super().__init__(max_page_chars)
        if not callable(call):
            raise ConfigError(f"ChatSummarizer needs a callable (prompt) -> reply, got {call!r}")
        self.call = call

    def _reply(self, prompt: str) -> str:
        return str(self.call(prompt))
