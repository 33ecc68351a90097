"""Rollout-tree structure: nodes with parent pointers and branch points, and hard attribution.

A tree rollout (ARPO/AEPO, docs/algorithms.md#arpo) clones a trajectory after a tool result; the
clone shares the parent's first ``branch_point`` response tokens. :class:`TreeNode` is the record
the :class:`~branchgym.algorithms.expander.TreeExpander` keeps for every trajectory.
:func:`token_origins` and :func:`hard_attribution` turn the parent pointers of a batch into ARPO's
hard advantage attribution (docs/algorithms.md#arpo): a token shared by the trajectories D(t) gets
``(1/|D|) Σ_{i∈D} Â_i``; tokens after the branch point keep ``Â_i``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from branchgym.errors import ConfigError

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["TreeNode", "token_origins", "hard_attribution"]

NodeKind = Literal["global", "clone", "refill"]


@dataclass(frozen=True)
class TreeNode:
    """One trajectory of a rollout tree.

    ``node_id``: creation index over the whole batch (0, 1, 2, ...; creation order).
    ``prompt``: index of the prompt (group) it belongs to.
    ``parent``: node_id it was cloned from, ``None`` for a global or refill trajectory.
    ``branch_point``: number of response tokens shared with the parent (the token index where
    the clone diverges; it includes the tool result just appended); 0 for globals.
    ``depth``: 0 for globals, parent depth + 1 for clones.
    ``consecutive``: the consecutive-branch counter l in force when the node was created.
    ``round``: generation round in which it was created (0 = initial globals).
    ``kind``: ``"global"`` (initial), ``"clone"`` (branch) or ``"refill"`` (late global).
    """

    node_id: int
    prompt: int
    parent: int | None
    branch_point: int
    depth: int
    consecutive: int
    round: int
    kind: NodeKind


def token_origins(parent_ids: Tensor, branch_points: Tensor, num_tokens: int) -> Tensor:
    """For each (row i, position t), the row that first generated that token instance.

    ``origin[i, t] = origin[parent(i), t]`` if ``t < branch_point(i)``, else ``i``. Rows must be
    ordered so that a parent precedes its children (creation order guarantees it).
    Shapes: (B,), (B,), T -> (B, T) long.

    >>> import torch
    >>> token_origins(torch.tensor([-1, 0]), torch.tensor([0, 2]), 4)
    tensor([[0, 0, 0, 0],
            [0, 0, 1, 1]])
    """
    import torch  # torch stays out of the expander's import path

    b = int(parent_ids.shape[0])
    parents = parent_ids.tolist()
    points = branch_points.tolist()
    origin = torch.arange(b).unsqueeze(1).repeat(1, num_tokens)
    for i, (p, bp) in enumerate(zip(parents, points, strict=False)):
        if p < 0:
            continue
        if not 0 <= p < i:
            raise ConfigError(
                f"row {i} has parent_ids={p}; a parent must be an earlier row of the batch "
                "(keep trajectories in creation order, or -1 for a global trajectory)."
            )
        if not 0 <= bp <= num_tokens:
            raise ConfigError(
                f"row {i} has branch_points={bp}, outside [0, T={num_tokens}]; it is the number "
                "of response tokens the clone shares with its parent."
            )
        origin[i, :bp] = origin[p, :bp]
    return origin


def hard_attribution(
    row_advantages: Tensor, parent_ids: Tensor, branch_points: Tensor, loss_mask: Tensor
) -> Tensor:
    """ARPO hard attribution: each token gets the mean ``Â`` over the rows sharing it.

    ``A[i, t] = (1/|D(i,t)|) Σ_{k∈D(i,t)} Â_k`` with ``D(i,t) = {k : origin[k,t] = origin[i,t]}``
    (rows holding the same token instance); then masked by ``loss_mask``.
    Ref: ARPO arXiv:2507.19849 §"advantage attribution estimation" (hard; not in the released
    code: ``attribution="hard"``); docs/algorithms.md#arpo, #ex-attribution. Shapes: (B,), (B,),
    (B,), (B, T) -> (B, T).

    >>> import torch
    >>> hard_attribution(torch.tensor([1., -1.]), torch.tensor([-1, 0]), torch.tensor([0, 2]),
    ...                  torch.ones(2, 3))
    tensor([[ 0.,  0.,  1.],
            [ 0.,  0., -1.]])
    """
    import torch

    b, t = loss_mask.shape
    origin = token_origins(parent_ids, branch_points, t)
    key = origin * t + torch.arange(t).unsqueeze(0)  # one key per token instance
    values = row_advantages.float().unsqueeze(1).expand(b, t).reshape(-1)
    flat_key = key.reshape(-1)
    sums = torch.zeros(b * t, dtype=values.dtype).index_add_(0, flat_key, values)
    counts = torch.zeros(b * t, dtype=values.dtype).index_add_(0, flat_key, torch.ones_like(values))
    shared = (sums / counts.clamp(min=1.0))[flat_key].reshape(b, t)
    return shared * loss_mask.to(shared.dtype)
