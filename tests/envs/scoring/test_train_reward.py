"""ARPO training reward: format gate, F1, multi-tool bonus."""

from __future__ import annotations

import doctest

import pytest

from branchgym.envs.scoring.train_reward import arpo_format_ok, arpo_train_reward

GOOD = (r"<think>plan</think><search>q</search><result>r</result>"
        r"<think>ok</think><answer>The final answer is \[ \boxed{Eiffel Tower} \]</answer>")


def test_well_formed_scores_squad_f1():
    assert arpo_train_reward(GOOD, ["eiffel tower"]) == 1.0
    assert arpo_train_reward(GOOD, ["The Eiffel Tower!"]) == 1.0  # punctuation dropped (§6.1)
    assert arpo_train_reward(GOOD, ["Eiffel"]) == pytest.approx(2 / 3)
    assert arpo_train_reward(GOOD, ["Louvre"]) == 0.0  # wrong but well formed
    assert arpo_train_reward(GOOD, ["Louvre", "Eiffel Tower"]) == 1.0


def test_multi_tool_bonus_needs_both_tools_and_positive_f1():
    both = GOOD.replace("<answer>", "<python>print(1)</python><result>1</result><answer>")
    assert arpo_train_reward(both, ["Eiffel Tower"]) == pytest.approx(1.1)
    assert arpo_train_reward(both, ["Louvre"]) == 0.0
    assert arpo_train_reward(GOOD, ["Eiffel Tower"]) == 1.0  # search only: no bonus


@pytest.mark.parametrize("bad", [
    GOOD.replace("<think>plan</think>", "<think>plan"),                 # unbalanced think
    GOOD.replace("<think>plan</think>", "").replace("<think>ok</think>", ""),  # no think
    GOOD + "<answer>\\boxed{x}</answer>",                               # two answers (§6.4)
    GOOD.replace("</answer>", ""),                                      # no closing answer
    GOOD.replace(r"\boxed{Eiffel Tower}", "Eiffel Tower"),              # no box
    GOOD.replace("<result>r</result>", ""),                             # call without result
    GOOD.replace("</search>", ""),                                      # unclosed call
    GOOD.replace("<answer>", "<python>x</python><answer>"),             # python w/o result
    r"<think>a</think><answer></answer>",                               # empty answer (§6.3)
    r"<think>a</think></answer>\boxed{x}<answer>",                      # tags out of order
    r"<think>a</think><answer>\boxed{unclosed</answer>",                # box not extractable
])
def test_format_violations_score_minus_one(bad):
    assert arpo_train_reward(bad, ["Eiffel Tower"]) == -1.0


def test_think_requirement_can_be_relaxed():
    no_think = r"<answer>\boxed{Oslo}</answer>"
    assert arpo_train_reward(no_think, ["Oslo"]) == -1.0
    assert arpo_train_reward(no_think, ["Oslo"], require_think=False) == 1.0
    assert arpo_format_ok(GOOD) and not arpo_format_ok(123 and "")
    assert arpo_train_reward(None, ["x"]) == -1.0  # type: ignore[arg-type]


def test_text_in_box_is_not_unwrapped_in_training():
    t = r"<think>a</think><answer>\boxed{\text{Oslo}}</answer>"
    assert arpo_train_reward(t, ["Oslo"]) == 0.0  # "textoslo" after SQuAD normalisation


def test_docstring_examples():
    from branchgym.envs.scoring import train_reward as module

    assert doctest.testmod(module).failed == 0
