"""``RolloutBatch``: what a rollout hands the trainer (docs/algorithms.md#notation).

Rows are trajectories (prompt-major; a group is one prompt's G flat samples or its whole tree).
For a tree, ``parent_rows`` / ``branch_points`` give the row each clone was copied from and the
response length at which it diverged (-1 / 0 for a global), which hard attribution reads.
Counters (generated tokens, tool calls, clones) count work actually done: a clone's copied
prefix is not generated again and its shared tool results are not executed again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from branchgym.agents.trajectory import Trajectory

__all__ = ["RolloutBatch", "concat_batches"]


@dataclass
class RolloutBatch:
    """Trajectories with their group ids and tree structure, plus rollout metrics."""

    trajectories: list[Trajectory]
    group_ids: list[int]
    task_ids: list[str]
    parent_rows: list[int]
    branch_points: list[int]
    kind: str = "flat"
    """``"flat"`` or ``"tree"``."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall-clock seconds per phase: generation, tools, clone, reset, close, premonitor."""
    counts: dict[str, int] = field(default_factory=dict)
    """generated_tokens, tool_calls, generate_calls, clones, refills, ..."""
    tree_stats: dict[str, float] = field(default_factory=dict)
    """The expander's counts (``rollout/...``) for tree rollouts."""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.trajectories)
        for name in ("group_ids", "task_ids", "parent_rows", "branch_points"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"RolloutBatch.{name} has {len(getattr(self, name))} entries for {n} rows")

    def __len__(self) -> int:
        return len(self.trajectories)

    @property
    def rewards(self) -> list[float]:
        return [t.reward for t in self.trajectories]

    @property
    def generated_tokens(self) -> int:
        """Tokens the policy actually generated (clones share their parent's prefix)."""
        return int(self.counts.get("generated_tokens", 0))

    @property
    def tool_calls(self) -> int:
        """Tool calls the envs actually executed (clones share the results before the branch)."""
        return int(self.counts.get("tool_calls", 0))

    def metrics(self) -> dict[str, float]:
        """Namespaced scalars for the metrics log (documented in docs/metrics.md)."""
        rows = self.trajectories
        n = max(1, len(rows))
        out = {
            "rollout/reward_mean": sum(self.rewards) / n,
            "rollout/trajectories": float(len(rows)),
            "rollout/generated_tokens": float(self.generated_tokens),
            "rollout/tool_calls": float(self.tool_calls),
            "rollout/tool_calls_per_traj": sum(t.num_tool_calls for t in rows) / n,
            "rollout/response_len_mean": sum(len(t.response_ids) for t in rows) / n,
            "rollout/answered_frac": sum(t.terminated for t in rows) / n,
            "rollout/generate_calls": float(self.counts.get("generate_calls", 0)),
            "rollout/tool_errors": float(self.counts.get("tool_errors", 0)),
        }
        ent = [e for t in rows for e, m in zip(t.entropies, t.loss_mask) if m]
        out["rollout/entropy_mean"] = sum(ent) / len(ent) if ent else 0.0
        for phase, s in self.seconds.items():
            out[f"time/rollout_{phase}_s"] = s
        out.update({k: float(v) for k, v in self.tree_stats.items()})
        return out


def concat_batches(batches: list[RolloutBatch]) -> RolloutBatch:
    """One batch holding every row of ``batches`` in order (DAPO's refill rounds).

    Group ids are shifted so groups of different batches never share an id; parent rows are
    shifted by the rows before them; seconds, counts and tree counts are summed.
    """
    if not batches:
        raise ValueError("concat_batches needs at least one batch")
    if len(batches) == 1:
        return batches[0]
    out = RolloutBatch([], [], [], [], [], kind=batches[0].kind, extra=dict(batches[0].extra))
    group_base = 0
    for b in batches:
        rows = len(out)
        out.trajectories += b.trajectories
        out.group_ids += [g + group_base for g in b.group_ids]
        out.task_ids += b.task_ids
        out.parent_rows += [p + rows if p >= 0 else p for p in b.parent_rows]
        out.branch_points += b.branch_points
        group_base = max(out.group_ids, default=-1) + 1
        for mine, theirs in ((out.seconds, b.seconds), (out.counts, b.counts), (out.tree_stats, b.tree_stats)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v
    return out
