"""A tiny in-test env with ToolEnv's contract, for fast loop tests.

``reset`` gives a prompt and ``info["messages"]``; ``step`` runs the first complete
``<search>``/``<python>`` call with a deterministic fake tool and returns the result wrapped in
``<result>`` tags; ``<answer>`` terminates with reward 1 if it contains the gold answer.
It records every action it receives, so tests compare token ids with what the env saw.
"""

from __future__ import annotations

import copy
import re
from typing import Any


class _Protocol:
    stop_strings = ("</search>", "</python>", "</answer>")


class ToyToolEnv:
    """Deterministic tool env; ``unwrapped`` is itself, as for a bare gymnasium env."""

    def __init__(
        self, question: str = "Who founded the band river?", gold: str = "42", max_turns: int = 4
    ) -> None:
        self.protocol = _Protocol()
        self.question, self.gold, self.max_turns = question, gold, max_turns
        self.actions: list[str] = []
        self.observations: list[str] = []
        self.turns = 0

    @property
    def unwrapped(self) -> ToyToolEnv:
        return self

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[str, dict]:
        self.actions, self.observations, self.turns = [], [], 0
        messages = [
            {"role": "system", "content": "Answer with tools. Use <search>q</search>."},
            {"role": "user", "content": self.question},
        ]
        return self.question, {"messages": messages}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        self.actions.append(action)
        self.turns += 1
        m = re.search(r"<answer>(.*?)</answer>", action, re.S)
        if m:
            r = float(self.gold in m.group(1))
            return "", r, True, False, {"answer": m.group(1)}
        call = re.search(r"<(search|python)>(.*?)</\1>", action, re.S)
        if call:
            text = f"Page 1: {call.group(2).strip()[:40]} ü ∑ result number {len(self.actions)}"
            info = {"invalid_action": False}
        else:
            text = "No tool call found. Call a tool like <search>query</search>."
            info = {"invalid_action": True}
        obs = f"\n<result>\n{text}\n</result>\n"
        self.observations.append(obs)
        trunc = self.turns >= self.max_turns
        return ("" if trunc else obs), 0.0, False, trunc, info

    def clone(self) -> ToyToolEnv:
        return copy.deepcopy(self)

    def close(self) -> None:
        pass
