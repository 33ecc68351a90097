"""CISPO: REINFORCE with a clipped, detached importance weight (MiniMax-M1).

Registered ``cispo``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from branchgym.algorithms.inputs import LossInputs
from branchgym.algorithms.losses.common import (
    check_clip,
    finish_loss,
    importance_ratio,
    masked_mean,
)

__all__ = ["cispo_token_loss", "cispo"]


def cispo_token_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    *,
    clip_low: float = 1.0,
    clip_high: float = 0.28,
) -> tuple[Tensor, dict[str, Tensor]]:
    """``ℓ = −sg(clip(ρ, 1−ε_low, 1+ε_high)) · A · logp``; each token keeps gradient ``−clip(ρ)·A``.

    ``clip_low = 1`` means no lower bound (weight ≥ 0), as in the MiniMax-M1 setting.
    Ref: MiniMax-M1 arXiv:2506.13585; verl ``core_algos.py::compute_policy_loss_cispo``
    (L1722 @ b178a3cd); docs/algorithms.md#cispo, #ex-cispo. Shapes: (B, T) x3 -> (B, T).

    >>> lp = torch.tensor([-1.594535], requires_grad=True)
    >>> loss, _ = cispo_token_loss(lp, torch.tensor([-2.0]), torch.tensor([1.0]))
    >>> loss.backward(); loss.detach().round(decimals=4), lp.grad
    (tensor([2.0410]), tensor([-1.2800]))
    """
    check_clip(clip_low, clip_high, None)
    ratio = importance_ratio(logp, old_logp)
    weight = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high).detach()
    clipped = ratio.detach() != weight
    return -weight * advantages * logp, {"clipped": clipped}


def cispo(
    inputs: LossInputs,
    *,
    clip_low: float = 1.0,
    clip_high: float = 0.28,
    agg_mode: str = "token-mean",
    norm_constant: float | None = None,
    kl_coef: float = 0.0,
    kl_estimator: str = "k3",
) -> tuple[Tensor, dict[str, Tensor]]:
    """Aggregated CISPO loss (see :func:`cispo_token_loss`).

    >>> lp = torch.tensor([[-2.0]])
    >>> x = LossInputs(lp, lp.clone(), torch.ones(1, 1), torch.ones(1, 1))
    >>> cispo(x)[0]
    tensor(2.)
    """
    loss_mat, info = cispo_token_loss(
        inputs.logp, inputs.old_logp, inputs.advantages, clip_low=clip_low, clip_high=clip_high
    )
    metrics = {
        "loss/clip_frac": masked_mean(info["clipped"], inputs.loss_mask),
        "loss/ppo_kl": masked_mean(inputs.old_logp - inputs.logp.detach(), inputs.loss_mask),
    }
    return finish_loss(
        inputs,
        loss_mat,
        metrics,
        agg_mode=agg_mode,
        norm_constant=norm_constant,
        kl_coef=kl_coef,
        kl_estimator=kl_estimator,
    )
