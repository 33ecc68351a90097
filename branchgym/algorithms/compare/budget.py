"""Equal budgets: what one training step spends, and when a run has spent its budget.

A budget is counted from the step metrics the trainer logs (docs/metrics.md), so the same
numbers that stop a run can be checked afterwards from its ``metrics.jsonl``:

- ``tokens``: ``rollout/generated_tokens``, tokens the policy generated (tool results and
  prompt tokens excluded; a clone's shared prefix counted once; DAPO's extra rollout batches
  included, since they were generated even when their groups are dropped);
- ``trajectories``: ``rollout/trajectories``, every trajectory rolled out (DAPO's dropped
  groups included);
- ``seconds``: ``time/step_s``, the wall time of the training steps (held-out evaluation excluded).

A run checks the budget before each step and stops at the first step that reaches it, so every
run ends within one step of the same amount: ``spent - last step < budget ≤ spent``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from branchgym.errors import ConfigError

__all__ = ["BUDGET_METRICS", "Budget", "cumulative"]

BUDGET_METRICS: dict[str, str] = {
    "tokens": "rollout/generated_tokens",
    "trajectories": "rollout/trajectories",
    "seconds": "time/step_s",
}
"""budget kind -> the step metric it sums."""


def cumulative(rows: Sequence[Mapping[str, Any]], kind: str) -> list[float]:
    """Budget spent after each step of ``rows`` (a run's metrics rows, in step order)."""
    if kind not in BUDGET_METRICS:
        raise ConfigError(f"budget kind {kind!r} is not one of {list(BUDGET_METRICS)}.")
    key, total, out = BUDGET_METRICS[kind], 0.0, []
    for r in rows:
        total += float(r.get(key) or 0.0)
        out.append(total)
    return out


@dataclass
class Budget:
    """Tracks one run's spending against ``total`` and the evaluation points it crosses.

    ``points`` are the budget amounts at which the run is evaluated (ascending, the last is
    ``total``); :meth:`add` returns the points a step crossed.
    """

    kind: str
    total: float
    points: list[float] = field(default_factory=list)
    spent: float = 0.0
    steps: int = 0
    _next: int = 0

    def __post_init__(self) -> None:
        if self.kind not in BUDGET_METRICS:
            raise ConfigError(f"budget kind {self.kind!r} is not one of {list(BUDGET_METRICS)}.")
        if not self.total > 0:
            raise ConfigError(f"budget={self.total!r} must be > 0.")

    @classmethod
    def even(cls, kind: str, total: float, n_points: int) -> Budget:
        """Evaluation points at total·i/n for i = 1..n."""
        return cls(kind, total, [total * i / n_points for i in range(1, n_points + 1)])

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.total

    def add(self, metrics: Mapping[str, Any]) -> list[float]:
        """Count one step's metrics; returns the evaluation points reached by this step."""
        self.spent += float(metrics.get(BUDGET_METRICS[self.kind]) or 0.0)
        self.steps += 1
        crossed = []
        while self._next < len(self.points) and self.spent >= self.points[self._next]:
            crossed.append(self.points[self._next])
            self._next += 1
        return crossed
