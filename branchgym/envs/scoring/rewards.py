"""Score one model output against a task, and the reward registry the env uses.

``score(text, task, judge=None)`` returns every metric ARPO's evaluation computes (em, acc, f1,
math_equal, and judge when a judge is given) plus the extracted prediction. ``REWARDS`` maps
reward names to ``(text: str, task: Task, **ctx) -> float``; ``ctx`` may carry ``judge`` (an
:class:`~branchgym.envs.scoring.judge.LLMJudge` or ``(question, pred, golds) -> bool``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from branchgym.envs.scoring.extract import extract_prediction
from branchgym.envs.scoring.math_equal import math_equal
from branchgym.envs.scoring.metrics import exact_match, expand_golds, substring_acc, token_f1
from branchgym.envs.scoring.train_reward import arpo_train_reward
from branchgym.envs.types import Task
from branchgym.errors import ConfigError
from branchgym.registry import Registry

__all__ = ["score", "REWARDS", "RewardFn"]

RewardFn = Callable[..., float]
REWARDS: Registry[RewardFn] = Registry("reward")


def _golds(task: Task) -> list[str]:
    return expand_golds(task.answers)


def score(text: str, task: Task, judge: Callable[[str, str, Any], bool] | None = None
          ) -> dict[str, Any]:
    """All metrics for one output (docs/benchmarks.md#evaluating-a-model).

    The prediction is :func:`extract_prediction` (box in the last answer block, else the last 5
    lines). QA normalisation (articles dropped) applies to ``answer_type="string"`` tasks.
    An empty prediction scores 0 everywhere and the judge is not called.
    """
    pred = extract_prediction(text if isinstance(text, str) else "")
    golds = _golds(task)
    qa = task.answer_type == "string"
    out: dict[str, Any] = {
        "prediction": pred,
        "em": exact_match(pred, golds, qa=qa),
        "acc": substring_acc(pred, golds, qa=qa),
        "f1": token_f1(pred, golds, qa=qa),
        "math_equal": math_equal(pred, golds, task.answer_type),
    }
    if judge is not None:
        gold: Any = golds[0] if len(golds) == 1 else golds
        out["judge"] = float(bool(judge(task.question, pred, gold))) if pred.strip() else 0.0
    return out


@REWARDS.register("f1")
def f1_reward(text: str, task: Task, **ctx: Any) -> float:
    """Evaluation token F1 of the extracted prediction (max over golds)."""
    return token_f1(extract_prediction(text), _golds(task), qa=task.answer_type == "string")


@REWARDS.register("em")
def em_reward(text: str, task: Task, **ctx: Any) -> float:
    """Evaluation exact match of the extracted prediction."""
    return exact_match(extract_prediction(text), _golds(task), qa=task.answer_type == "string")


@REWARDS.register("math_equal")
def math_equal_reward(text: str, task: Task, **ctx: Any) -> float:
    """MATH equivalence (numeric tolerance for ``answer_type="number"``)."""
    return math_equal(extract_prediction(text), _golds(task), task.answer_type)


@REWARDS.register("arpo_train")
def arpo_train(text: str, task: Task, **ctx: Any) -> float:
    """ARPO's training reward on the whole trajectory text: -1 / F1 / +0.1 multi-tool bonus.

    ``ctx["require_think"]`` (default True) toggles the ``<think>`` part of the format gate.
    """
    return arpo_train_reward(text, _golds(task), require_think=ctx.get("require_think", True))


@REWARDS.register("llm_judge")
def llm_judge(text: str, task: Task, **ctx: Any) -> float:
    """1.0 when ``ctx["judge"]`` accepts the prediction (ARPO's judge), else 0.0."""
    judge = ctx.get("judge")
    if judge is None or not callable(judge):
        raise ConfigError("reward 'llm_judge' needs judge=LLMJudge(call) (call: prompt -> reply) "
                          f"in the env's reward context; got {judge!r}")
    return score(text, task, judge=judge)["judge"]
