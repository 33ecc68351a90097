"""KL-to-reference estimators per token (Schulman, "Approximating KL divergence", 2020).

Each is registered in ``KL_ESTIMATORS`` with one signature,
``fn(logp, ref_logp, *, clamp=True) -> Tensor`` (same shape as the inputs), estimating
``KL(πθ ‖ πref)`` from samples of πθ. The total GRPO loss is ``agg(ℓ) + β_KL · agg(k)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["k1", "k2", "k3", "k3_plus", "kl_estimate", "KL_KINDS"]

KL_KINDS = ("k1", "k2", "k3", "k3+")

_LOG_RATIO_CLAMP = 20.0  # verl: clamp (logp_ref - logp) to [-20, 20] before exp
_K3_CLAMP = 10.0  # verl: clamp the k3 value to [-10, 10]


def k1(logp: Tensor, ref_logp: Tensor, *, clamp: bool = True) -> Tensor:
    """``k1 = logp − logp_ref`` (unbiased, high variance, can be negative).

    Ref: verl ``kl_penalty_forward`` ("kl"/"k1"). ``clamp`` is accepted and ignored.

    >>> k1(torch.tensor([-1.0]), torch.tensor([-1.5]))
    tensor([0.5000])
    """
    return logp - ref_logp


def k2(logp: Tensor, ref_logp: Tensor, *, clamp: bool = True) -> Tensor:
    """``k2 = ½ (logp − logp_ref)²`` (biased; its gradient is the right one for the KL).

    Ref: verl ``kl_penalty_forward`` ("mse"/"k2"). ``clamp`` is accepted and ignored.

    >>> k2(torch.tensor([-1.0]), torch.tensor([-1.5]))
    tensor([0.1250])
    """
    return 0.5 * (logp - ref_logp).square()


def k3(logp: Tensor, ref_logp: Tensor, *, clamp: bool = True) -> Tensor:
    """``k3 = exp(logp_ref − logp) − (logp_ref − logp) − 1`` ("low_var_kl"); ≥ 0, unbiased.

    ``d k3 / d logp = 1 − exp(logp_ref − logp)``. With ``clamp`` (verl's default), the log-ratio
    is clamped to [−20, 20] and k3 to [−10, 10] (no gradient where a clamp is active).
    Ref: verl ``core_algos.py::kl_penalty_forward`` (L1867 @ b178a3cd); docs/algorithms.md#kl,
    #ex-k3.

    >>> k3(torch.tensor([-1.0]), torch.tensor([-1.2]))
    tensor([0.0187])
    """
    log_ratio = ref_logp - logp
    if clamp:
        log_ratio = torch.clamp(log_ratio, min=-_LOG_RATIO_CLAMP, max=_LOG_RATIO_CLAMP)
    value = torch.exp(log_ratio) - log_ratio - 1.0
    if clamp:
        value = torch.clamp(value, min=-_K3_CLAMP, max=_K3_CLAMP)
    return value


def k3_plus(logp: Tensor, ref_logp: Tensor, *, clamp: bool = True) -> Tensor:
    """ "k3+": the k3 value with the k2 gradient ``logp − logp_ref`` (straight-through).

    ``out = k2 − sg(k2) + sg(k3)``. Ref: verl ``core_algos.py::kl_penalty`` (L1841).

    >>> k3_plus(torch.tensor([-1.0]), torch.tensor([-1.2]))
    tensor([0.0187])
    """
    k2_value = k2(logp, ref_logp)
    return k2_value - k2_value.detach() + k3(logp, ref_logp, clamp=clamp).detach()


def kl_estimate(logp: Tensor, ref_logp: Tensor, kind: str = "k3", *, clamp: bool = True) -> Tensor:
    """Per-token KL estimate of kind ``kind`` (one of :data:`KL_KINDS`; ``low_var_kl`` = k3).

    >>> kl_estimate(torch.tensor([-1.0]), torch.tensor([-0.5]))
    tensor([0.1487])
    """
    from branchgym.algorithms.registry import KL_ESTIMATORS

    fn = KL_ESTIMATORS.get(kind)  # unknown name -> UnknownName listing the estimators
    return fn(logp, ref_logp, clamp=clamp)
