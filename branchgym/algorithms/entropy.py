"""Update-time entropy tensors: AEPO's entropy z-score and the 80/20 high-entropy mask.

``token_entropy`` is :func:`branchgym.agents.entropy.entropy_from_logits` (the same function
object: the one token-entropy function of the package, also the one the HF backend samples with
and the trainer's forward pass calls). The segment entropy of the branch rule is
:func:`branchgym.agents.entropy.segment_entropy`. Equations: docs/algorithms.md#entropy.
"""

from __future__ import annotations

import torch
from torch import Tensor

from branchgym.agents.entropy import entropy_from_logits as token_entropy
from branchgym.errors import ConfigError

__all__ = ["token_entropy", "entropy_zscore", "high_entropy_mask"]


def entropy_zscore(entropies: Tensor, loss_mask: Tensor, *, unbiased: bool = True) -> Tensor:
    """``z_t = (H_t − μ_H) / σ_H`` over the valid tokens (m = 1); 0 on masked tokens. Detached.

    μ_H, σ_H: mean and (unbiased by default) std over the valid tokens of the batch passed in —
    pass a micro-batch for AEPO's code behaviour (``entropy_norm_scope="microbatch"``) or
    the whole mini-batch for the paper's. ``σ_H := 1`` when it is 0 or undefined (≤ 1 valid
    token), as AEPO's code does for 0. No valid token -> all zeros.
    Ref: AEPO arXiv:2510.14545; code
    ``core_algos.py::compute_policy_loss_entropy_balanced_clipping``
    L620–638 (upstream ARPO @ ff66660); docs/algorithms.md#aepo, #ex-entropy-advantage.
    Shapes: (B, T), (B, T) -> (B, T).

    >>> entropy_zscore(torch.tensor([[0.5, 1.0, 1.5, 3.0]]), torch.ones(1, 4))
    tensor([[-0.9258, -0.4629,  0.0000,  1.3887]])
    """
    h = entropies.detach().float()
    valid = loss_mask > 0
    n = int(valid.sum())
    if n == 0:
        return torch.zeros_like(h)
    vals = h[valid]
    mu = vals.mean()
    sigma = vals.std(unbiased=unbiased) if n > 1 or not unbiased else torch.tensor(0.0)
    if not bool(torch.isfinite(sigma)) or float(sigma) == 0.0:
        sigma = torch.tensor(1.0)
    return torch.where(valid, (h - mu) / sigma, torch.zeros_like(h))


def high_entropy_mask(entropies: Tensor, loss_mask: Tensor, *, ratio: float = 0.2) -> Tensor:
    """``M_t = 1`` iff ``H_t`` is among the top ``k = max(1, ⌈ρ·N⌉)`` of the N valid tokens.

    ``⌈·⌉`` is computed as verl's ``int(N·ρ + 0.9999)``. Selection is over the batch passed in:
    a micro-batch reproduces the released code (``entropy_mask_scope="microbatch"``), the whole
    batch the paper. Ties are broken as the released code breaks them: the valid entropies are
    packed in row-major order and ``torch.topk`` picks from that packed vector (which of the
    tied tokens it returns is torch's choice, the same for the same packed input and device).
    No valid token -> all False.
    Ref: Wang et al., "Beyond the 80/20 rule", arXiv:2506.01939 (code:
    ``get_global_entropy_top_mask`` in github.com/Shenzhi-Wang/Beyond-the-80-20-Rule-RLVR);
    docs/algorithms.md#high-entropy. Shapes: (B, T), (B, T) -> (B, T) bool.

    >>> h = torch.tensor([[0.1, 2.0, 0.3, 1.5, 0.05, 0.9, 0.2, 0.4, 0.6, 0.7]])
    >>> high_entropy_mask(h, torch.ones_like(h)).nonzero()[:, 1].tolist()
    [1, 3]
    """
    if not 0.0 < ratio <= 1.0:
        raise ConfigError(f"ratio must be in (0, 1], got {ratio!r}; the 80/20 paper uses 0.2.")
    valid = loss_mask > 0
    n = int(valid.sum())
    out = torch.zeros_like(valid)
    if n == 0:
        return out
    k = min(max(1, int(n * ratio + 0.9999)), n)
    valid_flat = valid.reshape(-1)
    packed = entropies.detach().reshape(-1).float()[valid_flat]
    where = valid_flat.nonzero().squeeze(1)[torch.topk(packed, k).indices]
    out.view(-1)[where] = True
    return out
