"""Outcome advantage estimators: GRPO, Dr. GRPO, RLOO, ARPO (soft/hard), AEPO entropy-aware.

Every registered estimator has the signature
``fn(batch: AdvantageInputs, **hparams) -> Tensor[B, T]`` (keyword-only hyperparameters; the
result is already multiplied by ``batch.loss_mask``). The group statistics helpers are pure
functions over (B,) tensors. EMPG lives in :mod:`branchgym.algorithms.empg`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from branchgym.algorithms.entropy import entropy_zscore
from branchgym.algorithms.inputs import AdvantageInputs, declare
from branchgym.algorithms.tree import hard_attribution

__all__ = [
    "group_relative_advantages",
    "leave_one_out_advantages",
    "entropy_aware_advantage",
    "grpo",
    "dr_grpo",
    "rloo",
    "arpo_soft",
    "arpo_hard",
    "aepo",
]


def _group_index(group_ids: Tensor) -> tuple[Tensor, Tensor, int]:
    """(inverse index into the unique groups, per-group counts, number of groups)."""
    _, inverse, counts = torch.unique(group_ids, return_inverse=True, return_counts=True)
    return inverse, counts, int(counts.shape[0])


def _rows_in_population(group_ids: Tensor, population_group_ids: Tensor) -> Tensor:
    """Index of each row's group among the population's sorted unique groups."""
    uniq = torch.unique(population_group_ids)
    idx = torch.searchsorted(uniq, group_ids).clamp(max=uniq.numel() - 1)
    missing = uniq[idx] != group_ids
    if bool(torch.any(missing)):
        from branchgym.errors import ConfigError

        raise ConfigError(
            f"group ids {sorted(set(group_ids[missing].tolist()))[:10]} are not in the population "
            "the group statistics are taken over; pass the whole batch's rewards and group ids "
            "as population_rewards / population_group_ids."
        )
    return idx


def group_relative_advantages(
    rewards: Tensor,
    group_ids: Tensor,
    *,
    scale_by_std: bool = True,
    std_unbiased: bool = True,
    eps: float = 1e-6,
    population: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """``A_i = (R_i − μ_g) / (σ_g + ε)``; ``scale_by_std=False`` gives Dr. GRPO ``R_i − μ_g``.

    μ_g, σ_g: mean and std of R over the group of i; σ unbiased (÷(|G|−1)) by default as verl,
    ARPO and AEPO do (``std_unbiased``; False = population std). Singleton group: μ = 0,
    σ = 1, i.e. ``A = R / (1 + ε)`` (verl's special case). All-equal rewards -> 0.
    ``population``: (rewards, group ids) of the whole batch when these rows are a subset of it
    (a mini-batch); μ_g and σ_g are taken over it. Default: the rows themselves.
    Ref: GRPO arXiv:2402.03300; Dr. GRPO arXiv:2503.20783; docs/algorithms.md#grpo.
    Shapes: (B,) float, (B,) int -> (B,) float32. No gradient flows (rewards are data).

    >>> group_relative_advantages(torch.tensor([1., 0., 0., 1.]), torch.tensor([0, 0, 0, 0]))
    tensor([ 0.8660, -0.8660, -0.8660,  0.8660])
    """
    pop_r, pop_g = (rewards, group_ids) if population is None else population
    p = pop_r.detach().double()
    inverse, counts, g = _group_index(pop_g)
    n = counts.double()
    sums = torch.zeros(g, dtype=p.dtype).index_add_(0, inverse, p)
    mean = sums / n
    dev = p - mean[inverse]
    sq = torch.zeros(g, dtype=p.dtype).index_add_(0, inverse, dev * dev)
    denom = (n - 1.0) if std_unbiased else n
    std = torch.sqrt(sq / denom.clamp(min=1.0))
    single = counts == 1
    mean = torch.where(single, torch.zeros_like(mean), mean)
    std = torch.where(single, torch.ones_like(std), std)
    rows = inverse if population is None else _rows_in_population(group_ids, pop_g)
    centred = rewards.detach().double() - mean[rows]
    out = centred / (std[rows] + eps) if scale_by_std else centred
    return out.to(torch.float32)


def leave_one_out_advantages(
    rewards: Tensor, group_ids: Tensor, *, population: tuple[Tensor, Tensor] | None = None
) -> Tensor:
    """RLOO: ``A_i = R_i − mean_{j∈G, j≠i} R_j = |G|/(|G|−1) · (R_i − μ_g)``; singleton: ``R_i``.

    ``population`` as in :func:`group_relative_advantages`.
    Ref: Ahmadian et al., arXiv:2402.14740; docs/algorithms.md#rloo. Shapes: (B,), (B,) -> (B,).

    >>> leave_one_out_advantages(torch.tensor([1., 0., 0.]), torch.tensor([0, 0, 0]))
    tensor([ 1.0000, -0.5000, -0.5000])
    """
    pop_r, pop_g = (rewards, group_ids) if population is None else population
    p = pop_r.detach().double()
    inverse, counts, g = _group_index(pop_g)
    n = counts.double()
    mean = torch.zeros(g, dtype=p.dtype).index_add_(0, inverse, p) / n
    scale = torch.where(counts > 1, n / (n - 1.0).clamp(min=1.0), torch.zeros_like(n))
    rows = inverse if population is None else _rows_in_population(group_ids, pop_g)
    r = rewards.detach().double()
    out = torch.where((counts > 1)[rows], scale[rows] * (r - mean[rows]), r)
    return out.to(torch.float32)


def entropy_aware_advantage(
    advantages: Tensor,
    entropies: Tensor,
    loss_mask: Tensor,
    *,
    weight: float = 0.2,
    unbiased: bool = True,
) -> Tensor:
    """AEPO: ``Ã_t = A_t · (1 + a · z_t)``, ``z_t`` the entropy z-score over the valid tokens.

    No clamp: for ``z < −1/a`` the factor is negative and flips the sign, as in the code.
    Entropies are detached. The z-score scope is the batch passed in (``entropy_norm_scope``).
    Ref: AEPO arXiv:2510.14545 §entropy-aware advantage; code
    ``compute_policy_loss_entropy_balanced_clipping`` L620–638; docs/algorithms.md#aepo,
    #ex-entropy-advantage.
    Shapes: (B, T) x3 -> (B, T).

    >>> h = torch.tensor([[0.5, 1.0, 1.5, 3.0]])
    >>> entropy_aware_advantage(torch.ones(1, 4), h, torch.ones(1, 4))
    tensor([[0.8148, 0.9074, 1.0000, 1.2777]])
    """
    z = entropy_zscore(entropies, loss_mask, unbiased=unbiased)
    return advantages * (1.0 + weight * z) * loss_mask.to(advantages.dtype)


def _broadcast(row_adv: Tensor, loss_mask: Tensor) -> Tensor:
    return row_adv.unsqueeze(-1) * loss_mask.to(row_adv.dtype)


def grpo(
    batch: AdvantageInputs,
    *,
    scale_by_std: bool = True,
    std_unbiased: bool = True,
    eps: float = 1e-6,
) -> Tensor:
    """GRPO outcome advantage on every loss-bearing token: :func:`group_relative_advantages`.

    Ref: arXiv:2402.03300; verl ``compute_grpo_outcome_advantage``; docs/algorithms.md#grpo.

    >>> mask = torch.tensor([[1., 0.], [1., 1.]])
    >>> b = AdvantageInputs(torch.tensor([1., 0.]), torch.tensor([0, 0]), mask)
    >>> grpo(b)
    tensor([[ 0.7071,  0.0000],
            [-0.7071, -0.7071]])
    """
    adv = group_relative_advantages(
        batch.rewards,
        batch.group_ids,
        scale_by_std=scale_by_std,
        std_unbiased=std_unbiased,
        eps=eps,
        population=batch.population(),
    )
    return _broadcast(adv, batch.loss_mask)


def dr_grpo(batch: AdvantageInputs, *, std_unbiased: bool = True, eps: float = 1e-6) -> Tensor:
    """Dr. GRPO: ``A_i = R_i − μ_g`` (no std scaling). Ref: arXiv:2503.20783; §1(c).

    >>> gid = torch.zeros(4, dtype=torch.long)
    >>> b = AdvantageInputs(torch.tensor([1., 1., 1., 0.]), gid, torch.ones(4, 1))
    >>> dr_grpo(b).squeeze(1)
    tensor([ 0.2500,  0.2500,  0.2500, -0.7500])
    """
    return grpo(batch, scale_by_std=False, std_unbiased=std_unbiased, eps=eps)


def rloo(batch: AdvantageInputs) -> Tensor:
    """RLOO leave-one-out baseline on every loss-bearing token: :func:`leave_one_out_advantages`.

    >>> gid = torch.zeros(3, dtype=torch.long)
    >>> b = AdvantageInputs(torch.tensor([1., 0., 0.]), gid, torch.ones(3, 1))
    >>> rloo(b).squeeze(1)
    tensor([ 1.0000, -0.5000, -0.5000])
    """
    adv = leave_one_out_advantages(batch.rewards, batch.group_ids, population=batch.population())
    return _broadcast(adv, batch.loss_mask)


def arpo_soft(
    batch: AdvantageInputs,
    *,
    scale_by_std: bool = True,
    std_unbiased: bool = True,
    eps: float = 1e-6,
) -> Tensor:
    """ARPO soft attribution = plain GRPO over the whole tree (one group id per tree).

    Every copy of a shared prefix keeps its own trajectory's ``Â_i``; under token-mean this
    gives the same summed gradient as hard attribution (docs/algorithms.md#ex-attribution). The
    only mode in the released code.
    Ref: ARPO arXiv:2507.19849; code ``ray_trainer.py`` L1028 (uid per tree);
    docs/algorithms.md#arpo.

    >>> b = AdvantageInputs(torch.tensor([1., 0.]), torch.tensor([7, 7]), torch.ones(2, 1))
    >>> arpo_soft(b).squeeze(1)
    tensor([ 0.7071, -0.7071])
    """
    return grpo(batch, scale_by_std=scale_by_std, std_unbiased=std_unbiased, eps=eps)


@declare(needs=["parent_ids", "branch_points"])
def arpo_hard(
    batch: AdvantageInputs,
    *,
    scale_by_std: bool = True,
    std_unbiased: bool = True,
    eps: float = 1e-6,
) -> Tensor:
    """ARPO hard attribution: shared-prefix tokens get the mean ``Â`` of the rows sharing them.

    Needs ``parent_ids`` and ``branch_points`` (the tree). ``Â_i`` is GRPO over the tree;
    then :func:`~branchgym.algorithms.tree.hard_attribution`. The paper's ``attribution="hard"``.
    Ref: ARPO arXiv:2507.19849 (hard advantage); docs/algorithms.md#arpo, #ex-attribution.

    >>> b = AdvantageInputs(torch.tensor([1., 0.]), torch.tensor([0, 0]), torch.ones(2, 3),
    ...                     parent_ids=torch.tensor([-1, 0]), branch_points=torch.tensor([0, 2]))
    >>> arpo_hard(b)
    tensor([[ 0.0000,  0.0000,  0.7071],
            [ 0.0000,  0.0000, -0.7071]])
    """
    batch.require("parent_ids", "branch_points", by="arpo_hard")
    adv = group_relative_advantages(
        batch.rewards,
        batch.group_ids,
        scale_by_std=scale_by_std,
        std_unbiased=std_unbiased,
        eps=eps,
        population=batch.population(),
    )
    assert batch.parent_ids is not None and batch.branch_points is not None
    parents = batch.parent_ids
    has_parent = parents >= 0
    if bool(torch.any(has_parent)):
        same = batch.group_ids[has_parent] == batch.group_ids[parents[has_parent]]
        if not bool(torch.all(same)):
            from branchgym.errors import ConfigError

            rows = torch.nonzero(has_parent).squeeze(1)[~same].tolist()
            raise ConfigError(
                f"rows {rows} have a parent in another group; a clone belongs to its parent's "
                "tree, so give the whole tree one group id."
            )
    return hard_attribution(adv, parents, batch.branch_points, batch.loss_mask)


@declare(needs=["entropies"], per_minibatch=True)
def aepo(
    batch: AdvantageInputs,
    *,
    weight: float = 0.2,
    scale_by_std: bool = True,
    std_unbiased: bool = True,
    eps: float = 1e-6,
    entropy_std_unbiased: bool = True,
) -> Tensor:
    """AEPO entropy-aware advantage: GRPO ``Â_i`` over the tree, times ``1 + a·z(H_t)``.

    Needs ``entropies`` (the current policy's token entropy). The z-score is over this batch's
    valid tokens: call it per micro-batch for the code's scope (``entropy_norm_scope``). For the
    code-compat behaviour in which the step is skipped unless ``entropy_coeff ≠ 0``, use
    :class:`~branchgym.algorithms.config.AEPOConfig` (it picks ``grpo`` instead).
    Ref: AEPO arXiv:2510.14545; docs/algorithms.md#aepo, #ex-entropy-advantage.

    >>> b = AdvantageInputs(torch.tensor([1., 0.]), torch.tensor([0, 0]), torch.ones(2, 1),
    ...                     entropies=torch.tensor([[1.0], [1.0]]))
    >>> aepo(b).squeeze(1)
    tensor([ 0.7071, -0.7071])
    """
    batch.require("entropies", by="aepo")
    assert batch.entropies is not None
    base = grpo(batch, scale_by_std=scale_by_std, std_unbiased=std_unbiased, eps=eps)
    return entropy_aware_advantage(
        base, batch.entropies, batch.loss_mask, weight=weight, unbiased=entropy_std_unbiased
    )
