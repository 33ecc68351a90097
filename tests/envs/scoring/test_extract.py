"""Answer extraction vectors (ARPO's evaluation rules)."""

from __future__ import annotations

import doctest

import pytest

from branchgym.envs.scoring.extract import (
    answer_span, extract_answer, extract_prediction, last_boxed_only_string, last_lines,
    remove_boxed, unwrap_text,
)


@pytest.mark.parametrize("text, expected", [
    # ARPO's prompt format
    (r"<think>...</think><answer>The final answer is \[ \boxed{Paris} \]</answer>", "Paris"),
    # last <answer> block wins (§6.4), last box inside it
    (r"<answer>\boxed{1}</answer> more <answer>\boxed{2} or \boxed{3}</answer>", "3"),
    # brace matching keeps nested braces
    (r"<answer>\boxed{\frac{1}{2}}</answer>", r"\frac{1}{2}"),
    (r"<answer>\fbox{42}</answer>", "42"),
    (r"<answer>\boxed{\text{Oslo}}</answer>", "Oslo"),
    (r"<answer>\boxed{\text{a} + \text{b}}</answer>", r"\text{a} + \text{b}"),
    # no box: the whole span, stripped
    ("<answer>  Marie Curie \n</answer>", "Marie Curie"),
    # no answer block: last box anywhere
    (r"so \boxed{7} then \boxed{8}", "8"),
    (r"\boxed 5$ dollars", "5"),
    # unclosed box inside the answer: whole span
    (r"<answer>\boxed{12</answer>", r"\boxed{12"),
    # nothing at all
    ("no answer here", ""),
    ("", ""),
    # unclosed <answer>: runs to the end
    ("<answer> Lyon", "Lyon"),
])
def test_extract_answer_vectors(text, expected):
    assert extract_answer(text) == expected


def test_box_helpers():
    assert last_boxed_only_string(r"x \boxed{a{b}c} y") == r"\boxed{a{b}c}"
    assert last_boxed_only_string(r"\boxed{a") is None
    assert last_boxed_only_string("none") is None
    assert remove_boxed(r"\boxed{x}") == "x" and remove_boxed(r"\fbox{y}") == "y"
    assert remove_boxed(r"\boxed z") == "z"
    with pytest.raises(ValueError, match="not a boxed"):
        remove_boxed("x")
    assert unwrap_text(r"\text{a}") == "a"
    assert unwrap_text(r"\text{a}+\text{b}") == r"\text{a}+\text{b}"
    assert answer_span("a <answer>b</answer>") == "b" and answer_span("none") is None


def test_fallback_to_last_five_lines_is_a_separate_step():
    text = "\n".join(f"line {i}" for i in range(10)) + "\n\n"
    assert extract_answer(text) == ""
    assert last_lines(text) == "line 5\nline 6\nline 7\nline 8\nline 9"
    assert extract_prediction(text) == last_lines(text)
    # §6.3: an empty <answer> falls back to the last lines in evaluation
    empty = "reasoning\nthe city is Oslo\n<answer></answer>"
    assert extract_answer(empty) == ""
    assert extract_prediction(empty) == "reasoning\nthe city is Oslo\n<answer></answer>"
    assert extract_prediction(r"<answer>\boxed{9}</answer>") == "9"
    assert extract_prediction(None) == ""  # type: ignore[arg-type]


def test_docstring_examples():
    from branchgym.envs.scoring import extract as module

    assert doctest.testmod(module).failed == 0
