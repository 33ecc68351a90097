"""Beyond the 80/20 rule: the DAPO loss on the top-ρ high-entropy ("forking") tokens only.

Registered ``high_entropy_mask``.
"""

from __future__ import annotations

from torch import Tensor

from branchgym.algorithms.entropy import high_entropy_mask as top_entropy_mask
from branchgym.algorithms.inputs import LossInputs, declare
from branchgym.algorithms.losses.common import finish_loss
from branchgym.algorithms.losses.ppo import _clip_metrics, ppo_clip_token_loss

__all__ = ["high_entropy_mask"]


@declare(needs=["entropies"])
def high_entropy_mask(
    inputs: LossInputs,
    *,
    ratio: float = 0.2,
    clip_low: float = 0.2,
    clip_high: float = 0.28,
    clip_ratio_c: float | None = 10.0,
    agg_mode: str = "token-mean",
    norm_constant: float | None = None,
    kl_coef: float = 0.0,
    kl_estimator: str = "k3",
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO-clip loss aggregated over ``m · M`` only, ``M`` = top-⌈ρN⌉ entropy tokens of this call.

    Needs ``inputs.entropies`` (current policy). The top-k is over the tokens passed in: call
    per micro-batch for the code's scope, on the whole batch for the paper's
    (``entropy_mask_scope``). Defaults are the paper's DAPO settings (ε 0.2/0.28, c = 10).
    Ref: arXiv:2506.01939; code ``dp_actor.py`` L436–461 and ``get_global_entropy_top_mask``
    (L53 @ 6f5dda6); docs/algorithms.md#high-entropy, #ex-mask.

    >>> import torch
    >>> x = LossInputs(torch.zeros(1, 3), torch.zeros(1, 3), torch.tensor([[1., 2., 3.]]),
    ...                torch.ones(1, 3), entropies=torch.tensor([[0.1, 0.9, 0.2]]))
    >>> high_entropy_mask(x, ratio=0.2)[0]  # only token 1 (A = 2) counts
    tensor(-2.)
    """
    inputs.require("entropies", by="high_entropy_mask")
    assert inputs.entropies is not None
    top = top_entropy_mask(inputs.entropies, inputs.loss_mask, ratio=ratio)
    mask = inputs.loss_mask * top.to(inputs.loss_mask.dtype)
    loss_mat, info = ppo_clip_token_loss(
        inputs.logp,
        inputs.old_logp,
        inputs.advantages,
        clip_low=clip_low,
        clip_high=clip_high,
        clip_ratio_c=clip_ratio_c,
    )
    metrics = _clip_metrics(inputs, info)
    metrics["loss/entropy_mask_frac"] = (
        mask.sum() / inputs.loss_mask.sum().clamp(min=1.0)
    ).detach()
    return finish_loss(
        inputs,
        loss_mat,
        metrics,
        mask=mask,
        agg_mode=agg_mode,
        norm_constant=norm_constant,
        kl_coef=kl_coef,
        kl_estimator=kl_estimator,
    )
