"""Clipped-surrogate losses: PPO clip (+ verl dual clip), DAPO clip-higher, GPPO / CE-GPPO, AEPO.

Registered: ``ppo_clip``, ``dapo``, ``gppo``, ``aepo`` (signature: see
:mod:`branchgym.algorithms.losses.common`). Values/gradients per token:
docs/algorithms.md#grpo, #gppo, #aepo and the worked example #ex-clip.
"""

from __future__ import annotations

import torch
from torch import Tensor

from branchgym.algorithms.advantages import entropy_aware_advantage
from branchgym.algorithms.inputs import LossInputs, declare
from branchgym.algorithms.losses.common import (
    check_clip,
    finish_loss,
    importance_ratio,
    masked_mean,
)

__all__ = ["ppo_clip_token_loss", "gppo_token_loss", "ppo_clip", "dapo", "gppo", "aepo"]


def _dual_clip(
    loss: Tensor, advantages: Tensor, clip_ratio_c: float | None
) -> tuple[Tensor, Tensor]:
    """``if A < 0: ℓ = min(ℓ, −A·c)`` (dual clip, Ye et al. arXiv:1912.09729); returns (ℓ, hit)."""
    if clip_ratio_c is None:
        return loss, torch.zeros_like(loss, dtype=torch.bool)
    cap = -advantages * clip_ratio_c
    neg = advantages < 0
    hit = neg & (loss > cap)
    return torch.where(neg, torch.minimum(loss, cap), loss), hit


def ppo_clip_token_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    clip_ratio_c: float | None = 3.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Per-token PPO clip loss with asymmetric range and dual clip.

    ``ℓ = max(−Aρ, −A·clip(ρ, 1−ε_low, 1+ε_high))``; if ``A < 0``: ``ℓ = min(ℓ, −A·c)``.
    Gradient wrt logp: ``−Aρ`` unclipped, 0 when clipped. ``clip_high=0.28`` = DAPO clip-higher.
    Ref: PPO arXiv:1707.06347; DAPO arXiv:2503.14476; verl
    ``core_algos.py::compute_policy_loss_vanilla`` (L1160 @ b178a3cd); docs/algorithms.md#grpo,
    #ex-clip.
    Shapes: (B, T) x3 -> ((B, T), {"clipped_high", "clipped_low", "dual": bool (B, T)}).

    >>> loss, _ = ppo_clip_token_loss(torch.log(torch.tensor([1.5, 0.5])), torch.zeros(2),
    ...                               torch.tensor([1.0, -1.0]))
    >>> loss
    tensor([-1.2000,  0.8000])
    """
    check_clip(clip_low, clip_high, clip_ratio_c)
    ratio = importance_ratio(logp, old_logp)
    l1 = -advantages * ratio
    l2 = -advantages * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    loss = torch.maximum(l1, l2)
    clipped = l2 > l1
    loss, dual = _dual_clip(loss, advantages, clip_ratio_c)
    info = {
        "clipped_high": clipped & (advantages > 0),
        "clipped_low": clipped & (advantages < 0),
        "dual": dual,
    }
    return loss, info


def gppo_token_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    clip_ratio_c: float | None = 3.0,
    beta_low: float = 1.0,
    beta_high: float = 1.0,
    only_high: bool = False,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Gradient-preserving clip (GPPO / CE-GPPO); ``only_high=True`` is AEPO's clipping.

    Per token, with ``ρ/sg(ρ)`` (value 1, gradient ∇logp)::

        A > 0, ρ > 1+ε_high:  ℓ = −β_high (1+ε_high) · ρ/sg(ρ) · A
        A < 0, ρ < 1−ε_low:   ℓ = −β_low  (1−ε_low)  · ρ/sg(ρ) · A   (only_high: constant)
        otherwise:            ℓ = −A ρ
        then dual clip for A < 0: ℓ = min(ℓ, −A·c)

    With β = 1 the forward values equal PPO's; only the clipped tokens' gradients differ
    (docs/algorithms.md#gppo). CE-GPPO scales the forward value by β as well.

    The preserved gradient is taken from the unclamped log-ratio: where ``|logp − old_logp|``
    exceeds the ±20 clamp of :func:`importance_ratio` a clipped token still gets
    ``−β(1±ε)·A``. The released Klear and AEPO code build ``ρ/sg(ρ)`` from the clamped ratio,
    where that gradient is 0 (a deliberate difference; values are the same).
    Ref: Klear-Reasoner arXiv:2508.07629 (the README formula; the repository's
    ``compute_gppo_loss`` cannot run, see docs/algorithms.md#gppo);
    CE-GPPO arXiv:2509.20712; AEPO arXiv:2510.14545, code
    ``compute_policy_loss_entropy_balanced_clipping`` L648–679; docs/algorithms.md#ex-clip.

    >>> lp = torch.log(torch.tensor([0.5])).requires_grad_()
    >>> loss, _ = gppo_token_loss(lp, torch.zeros(1), torch.tensor([-1.0]), beta_low=0.75)
    >>> loss.backward(); loss.detach(), lp.grad
    (tensor([0.6000]), tensor([0.6000]))
    """
    check_clip(clip_low, clip_high, clip_ratio_c)
    ratio = importance_ratio(logp, old_logp)
    # Value 1, d/dlogp = 1: carries the gradient through the bound. Taken from the unclamped
    # log-ratio, so a token beyond the ±20 clamp keeps its preserved gradient (see above).
    log_ratio = logp - old_logp
    unit = torch.exp(log_ratio - log_ratio.detach())
    high = (advantages > 0) & (ratio > 1.0 + clip_high)
    low = (advantages < 0) & (ratio < 1.0 - clip_low)
    high_term = -advantages * beta_high * (1.0 + clip_high) * unit
    if only_high:
        low_term = -advantages * (1.0 - clip_low)  # PPO's constant bound: no gradient
    else:
        low_term = -advantages * beta_low * (1.0 - clip_low) * unit
    loss = torch.where(high, high_term, torch.where(low, low_term, -advantages * ratio))
    loss, dual = _dual_clip(loss, advantages, clip_ratio_c)
    return loss, {"clipped_high": high, "clipped_low": low, "dual": dual}


def _clip_metrics(inputs: LossInputs, info: dict[str, Tensor]) -> dict[str, Tensor]:
    m = inputs.loss_mask
    ratio = importance_ratio(inputs.logp.detach(), inputs.old_logp)
    return {
        "loss/clip_frac_high": masked_mean(info["clipped_high"], m),
        "loss/clip_frac_low": masked_mean(info["clipped_low"], m),
        "loss/clip_frac_dual": masked_mean(info["dual"], m),
        "loss/ppo_kl": masked_mean(inputs.old_logp - inputs.logp.detach(), m),
        "loss/ratio_mean": masked_mean(ratio, m),
    }


def ppo_clip(
    inputs: LossInputs,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    clip_ratio_c: float | None = 3.0,
    agg_mode: str = "token-mean",
    norm_constant: float | None = None,
    kl_coef: float = 0.0,
    kl_estimator: str = "k3",
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO/GRPO clipped surrogate, aggregated: ``agg(ppo_clip_token_loss) + kl_coef·agg(KL)``.

    GRPO paper: ``agg_mode="seq-mean-token-mean", kl_coef=0.04``; ARPO: token-mean, no KL.
    Ref: see :func:`ppo_clip_token_loss`; docs/algorithms.md#grpo, #arpo.

    >>> adv = torch.tensor([[1., -1.]])
    >>> x = LossInputs(torch.zeros(1, 2), torch.zeros(1, 2), adv, torch.ones(1, 2))
    >>> ppo_clip(x)[0]
    tensor(0.)
    """
    loss_mat, info = ppo_clip_token_loss(
        inputs.logp,
        inputs.old_logp,
        inputs.advantages,
        clip_low=clip_low,
        clip_high=clip_high,
        clip_ratio_c=clip_ratio_c,
    )
    return finish_loss(
        inputs,
        loss_mat,
        _clip_metrics(inputs, info),
        agg_mode=agg_mode,
        norm_constant=norm_constant,
        kl_coef=kl_coef,
        kl_estimator=kl_estimator,
    )


def dapo(
    inputs: LossInputs,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.28,
    clip_ratio_c: float | None = 10.0,
    agg_mode: str = "token-mean",
    norm_constant: float | None = None,
    kl_coef: float = 0.0,
    kl_estimator: str = "k3",
) -> tuple[Tensor, dict[str, Tensor]]:
    """DAPO: PPO clip with clip-higher (ε_high = 0.28), token-mean, no KL, dual-clip c = 10.

    Ref: DAPO arXiv:2503.14476; verl ``recipe/dapo``; docs/algorithms.md#dapo, #ex-clip.

    >>> lp = torch.log(torch.tensor([[1.5]]))
    >>> x = LossInputs(lp, torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1))
    >>> dapo(x)[0]
    tensor(-1.2800)
    """
    return ppo_clip(
        inputs,
        clip_low=clip_low,
        clip_high=clip_high,
        clip_ratio_c=clip_ratio_c,
        agg_mode=agg_mode,
        norm_constant=norm_constant,
        kl_coef=kl_coef,
        kl_estimator=kl_estimator,
    )


def gppo(
    inputs: LossInputs,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    clip_ratio_c: float | None = 3.0,
    beta_low: float = 1.0,
    beta_high: float = 1.0,
    agg_mode: str = "token-mean",
    norm_constant: float | None = None,
    kl_coef: float = 0.0,
    kl_estimator: str = "k3",
) -> tuple[Tensor, dict[str, Tensor]]:
    """GPPO (β_low = β_high = 1, Klear) or CE-GPPO (e.g. β_low = 0.75): :func:`gppo_token_loss`.

    >>> lp = torch.log(torch.tensor([[0.5]]))
    >>> x = LossInputs(lp, torch.zeros(1, 1), -torch.ones(1, 1), torch.ones(1, 1))
    >>> gppo(x)[0]
    tensor(0.8000)
    """
    loss_mat, info = gppo_token_loss(
        inputs.logp,
        inputs.old_logp,
        inputs.advantages,
        clip_low=clip_low,
        clip_high=clip_high,
        clip_ratio_c=clip_ratio_c,
        beta_low=beta_low,
        beta_high=beta_high,
    )
    return finish_loss(
        inputs,
        loss_mat,
        _clip_metrics(inputs, info),
        agg_mode=agg_mode,
        norm_constant=norm_constant,
        kl_coef=kl_coef,
        kl_estimator=kl_estimator,
    )


@declare(needs=["entropies"])
def aepo(
    inputs: LossInputs,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    clip_ratio_c: float | None = 3.0,
    entropy_adv_weight: float = 0.0,
    entropy_std_unbiased: bool = True,
    agg_mode: str = "token-mean",
    norm_constant: float | None = None,
    kl_coef: float = 0.0,
    kl_estimator: str = "k3",
) -> tuple[Tensor, dict[str, Tensor]]:
    """AEPO entropy-balanced clipping: stop-gradient on the upper clip bound only.

    Forward values equal PPO's; a token with ``A > 0, ρ > 1+ε_high`` keeps the gradient
    ``−A(1+ε_high)``; the lower bound behaves as PPO (no gradient). With
    ``entropy_adv_weight = a > 0`` the advantages are first replaced by ``A·(1 + a·z(H))`` with
    the z-score over *this call's* valid tokens — the code's micro-batch scope
    (``entropy_norm_scope``), needing
    ``inputs.entropies``; leave it 0 when the advantage estimator already applied it (paper).
    Ref: AEPO arXiv:2510.14545; code ``compute_policy_loss_entropy_balanced_clipping`` (L571);
    docs/algorithms.md#aepo, #ex-clip, #ex-entropy-advantage.

    >>> lp = torch.log(torch.tensor([[1.5]]))
    >>> x = LossInputs(lp, torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1))
    >>> aepo(x)[0]
    tensor(-1.2000)
    """
    advantages = inputs.advantages
    if entropy_adv_weight != 0.0:
        inputs.require("entropies", by="aepo (entropy_adv_weight != 0)")
        assert inputs.entropies is not None
        advantages = entropy_aware_advantage(
            advantages,
            inputs.entropies,
            inputs.loss_mask,
            weight=entropy_adv_weight,
            unbiased=entropy_std_unbiased,
        )
    loss_mat, info = gppo_token_loss(
        inputs.logp,
        inputs.old_logp,
        advantages,
        clip_low=clip_low,
        clip_high=clip_high,
        clip_ratio_c=clip_ratio_c,
        only_high=True,
    )
    return finish_loss(
        inputs,
        loss_mat,
        _clip_metrics(inputs, info),
        agg_mode=agg_mode,
        norm_constant=norm_constant,
        kl_coef=kl_coef,
        kl_estimator=kl_estimator,
    )
