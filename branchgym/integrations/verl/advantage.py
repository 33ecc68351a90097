"""The recipe's advantage step on a verl ``DataProto`` (pure, CPU-testable).

verl's estimator signature sees only ``token_level_rewards``, ``response_mask`` and ``uid``. The
branchgym agent loops put more into every output's ``extra_fields`` (docs/integrations/verl.md#
agent-loops) and verl's trainer computes the old policy's token entropies; this module turns
those into branchgym's :class:`~branchgym.algorithms.inputs.AdvantageInputs` and calls the
registered branchgym estimator. What it reads from a batch:

- ``batch["response_mask"]`` (B, T), ``batch["token_level_rewards"]`` (B, T), ``non_tensor_batch
  ["uid"]`` (the group: one prompt);
- ``batch["entropy"]`` (B, T): verl's old-policy token entropies (AEPO, EMPG);
- ``non_tensor_batch["extra_fields"]``: one dict per row with ``branchgym_reward`` (the env's
  reward of that row), ``branchgym_tree_id``, ``branchgym_row`` (creation index in the tree),
  ``branchgym_parent_row`` (-1 for a global trajectory) and ``branchgym_branch_point`` (response
  tokens shared with the parent).

:func:`env_rewards_into_scores` exists because verl's agent-loop worker gives every output of a
session the reward of the session's LAST output; a tree's leaves each have their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from branchgym.algorithms.inputs import AdvantageInputs, needs_of
from branchgym.algorithms.registry import ADVANTAGES
from branchgym.errors import ConfigError

__all__ = [
    "ENV_REWARD",
    "TREE_ID",
    "TREE_ROW",
    "PARENT_ROW",
    "BRANCH_POINT",
    "extra_fields_of",
    "env_rewards_into_scores",
    "tree_parents",
    "step_ids_from_mask",
    "advantage_inputs",
    "compute_advantage",
]

ENV_REWARD = "branchgym_reward"
TREE_ID = "branchgym_tree_id"
TREE_ROW = "branchgym_row"
PARENT_ROW = "branchgym_parent_row"
BRANCH_POINT = "branchgym_branch_point"


def extra_fields_of(data: Any) -> list[Mapping[str, Any]]:
    """One ``extra_fields`` dict per row (empty dicts when the batch has none)."""
    column = data.non_tensor_batch.get("extra_fields")
    n = len(data)
    if column is None:
        return [{} for _ in range(n)]
    rows = column.tolist() if hasattr(column, "tolist") else list(column)
    return [r if isinstance(r, Mapping) else {} for r in rows]


def _last_valid(mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's last 1 in ``mask`` (0 for an all-zero row)."""
    t = mask.shape[1]
    pos = torch.arange(t, device=mask.device).unsqueeze(0).expand_as(mask)
    return torch.where(mask > 0, pos, torch.zeros_like(pos)).max(dim=1).values


def env_rewards_into_scores(data: Any, *, padding: Sequence[bool] | None = None) -> Any:
    """Put each row's ``branchgym_reward`` at its last loss-bearing token of
    ``token_level_scores`` and ``token_level_rewards`` (rows without one keep theirs).

    ``padding``: rows verl added to even out the batch (``tag["is_padding"]``); they copy a real
    row's fields, so they get reward 0. Returns ``data`` (modified in place).
    """
    extras = extra_fields_of(data)
    pad = np.zeros(len(data), dtype=bool) if padding is None else np.asarray(padding, bool)
    has = [ENV_REWARD in e or p for e, p in zip(extras, pad, strict=True)]
    if not any(has):
        return data
    mask = data.batch["response_mask"]
    keys = data.batch.keys()
    key = "token_level_scores" if "token_level_scores" in keys else "token_level_rewards"
    scores = data.batch[key].clone()
    last = _last_valid(mask)
    for i, (e, p) in enumerate(zip(extras, pad, strict=True)):
        if not has[i]:
            continue
        scores[i].zero_()
        scores[i, last[i]] = 0.0 if p else float(e[ENV_REWARD])
    data.batch["token_level_scores"] = scores
    data.batch["token_level_rewards"] = scores.clone()
    return data


def tree_parents(
    extras: Sequence[Mapping[str, Any]], num_tokens: int, *, usable: Sequence[bool] | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(order, parent_ids, branch_points) for branchgym's tree functions.

    ``order`` lists the batch rows so that every parent precedes its children (tree, then
    creation row); ``parent_ids``/``branch_points`` are in that order, a parent as its position
    in ``order`` (-1: a global trajectory, a row without tree fields, or a parent absent from
    the batch, whose shared prefix then counts as the row's own). Branch points are clamped to
    ``num_tokens`` (verl cuts responses at ``rollout.response_length``).
    """
    n = len(extras)
    ok = [True] * n if usable is None else list(usable)
    keyed = []
    for i, e in enumerate(extras):
        tree = e.get(TREE_ID) if ok[i] else None
        row = int(e.get(TREE_ROW, 0)) if tree is not None else 0
        keyed.append((0 if tree is None else 1, str(tree), row, i))
    order = [k[3] for k in sorted(keyed)]
    position = {}
    for pos, i in enumerate(order):
        tree = extras[i].get(TREE_ID) if ok[i] else None
        if tree is not None:
            position.setdefault((str(tree), int(extras[i].get(TREE_ROW, 0))), pos)
    parents, points = [], []
    for pos, i in enumerate(order):
        e = extras[i]
        tree = e.get(TREE_ID) if ok[i] else None
        parent_row = int(e.get(PARENT_ROW, -1)) if tree is not None else -1
        parent = position.get((str(tree), parent_row), -1) if parent_row >= 0 else -1
        if parent >= pos:  # a malformed tree: never let a row share a later row's prefix
            raise ConfigError(
                f"row {i} names parent row {parent_row} of tree {tree!r}, which is not created "
                "before it; the agent loop's branchgym_row must be the creation order."
            )
        parents.append(parent)
        points.append(min(max(int(e.get(BRANCH_POINT, 0)), 0), num_tokens) if parent >= 0 else 0)
    return torch.tensor(order), torch.tensor(parents), torch.tensor(points)


def step_ids_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """EMPG's steps: each contiguous run of model tokens (``mask`` 1) is one step, numbered from
    0 per row; tool-result and padding tokens get -1. Shapes: (B, T) -> (B, T) long.

    >>> step_ids_from_mask(torch.tensor([[1, 1, 0, 1, 0, 0]]))
    tensor([[ 0,  0, -1,  1, -1, -1]])
    """
    m = (mask > 0).long()
    starts = m * (1 - torch.nn.functional.pad(m, (1, 0))[:, :-1])
    ids = torch.cumsum(starts, dim=1) - 1
    return torch.where(m > 0, ids, torch.full_like(ids, -1))


def advantage_inputs(data: Any, name: str, *, padding: Sequence[bool] | None = None) -> tuple:
    """(inputs, order): branchgym estimator ``name``'s input record for ``data``'s rows, taken
    in ``order`` (parents before children when the estimator reads the tree)."""
    from branchgym.integrations.verl.algorithms import group_ids_from_index

    fields_ = needs_of(ADVANTAGES.get(name)).fields
    mask = data.batch["response_mask"].float().cpu()
    b, t = mask.shape
    rewards = data.batch["token_level_rewards"].sum(dim=-1).float().cpu()
    groups = group_ids_from_index(data.non_tensor_batch["uid"])
    order = torch.arange(b)
    extra: dict[str, Any] = {}
    if {"parent_ids", "branch_points"} & fields_:
        extras = extra_fields_of(data)
        pad = [False] * b if padding is None else list(padding)
        if not any(TREE_ID in e for e in extras):
            raise ConfigError(
                f"estimator branchgym_{name} needs the rollout tree, but no row has "
                f"extra_fields[{TREE_ID!r}]; use the branchgym_tree agent loop (agent_name "
                "column of the data: branchgym verl-data --agent branchgym_tree)."
            )
        order, extra["parent_ids"], extra["branch_points"] = tree_parents(
            extras, t, usable=[not p for p in pad]
        )
    if "entropies" in fields_:
        if "entropy" not in data.batch.keys():
            raise ConfigError(
                f"estimator branchgym_{name} reads token entropies, but the batch has no "
                "'entropy'; verl's trainer computes it with the old log-probs (keep "
                "algorithm.rollout_correction.bypass_mode=False)."
            )
        extra["entropies"] = data.batch["entropy"].float().cpu()[order]
    if "step_ids" in fields_:
        extra["step_ids"] = step_ids_from_mask(mask)[order]
    inputs = AdvantageInputs(
        rewards=rewards[order], group_ids=groups[order], loss_mask=mask[order], **extra
    )
    return inputs, order


def compute_advantage(
    data: Any,
    estimator: str,
    *,
    config: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    padding: Sequence[bool] | None = None,
) -> Any:
    """The recipe's advantage step: ``data.batch["advantages"]`` and ``["returns"]`` from
    branchgym estimator ``estimator`` (``"branchgym_empg"`` or ``"empg"``) over all rows.

    ``config``: verl's ``algorithm`` config (``norm_adv_by_std_in_grpo``); ``params``: the
    estimator's own hyperparameters (``branchgym_algo.estimator_params``). The rows' rewards are
    ``token_level_rewards`` summed (run :func:`env_rewards_into_scores` first for a tree).
    """
    from branchgym.integrations.verl.algorithms import branchgym_name, hparams_from_config

    name = branchgym_name(estimator) or estimator
    if name not in ADVANTAGES:
        raise ConfigError(
            f"{estimator!r} is not a branchgym estimator; use one of "
            f"{['branchgym_' + n for n in sorted(ADVANTAGES)]}."
        )
    inputs, order = advantage_inputs(data, name, padding=padding)
    hparams = hparams_from_config(name, config, dict(params or {}))
    adv_sorted = ADVANTAGES.get(name)(inputs, **hparams)
    adv = torch.empty_like(adv_sorted)
    adv[order] = adv_sorted
    ref = data.batch["response_mask"]
    adv = adv.to(device=ref.device)
    data.batch["advantages"] = adv
    data.batch["returns"] = adv.clone()
    return data
