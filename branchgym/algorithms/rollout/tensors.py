"""Turn a :class:`RolloutBatch` into the (B, L) tensors the trainer's forward and losses read.

Rows are right-padded ``prompt + response`` token ids. Per-token tensors are aligned with the
trainer's ``forward_logprobs`` (position t holds the log-prob of token t given tokens < t), so
``loss_mask`` is the trajectory's full loss mask (0 on the prompt, on tool results and on
padding). ``step_ids`` numbers the model segments (EMPG's steps; -1 elsewhere).
``branch_points`` count shared leading positions of the full row (prompt included), which is
what hard attribution needs (rows of one tree share their prompt).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from branchgym.algorithms.rollout.batch import RolloutBatch

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["TrainTensors", "to_tensors"]


@dataclass(frozen=True)
class TrainTensors:
    """Padded training tensors of one rollout batch (B rows, L positions)."""

    input_ids: Tensor
    attention_mask: Tensor
    loss_mask: Tensor
    step_ids: Tensor
    rewards: Tensor
    group_ids: Tensor
    parent_ids: Tensor
    branch_points: Tensor
    lengths: Tensor
    """tokens per row (prompt + response)."""
    rollout_logprobs: Tensor | None = None
    """log-probs the rollout engine reported for the sampled tokens (0 off the loss mask); the
    trainer compares them with its own recomputation (``train/rollout_logprob_abs_diff``)."""

    def rows(self, idx: Sequence[int] | Tensor) -> TrainTensors:
        """The sub-batch of rows ``idx``, cut to its own longest row.

        Parent ids are re-pointed at the parent's position in the sub-batch; a row whose parent is
        not in it becomes a root (-1, branch point 0).
        """
        import torch

        idx_l = [int(i) for i in idx]
        idx_t = torch.as_tensor(idx_l, dtype=torch.long)
        width = int(self.lengths[idx_t].max())
        cut = lambda t: t[idx_t, :width]  # noqa: E731
        where = {old: new for new, old in enumerate(idx_l)}
        parents = [where.get(int(self.parent_ids[i]), -1) if int(self.parent_ids[i]) >= 0 else -1 for i in idx_l]
        points = [int(self.branch_points[i]) if p >= 0 else 0 for i, p in zip(idx_l, parents)]
        return TrainTensors(
            cut(self.input_ids), cut(self.attention_mask), cut(self.loss_mask), cut(self.step_ids),
            self.rewards[idx_t], self.group_ids[idx_t], torch.tensor(parents, dtype=torch.long),
            torch.tensor(points, dtype=torch.long), self.lengths[idx_t],
            None if self.rollout_logprobs is None else cut(self.rollout_logprobs),
        )


def to_tensors(batch: RolloutBatch, pad_id: int, rewards: Sequence[float] | None = None) -> TrainTensors:
    """Stack the batch's trajectories (``rewards`` overrides the trajectories' own, e.g. shaped)."""
    import torch

    trajs = batch.trajectories
    lengths = [len(t.prompt_ids) + len(t.response_ids) for t in trajs]
    b, width = len(trajs), max(lengths)
    ids = torch.full((b, width), pad_id, dtype=torch.long)
    att = torch.zeros((b, width), dtype=torch.long)
    mask = torch.zeros((b, width), dtype=torch.float32)
    steps = torch.full((b, width), -1, dtype=torch.long)
    logp = torch.zeros((b, width), dtype=torch.float32)
    for r, t in enumerate(trajs):
        n, p = lengths[r], len(t.prompt_ids)
        ids[r, :n] = torch.tensor(t.token_ids)
        att[r, :n] = 1
        mask[r, p:n] = torch.tensor(t.loss_mask, dtype=torch.float32)
        if len(t.logprobs) == n - p:
            logp[r, p:n] = torch.tensor(t.logprobs, dtype=torch.float32) * mask[r, p:n]
        for s, seg in enumerate(t.segments):
            steps[r, p + seg.start : p + seg.end] = s
    steps = torch.where(mask > 0, steps, torch.full_like(steps, -1))
    prompt_len = torch.tensor([len(t.prompt_ids) for t in trajs], dtype=torch.long)
    points = torch.tensor(batch.branch_points, dtype=torch.long)
    parents = torch.tensor(batch.parent_rows, dtype=torch.long)
    points = torch.where(parents >= 0, points + prompt_len, torch.zeros_like(points))
    r = torch.tensor(list(rewards) if rewards is not None else batch.rewards, dtype=torch.float32)
    return TrainTensors(
        ids, att, mask, steps, r, torch.tensor(batch.group_ids, dtype=torch.long), parents, points,
        torch.tensor(lengths, dtype=torch.long), logp,
    )
