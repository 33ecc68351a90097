"""EMPG — Entropy-Modulated Policy Gradients: step-level credit re-scaled by step entropy.

Registered as ``ADVANTAGES["empg"]`` with the shared signature ``fn(batch, **hparams)``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from branchgym.algorithms.advantages import group_relative_advantages
from branchgym.algorithms.inputs import AdvantageInputs, declare
from branchgym.errors import ConfigError

__all__ = ["empg_step_advantages", "empg", "EMPG_FINAL_NORMS"]

FinalNorm = Literal["zero_mean_steps", "zero_mean_tokens", "none"]
EMPG_FINAL_NORMS = ("zero_mean_steps", "zero_mean_tokens", "none")


def empg_step_advantages(
    step_entropy: Tensor,
    step_adv: Tensor,
    next_index: Tensor,
    *,
    k: float = 1.0,
    k_f: float = 1.0,
    zeta: float = 0.1,
    eps: float = 1e-8,
) -> Tensor:
    """EMPG modulated step advantage before the final normalisation.

    With S steps in the batch (all trajectories), per step s of trajectory i::

        H̃_s   = (H_s − min H) / (max H − min H + ε)            (batch min-max)
        g_s   = exp(−k H̃_s) / (mean_S exp(−k H̃) + ε)           (self-calibrating scale, mean ≈ 1)
        f_s+1 = exp(−k' H̃_{s+1})   (0 when s is the trajectory's last step)
        A_mod = g_s · A_i + ζ · f_{s+1}

    Ref: Wang et al., EMPG arXiv:2509.09265 §3; project-page pseudocode
    ``compute_empg_advantage(k=1, k_f=1, zeta=0.1)``; docs/algorithms.md#empg, #ex-empg.
    Shapes: (S,), (S,), (S,) long (index of the next step of the same trajectory, −1 if none)
    -> (S,).

    >>> empg_step_advantages(torch.tensor([0.2, 0.5, 0.8, 1.4]), torch.tensor([1., 1., -1., -1.]),
    ...                      torch.tensor([1, -1, 3, -1]))
    tensor([ 1.5307,  1.1315, -0.8444, -0.5345])
    """
    if step_entropy.numel() == 0:
        return step_entropy.clone()
    h = step_entropy.double()
    h_norm = (h - h.min()) / (h.max() - h.min() + eps)
    scale = torch.exp(-k * h_norm)
    g = scale / (scale.mean() + eps)
    clarity = torch.exp(-k_f * h_norm)
    has_next = next_index >= 0
    bonus = torch.where(has_next, clarity[next_index.clamp(min=0)], torch.zeros_like(clarity))
    return (g * step_adv.double() + zeta * bonus).to(torch.float32)


@declare(needs=["entropies", "step_ids"])
def empg(
    batch: AdvantageInputs,
    *,
    k: float = 1.0,
    k_f: float = 1.0,
    zeta: float = 0.1,
    final_norm: FinalNorm = "zero_mean_steps",
    scale_by_std: bool = True,
    std_unbiased: bool = True,
    eps: float = 1e-6,
) -> Tensor:
    """EMPG token advantages: every token of step s of trajectory i gets ``A_fin(i, s)``.

    Steps: the tokens of a row with the same ``step_ids`` value (−1 = outside any step, gets 0);
    ``step_ids=None`` makes each row one step. Rows sharing a ``traj_ids`` value are one
    trajectory (step-per-row layout); the next step of (traj, s) is (traj, s+1). Step entropy
    ``H_s`` = mean ``entropies`` (old policy) over the step's loss-bearing tokens. ``A_i`` =
    GRPO advantage of the row. Final normalisation (``empg_final_norm``):
    ``zero_mean_steps`` subtracts the mean of A_mod over steps (ARLArena), ``zero_mean_tokens``
    over loss-bearing tokens, ``none`` keeps A_mod. Steps with no loss-bearing token are ignored.
    Ref: arXiv:2509.09265; docs/algorithms.md#empg, #ex-empg. Shapes: see AdvantageInputs -> (B, T).

    >>> b = AdvantageInputs(torch.tensor([1., 0.]), torch.tensor([0, 0]), torch.ones(2, 2),
    ...                     entropies=torch.tensor([[0.2, 0.2], [0.9, 0.9]]))
    >>> empg(b, final_norm="none").round(decimals=4)
    tensor([[ 1.0339,  1.0339],
            [-0.3803, -0.3803]])
    """
    if final_norm not in EMPG_FINAL_NORMS:
        raise ConfigError(
            f"unknown empg final_norm {final_norm!r}; use one of {list(EMPG_FINAL_NORMS)} "
            "(zero_mean_steps = ARLArena's reproduction)."
        )
    batch.require("entropies", by="empg")
    assert batch.entropies is not None
    b, t = batch.loss_mask.shape
    row_adv = group_relative_advantages(
        batch.rewards,
        batch.group_ids,
        scale_by_std=scale_by_std,
        std_unbiased=std_unbiased,
        eps=eps,
        population=batch.population(),
    )
    traj = batch.traj_ids if batch.traj_ids is not None else torch.arange(b)
    step = batch.step_ids if batch.step_ids is not None else torch.zeros(b, t, dtype=torch.long)
    valid = (batch.loss_mask > 0) & (step >= 0)

    out = torch.zeros(b, t, dtype=torch.float32)
    if not bool(valid.any()):
        return out
    # One integer key per (trajectory, step): traj_index * stride + step, with stride > max step + 1
    # so that key + 1 is the next step of the same trajectory (vectorised; no per-token Python).
    _, traj_idx = torch.unique(traj, return_inverse=True)
    stride = int(step.max()) + 2
    tok_keys = (traj_idx.unsqueeze(1) * stride + step)[valid]
    keys, sel = torch.unique(tok_keys, return_inverse=True)  # sorted step keys; token -> step
    n_steps = int(keys.shape[0])
    rows_idx = torch.arange(b).unsqueeze(1).expand(b, t)[valid]
    h_sum = torch.zeros(n_steps, dtype=torch.float64).index_add_(
        0, sel, batch.entropies[valid].double()
    )
    n_tok = torch.zeros(n_steps, dtype=torch.float64).index_add_(
        0, sel, torch.ones_like(sel, dtype=torch.float64)
    )
    step_h = h_sum / n_tok
    step_adv = torch.zeros(n_steps, dtype=torch.float32)
    step_adv[sel] = row_adv[rows_idx]
    pos = torch.searchsorted(keys, keys + 1).clamp(max=n_steps - 1)
    next_index = torch.where(keys[pos] == keys + 1, pos, torch.full_like(pos, -1))
    a_mod = empg_step_advantages(step_h, step_adv, next_index, k=k, k_f=k_f, zeta=zeta)
    per_tok = torch.zeros(b, t, dtype=torch.float32)
    per_tok[valid] = a_mod[sel]
    if final_norm == "zero_mean_steps":
        per_tok[valid] -= a_mod.mean()
    elif final_norm == "zero_mean_tokens":
        per_tok[valid] -= per_tok[valid].mean()
    return per_tok
