"""Clip-Cov and KL-Cov (The Entropy Mechanism of RL for reasoning LMs, arXiv:2505.22617).

Registered ``clip_cov`` and ``kl_cov``. Both act on tokens with a large centred covariance
``Cov_t = (A_t − mean A) · (logp_t − mean logp)`` over the valid tokens of the call.
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
from branchgym.errors import ConfigError

__all__ = ["token_covariance", "clip_cov", "kl_cov"]


def token_covariance(advantages: Tensor, logp: Tensor, loss_mask: Tensor) -> Tensor:
    """``Cov_t = (A_t − mean_valid A) · (logp_t − mean_valid logp)``, detached; 0 off the mask.

    Ref: arXiv:2505.22617 §4; verl ``compute_policy_loss_kl_cov`` (L1556 @ b178a3cd);
    docs/algorithms.md#ex-kl-cov.
    Shapes: (B, T) x3 -> (B, T).

    >>> token_covariance(torch.tensor([[1., -1.]]), torch.tensor([[-1., -3.]]), torch.ones(1, 2))
    tensor([[1., 1.]])
    """
    valid = loss_mask > 0
    a = advantages.detach().float()
    lp = logp.detach().float()
    if not bool(valid.any()):
        return torch.zeros_like(a)
    cov = (a - a[valid].mean()) * (lp - lp[valid].mean())
    return torch.where(valid, cov, torch.zeros_like(cov))


def _check_ratio(name: str, value: float) -> None:
    if not 0.0 < value <= 1.0:
        raise ConfigError(
            f"{name} is a fraction of the valid tokens in (0, 1], got {value!r}; the paper's "
            "default is 2e-4 (0.02 %); the original code's k_percent=0.2 means 0.002."
        )


def clip_cov(
    inputs: LossInputs,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    clip_cov_ratio: float = 2e-4,
    cov_low: float = 1.0,
    cov_high: float = 5.0,
    generator: torch.Generator | None = None,
    agg_mode: str = "token-mean",
    norm_constant: float | None = None,
    kl_coef: float = 0.0,
    kl_estimator: str = "k3",
) -> tuple[Tensor, dict[str, Tensor]]:
    """Clip-Cov: zero the loss of ``max(1, ⌊r·N⌋)`` random tokens with ``ω_low < Cov < ω_high``.

    Candidates are valid tokens not already PPO-clipped; ``ℓ_t = max(ℓ1, ℓ2) · corr_t`` with
    ``corr_t ∈ {0, 1}`` (no dual clip, as in the reference). ``generator`` seeds the draw.
    Ref: arXiv:2505.22617; verl ``compute_policy_loss_clip_cov`` (L1451 @ b178a3cd); original
    ``PRIME-RL/Entropy-Mechanism-of-RL`` ``core_algos.py`` L426; docs/algorithms.md#clip-cov.

    >>> adv = torch.tensor([[1., -1.]])
    >>> x = LossInputs(torch.zeros(1, 2), torch.zeros(1, 2), adv, torch.ones(1, 2))
    >>> clip_cov(x)[0]
    tensor(0.)
    """
    _check_ratio("clip_cov_ratio", clip_cov_ratio)
    check_clip(clip_low, clip_high, None)
    ratio = importance_ratio(inputs.logp, inputs.old_logp)
    adv = inputs.advantages
    l1 = -adv * ratio
    l2 = -adv * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    valid = inputs.loss_mask > 0
    clipped = (l2 > l1) & valid
    cov = token_covariance(adv, inputs.logp, inputs.loss_mask)
    candidates = valid & ~clipped & (cov > cov_low) & (cov < cov_high)
    idx = torch.nonzero(candidates.reshape(-1)).squeeze(1)
    n_pick = min(max(int(clip_cov_ratio * int(valid.sum())), 1), int(idx.numel()))
    corr = torch.ones_like(l1)
    if n_pick > 0:
        perm = torch.randperm(int(idx.numel()), generator=generator)[:n_pick]
        corr.view(-1)[idx[perm]] = 0.0
    loss_mat = torch.maximum(l1, l2) * corr
    metrics = {
        "loss/clip_frac": masked_mean(clipped, inputs.loss_mask),
        "loss/cov_zeroed_frac": masked_mean(corr == 0, inputs.loss_mask),
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


def kl_cov(
    inputs: LossInputs,
    *,
    kl_cov_ratio: float = 2e-4,
    ppo_kl_coef: float = 1.0,
    agg_mode: str = "token-mean",
    norm_constant: float | None = None,
    kl_coef: float = 0.0,
    kl_estimator: str = "k3",
) -> tuple[Tensor, dict[str, Tensor]]:
    """KL-Cov: the top ``max(1, ⌊k·N⌋)`` tokens by Cov get ``−Aρ + β|logp − logp_old|``.

    All other tokens get ``−Aρ``.

    No PPO clipping anywhere (as the reference). Ref: arXiv:2505.22617; verl
    ``compute_policy_loss_kl_cov`` (L1556 @ b178a3cd); docs/algorithms.md#kl-cov, #ex-kl-cov.

    >>> adv = torch.tensor([[1., -1.]])
    >>> x = LossInputs(torch.zeros(1, 2), torch.zeros(1, 2), adv, torch.ones(1, 2))
    >>> kl_cov(x)[0]
    tensor(0.)
    """
    _check_ratio("kl_cov_ratio", kl_cov_ratio)
    ratio = importance_ratio(inputs.logp, inputs.old_logp, clamp=False)
    adv = inputs.advantages
    base = -adv * ratio
    with_kl = base + ppo_kl_coef * (inputs.logp - inputs.old_logp).abs()
    valid = inputs.loss_mask > 0
    selected = torch.zeros_like(valid)
    n_valid = int(valid.sum())
    if n_valid > 0:
        cov = token_covariance(adv, inputs.logp, inputs.loss_mask)
        flat = torch.where(
            valid.reshape(-1), cov.reshape(-1), torch.full_like(cov.reshape(-1), -torch.inf)
        )
        k = max(1, int(n_valid * kl_cov_ratio))
        selected.view(-1)[torch.topk(flat, k).indices] = True
    loss_mat = torch.where(selected, with_kl, base)
    metrics = {
        "loss/kl_cov_selected_frac": masked_mean(selected, inputs.loss_mask),
        "loss/ppo_kl_abs": masked_mean(
            (inputs.logp.detach() - inputs.old_logp).abs(), inputs.loss_mask
        ),
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
