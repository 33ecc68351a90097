"""ARPO's tool-use statistics: paired-tag counts and tool productivity."""

from __future__ import annotations

__all__ = ["count_valid_tags", "tool_productivity"]


def count_valid_tags(text: str, tag: str) -> int:
    """Number of ``<tag>...</tag>`` pairs, each opening matched by the next closing after it.

    >>> count_valid_tags("<search>a</search><search>b<python>1</python>", "search")
    1
    """
    opening, closing = f"<{tag}>", f"</{tag}>"
    count, pos = 0, 0
    while True:
        start = text.find(opening, pos)
        if start < 0:
            return count
        end = text.find(closing, start + len(opening))
        if end < 0:
            return count
        count += 1
        pos = end + len(closing)


def tool_productivity(acc: float, avg_tool_calls: float) -> float:
    """``acc * avg_calls / (avg_calls + 0.1) * 100`` (ARPO's evaluation; acc in [0, 1]).

    >>> round(tool_productivity(0.5, 2.0), 3)
    47.619
    """
    if avg_tool_calls < 0:
        raise ValueError(f"avg_tool_calls must be >= 0, got {avg_tool_calls!r}")
    return acc * avg_tool_calls / (avg_tool_calls + 0.1) * 100
