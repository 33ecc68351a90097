"""Paired-tag counting and tool productivity."""

from __future__ import annotations

import doctest

import pytest

from branchgym.envs.scoring import count_valid_tags, tool_productivity


def test_count_valid_tags():
    text = "<search>a</search> <search>b</search><python>x</python><search>open"
    assert count_valid_tags(text, "search") == 2
    assert count_valid_tags(text, "python") == 1
    assert count_valid_tags("</search><search>", "search") == 0
    assert count_valid_tags("", "search") == 0


def test_tool_productivity():
    assert tool_productivity(1.0, 0.0) == 0.0
    assert tool_productivity(0.4, 0.9) == pytest.approx(0.4 * 0.9 / 1.0 * 100)
    with pytest.raises(ValueError, match="avg_tool_calls"):
        tool_productivity(0.5, -1)


def test_docstring_examples():
    from branchgym.envs.scoring import tool_stats

    assert doctest.testmod(tool_stats).failed == 0
