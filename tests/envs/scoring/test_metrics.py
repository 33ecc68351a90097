"""EM, substring accuracy and token F1 with both normalisations."""

from __future__ import annotations

import doctest

import pytest

from branchgym.envs.scoring.metrics import (
    exact_match, expand_golds, normalize_answer, normalize_squad, squad_f1, substring_acc,
    token_f1,
)


def test_evaluation_keeps_punctuation_training_removes_it():  # §6.1
    assert normalize_answer("  The  Eiffel Tower. ") == "eiffel tower."
    assert normalize_answer("The Eiffel Tower", qa=False) == "the eiffel tower"
    assert normalize_squad("The Eiffel-Tower!") == "eiffeltower"
    assert exact_match("Paris.", ["Paris"]) == 0.0 and token_f1("Paris.", ["Paris"]) == 0.0
    assert squad_f1("Paris.", ["Paris"]) == 1.0


def test_exact_match_and_substring_acc():
    assert exact_match("the Eiffel Tower", ["Eiffel tower"]) == 1.0
    assert exact_match("Eiffel", ["Eiffel tower"]) == 0.0
    assert substring_acc("It is the Eiffel Tower in Paris", ["eiffel tower"]) == 1.0
    assert substring_acc("Eiffel", ["Eiffel tower"]) == 0.0
    assert exact_match("", [""]) == 0.0 and substring_acc("x", [""]) == 0.0
    assert exact_match("b", ["a", "B"]) == 1.0  # max over golds


def test_token_f1_vectors():
    assert token_f1("Eiffel Tower", ["Eiffel Tower"]) == 1.0
    assert token_f1("the Eiffel tower", ["Eiffel Tower, Paris"]) == pytest.approx(0.4)
    # P = 1/3, R = 1/2 -> F1 = 0.4; max over golds
    assert token_f1("red green blue", ["green yellow", "nothing"]) == pytest.approx(0.4)
    assert token_f1("a a a", ["a"]) == 0.0  # only articles -> empty prediction
    assert token_f1("x x y", ["x y y"]) == pytest.approx(2 / 3)


def test_squad_f1_yes_no_rule():
    assert squad_f1("yes", ["yes"]) == 1.0
    assert squad_f1("yes", ["yes it is"]) == 0.0
    assert squad_f1("no answer", ["noanswer"]) == 0.0
    assert squad_f1("3\\sqrt{3}-6", ["3\\sqrt{3}-6"]) == 1.0  # token F1 used for math too


def test_list_golds_written_as_text_are_split():
    assert expand_golds("['New York City', 'NYC']") == ["New York City", "NYC"]
    assert expand_golds(["[a, b]", "c"]) == ["a", "b", "c"]
    assert expand_golds([42]) == ["42"]  # AIME golds may be ints (§6.6)
    assert exact_match("NYC", ["['New York City', 'NYC']"]) == 1.0


def test_docstring_examples():
    from branchgym.envs.scoring import metrics as module

    assert doctest.testmod(module).failed == 0
