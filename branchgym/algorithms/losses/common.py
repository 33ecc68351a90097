"""Shared plumbing of the registered policy losses: ratio, aggregation, optional KL, metrics.

Every entry of ``POLICY_LOSSES`` has the signature
``fn(inputs: LossInputs, *, agg_mode="token-mean", norm_constant=None, kl_coef=0.0,
kl_estimator="k3", **loss_hparams) -> (loss, metrics)`` where ``loss`` is the aggregated scalar
to minimise (policy term + ``kl_coef`` × aggregated KL to the reference) and ``metrics`` maps
namespaced keys to detached scalar tensors (the trainer calls ``.item()`` once per step).
Returning the aggregated loss (not the per-token matrix) lets a loss change which tokens count
(80/20 mask, Clip-Cov); the per-token functions are public for tests and custom aggregation.

Metric keys (detached scalars; fractions are over the loss-bearing tokens of the call):
``loss/policy`` aggregated policy term; ``loss/total`` what is returned; ``loss/kl`` aggregated
KL (only when ``kl_coef != 0``); ``loss/clip_frac_high`` / ``loss/clip_frac_low`` tokens clipped
at 1+ε_high with A > 0 / at 1−ε_low with A < 0; ``loss/clip_frac_dual`` tokens capped by the
dual clip; ``loss/ppo_kl`` mean of ``logp_old − logp``; ``loss/ratio_mean`` mean ρ;
``loss/clip_frac`` (CISPO, Clip-Cov) weight or loss clipped; ``loss/cov_zeroed_frac`` (Clip-Cov);
``loss/kl_cov_selected_frac`` and ``loss/ppo_kl_abs`` (KL-Cov); ``loss/entropy_mask_frac`` (80/20).
"""

from __future__ import annotations

import torch
from torch import Tensor

from branchgym.algorithms.aggregation import agg_loss
from branchgym.algorithms.inputs import LossInputs
from branchgym.algorithms.kl import kl_estimate
from branchgym.errors import ConfigError

__all__ = ["importance_ratio", "finish_loss", "check_clip", "masked_mean"]

_LOG_RATIO_CLAMP = 20.0  # verl clamps logp − old_logp to [−20, 20] before exp (stability)


def importance_ratio(logp: Tensor, old_logp: Tensor, *, clamp: bool = True) -> Tensor:
    """``ρ = exp(logp − logp_old)``, the log-ratio clamped to [−20, 20] as verl does.

    Ref: verl ``compute_policy_loss_vanilla`` (L1160 @ b178a3cd); docs/algorithms.md#grpo.

    >>> importance_ratio(torch.tensor([0.0]), torch.tensor([0.0]))
    tensor([1.])
    """
    log_ratio = logp - old_logp
    if clamp:
        log_ratio = torch.clamp(log_ratio, min=-_LOG_RATIO_CLAMP, max=_LOG_RATIO_CLAMP)
    return torch.exp(log_ratio)


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` where ``mask`` is 1 (0.0 when the mask is empty), detached."""
    m = mask.to(values.dtype) if values.is_floating_point() else mask.float()
    v = values.to(m.dtype)
    return ((v * m).sum() / m.sum().clamp(min=1.0)).detach()


def check_clip(clip_low: float, clip_high: float, clip_ratio_c: float | None) -> None:
    """Validate a clip range ``[1 − ε_low, 1 + ε_high]`` and the dual-clip constant ``c``."""
    if not 0.0 <= clip_low <= 1.0:
        raise ConfigError(
            f"clip_low must be in [0, 1] (lower bound 1 − clip_low ≥ 0), got {clip_low!r}; "
            "PPO/GRPO use 0.2 (CISPO uses 1.0 for no lower bound)."
        )
    if not clip_high >= 0.0:
        raise ConfigError(f"clip_high must be ≥ 0, got {clip_high!r}; PPO uses 0.2, DAPO 0.28.")
    if clip_ratio_c is not None and not clip_ratio_c > 1.0:
        raise ConfigError(
            f"clip_ratio_c (dual-clip c) must be > 1, got {clip_ratio_c!r}; verl uses 3.0, "
            "DAPO scripts 10.0; pass None to disable dual clipping."
        )


def finish_loss(
    inputs: LossInputs,
    loss_mat: Tensor,
    metrics: dict[str, Tensor],
    *,
    mask: Tensor | None = None,
    agg_mode: str,
    norm_constant: float | None,
    kl_coef: float,
    kl_estimator: str,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Aggregate ``loss_mat`` over ``mask`` (default ``inputs.loss_mask``), add ``kl_coef·agg(KL)``.

    Adds ``loss/policy`` (and ``loss/kl`` when a KL term is used) to ``metrics``.
    """
    mask = inputs.loss_mask if mask is None else mask
    policy = agg_loss(loss_mat, mask, agg_mode, norm_constant=norm_constant)
    metrics["loss/policy"] = policy.detach()
    total = policy
    if kl_coef != 0.0:
        if inputs.ref_logp is None:
            raise ConfigError(
                f"kl_coef={kl_coef!r} needs ref_logp in LossInputs; compute the reference "
                "policy's log-probs, or set kl_coef=0.0 (DAPO/ARPO/AEPO use no KL)."
            )
        kl = kl_estimate(inputs.logp, inputs.ref_logp, kl_estimator)
        kl_term = agg_loss(kl, inputs.loss_mask, agg_mode, norm_constant=norm_constant)
        metrics["loss/kl"] = kl_term.detach()
        total = policy + kl_coef * kl_term
    metrics["loss/total"] = total.detach()
    return total, metrics
