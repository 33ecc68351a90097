"""LLM-as-judge scoring with ARPO's prompt and decision rule
(docs/benchmarks.md#evaluating-a-model).

``judge_decision`` is bug-compatible with ARPO ``evaluation/src/llm_evaluator_sds.py``: the reply
(or its ``<judgment>`` part) counts as correct when it contains "correct" and none of
"incorrect", "wrong", "not correct" - so "not entirely correct" counts as correct - or when the
prediction and gold are equivalent by the MATH rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from branchgym.envs.scoring.math_equal import is_equiv
from branchgym.errors import ConfigError

__all__ = ["JUDGE_PROMPT", "judge_prompt", "judge_decision", "LLMJudge"]

# ARPO repository (MIT), evaluation/src/llm_evaluator_sds.py; one user message, no system prompt.
JUDGE_PROMPT = (
    "Given a Question and its Golden Answer, verify whether the Predicted Answer is correct. "
    "The prediction is correct if it fully aligns with the meaning and key information of the "
    "Golden Answer. Respond with \"Correct\" if the prediction is correct and \"Incorrect\" "
    "otherwise.\n"
    "Golden Answer may have multiple options, and matching any one of them is considered "
    "correct.\n\n"
    "Question: {question}\n"
    "Golden Answer: {labeled_answer}\n"
    "Predicted Answer: {pred_answer}\n"
)

_JUDGMENT_RE = re.compile(r"<judgment>(.*?)</judgment>", re.DOTALL)


def judge_prompt(question: str, pred: str, gold: str | Sequence[str]) -> str:
    """The judge's user message. A list gold prints as a Python list, as in ARPO."""
    labeled = gold if isinstance(gold, str) else list(gold)
    return JUDGE_PROMPT.format(question=question, labeled_answer=labeled, pred_answer=pred)


def judge_decision(reply: str, pred: str, gold: str | Sequence[str]) -> bool:
    """ARPO's rule: ``is_equiv(pred, gold)`` or ("correct" in r and not any of "incorrect",
    "wrong", "not correct" in r), with r the lower-cased ``<judgment>`` content or reply.

    >>> judge_decision("The prediction is correct.", "a", "b")
    True
    >>> judge_decision("Incorrect", "a", "b"), judge_decision("not entirely correct", "a", "b")
    (False, True)
    """
    m = _JUDGMENT_RE.search(reply or "")
    r = (m.group(1) if m else (reply or "")).lower()
    said_correct = "correct" in r and not ("incorrect" in r or "wrong" in r or "not correct" in r)
    return is_equiv(pred, gold) or said_correct


class LLMJudge:
    """Ask an LLM whether a prediction matches the gold answer.

    Args:
        call: any ``(prompt: str) -> reply: str`` (an OpenAI-compatible client, a local model).
        retries: attempts per question; when all fail (exceptions), the decision falls back to
            ``is_equiv(pred, gold)`` as ARPO does.
    """

    def __init__(self, call: Callable[[str], str], retries: int = 3) -> None:
        if not callable(call):
            raise ConfigError(f"LLMJudge needs a callable (prompt) -> reply, got {call!r}")
        if not isinstance(retries, int) or retries < 1:
            raise ConfigError(f"LLMJudge retries must be an int >= 1, got {retries!r}")
        self.call, self.retries = call, retries
        self.failures = 0

    def __call__(self, question: str, pred: str, gold: str | Sequence[str]) -> bool:
        if not str(pred).strip():
            return False  # empty prediction: every metric is 0
        prompt = judge_prompt(question, pred, gold)
        for _ in range(self.retries):
            try:
                reply = self.call(prompt)
            except Exception:  # a judge outage must not kill an evaluation run
                continue
            return judge_decision(str(reply), pred, gold)
        self.failures += 1
        return is_equiv(pred, gold)
