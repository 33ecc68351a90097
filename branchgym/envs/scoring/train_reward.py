"""ARPO's training reward (``verl/utils/reward_score/deep_research.py``; docs/algorithms.md#arpo).

1. Format gate, -1 when any holds: no ``<think>`` or unequal ``<think>``/``</think>`` counts (when
   ``require_think``); not exactly one ``<answer>`` and one ``</answer>``; a ``<search>`` or
   ``<python>`` not followed, in order, by its closing tag, ``<result>`` and ``</result>``; no
   ``\\boxed{`` inside the answer; the box cannot be extracted.
2. Score = SQuAD-normalised token F1 of the boxed answer against the golds (max), plus a 0.1
   bonus when F1 > 0 and both ``</search>`` and ``</python>`` occur (multi-tool use).
   Unlike evaluation, a ``\\text{...}`` inside the box is not unwrapped (ARPO does not).
"""

from __future__ import annotations

from collections.abc import Iterable

from branchgym.envs.scoring.extract import last_boxed_only_string, remove_boxed
from branchgym.envs.scoring.metrics import squad_f1

__all__ = ["arpo_format_ok", "arpo_train_reward", "MULTI_TOOL_BONUS"]

MULTI_TOOL_BONUS = 0.1


def _calls_closed(text: str, tag: str) -> bool:
    """Every ``<tag>`` is followed by ``</tag>``, then ``<result>``, then ``</result>``."""
    pos = text.find(f"<{tag}>")
    while pos >= 0:
        close = text.find(f"</{tag}>", pos)
        res = text.find("<result>", close) if close >= 0 else -1
        end = text.find("</result>", res) if res >= 0 else -1
        if end < 0:
            return False
        pos = text.find(f"<{tag}>", pos + 1)
    return True


def arpo_format_ok(text: str, *, require_think: bool = True) -> bool:
    """The format gate of step 1 (without the box extraction)."""
    if require_think:
        n_open = text.count("<think>")
        if n_open == 0 or n_open != text.count("</think>"):
            return False
    if text.count("<answer>") != 1 or text.count("</answer>") != 1:
        return False
    start, end = text.find("<answer>"), text.find("</answer>")
    if end < start:
        return False
    if not (_calls_closed(text, "search") and _calls_closed(text, "python")):
        return False
    return "\\boxed{" in text[start:end]


def arpo_train_reward(text: str, golds: str | Iterable[str], *,
                      require_think: bool = True) -> float:
    """-1 on bad format, else squad F1 (+0.1 when F1 > 0 and both search and python were used).

    >>> t = "<think>a</think><search>q</search><result>r</result><python>1</python>"
    >>> arpo_train_reward(t + "<result>1</result><answer>\\\\boxed{Oslo}</answer>", ["oslo"])
    1.1
    >>> arpo_train_reward("<think>a</think><answer>Oslo</answer>", ["Oslo"])
    -1.0
    """
    if not isinstance(text, str) or not arpo_format_ok(text, require_think=require_think):
        return -1.0
    span = text[text.find("<answer>") + len("<answer>") : text.find("</answer>")]
    boxed = last_boxed_only_string(span)
    if boxed is None:
        return -1.0
    try:
        answer = remove_boxed(boxed)  # no \text{} unwrapping here, as in ARPO's reward
    except ValueError:
        return -1.0
    f1 = squad_f1(answer, golds)
    if f1 > 0 and "</search>" in text and "</python>" in text:
        f1 += MULTI_TOOL_BONUS
    return f1
