"""Loss aggregation modes: a (B, T) per-token loss and mask -> a scalar
(docs/algorithms.md#aggregation).

Each mode is registered in ``AGGREGATIONS`` with one signature,
``fn(loss_mat, loss_mask, *, norm_constant=None) -> scalar Tensor``; :func:`agg_loss` dispatches.

``norm_constant`` replaces the mode's denominator: the token count (token-mean), the number of
sequences (seq-mean-*) or the constant C (seq-mean-token-sum-norm). Pass the *mini-batch* value
when a mini-batch is split into micro-batches whose losses are summed before the step: the sum
then equals the mini-batch loss exactly (the convention of newer verl's ``batch_num_tokens`` /
``global_batch_size``). Left ``None``, the denominator is the call's own, as in the verl inside
ARPO/AEPO, where token-mean is per micro-batch (docs/algorithms.md#aggregation).

Edge cases (fixed here so every caller agrees): a fully masked row is excluded from the
sequence means (verl's convention); a batch with no valid token aggregates to 0.0, with a zero
gradient, instead of verl's NaN from 0/0.
"""

from __future__ import annotations

import torch  # noqa: F401  (the doctests use it)
from torch import Tensor

from branchgym.errors import ConfigError

__all__ = [
    "token_mean",
    "seq_mean_token_mean",
    "seq_mean_token_sum",
    "seq_mean_token_sum_norm",
    "agg_loss",
    "AGG_MODES",
]

AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")


def _denominator(norm_constant: float | None, default: Tensor, mode: str, what: str) -> Tensor:
    if norm_constant is None:
        return default.clamp(min=1.0)
    if not norm_constant > 0:
        raise ConfigError(
            f"norm_constant must be > 0 for {mode}, got {norm_constant!r}; it is the {what} "
            "(e.g. the mini-batch's value when summing micro-batch losses), or None."
        )
    return default.new_tensor(float(norm_constant))


def token_mean(
    loss_mat: Tensor, loss_mask: Tensor, *, norm_constant: float | None = None
) -> Tensor:
    """``Σ_{i,t} m ℓ / Σ_{i,t} m`` — DAPO's token-level loss; ARPO/AEPO/80-20 default.

    ``norm_constant``: the token count to divide by instead of ``Σ m``.
    Ref: DAPO arXiv:2503.14476; verl ``core_algos.py::agg_loss`` (L1025 @ b178a3cd);
    docs/algorithms.md#aggregation. Shapes: (B, T), (B, T) -> (). No valid token -> 0.0.

    >>> token_mean(torch.tensor([[1., 3., 0., 0.], [2., 2., 2., 6.]]),
    ...            torch.tensor([[1., 1., 0., 0.], [1., 1., 1., 1.]]))
    tensor(2.6667)
    """
    mask = loss_mask.to(loss_mat.dtype)
    denom = _denominator(norm_constant, mask.sum(), "token-mean", "number of loss tokens")
    return (loss_mat * mask).sum() / denom


def _rows(mask: Tensor, norm_constant: float | None, mode: str) -> Tensor:
    """Number of rows with ≥ 1 valid token (or ``norm_constant``)."""
    rows = (mask.sum(dim=-1) > 0).to(mask.dtype).sum()
    return _denominator(norm_constant, rows, mode, "number of sequences")


def seq_mean_token_mean(
    loss_mat: Tensor, loss_mask: Tensor, *, norm_constant: float | None = None
) -> Tensor:
    """``(1/B') Σ_i [Σ_t m ℓ / Σ_t m]`` over the B' rows with a valid token — original GRPO.

    ``norm_constant``: the number of sequences to divide by instead of B'.
    Ref: DeepSeekMath GRPO arXiv:2402.03300; verl ``agg_loss``; docs/algorithms.md#aggregation.

    >>> seq_mean_token_mean(torch.tensor([[1., 3., 0., 0.], [2., 2., 2., 6.]]),
    ...                     torch.tensor([[1., 1., 0., 0.], [1., 1., 1., 1.]]))
    tensor(2.5000)
    """
    mask = loss_mask.to(loss_mat.dtype)
    per_row = (loss_mat * mask).sum(dim=-1) / mask.sum(dim=-1).clamp(min=1.0)
    return per_row.sum() / _rows(mask, norm_constant, "seq-mean-token-mean")


def seq_mean_token_sum(
    loss_mat: Tensor, loss_mask: Tensor, *, norm_constant: float | None = None
) -> Tensor:
    """``(1/B') Σ_i Σ_t m ℓ`` over the B' rows with a valid token.

    ``norm_constant``: the number of sequences to divide by instead of B'.
    Ref: verl ``agg_loss``; docs/algorithms.md#aggregation.

    >>> seq_mean_token_sum(torch.tensor([[1., 3., 0., 0.], [2., 2., 2., 6.]]),
    ...                    torch.tensor([[1., 1., 0., 0.], [1., 1., 1., 1.]]))
    tensor(8.)
    """
    mask = loss_mask.to(loss_mat.dtype)
    return (loss_mat * mask).sum() / _rows(mask, norm_constant, "seq-mean-token-sum")


def seq_mean_token_sum_norm(
    loss_mat: Tensor, loss_mask: Tensor, *, norm_constant: float | None = None
) -> Tensor:
    """``Σ_{i,t} m ℓ / C`` with a constant C (default: T = ``loss_mask.shape[-1]``) — Dr. GRPO.

    Ref: Dr. GRPO arXiv:2503.20783; the verl inside ARPO/AEPO (``agg_loss`` L419) divides the
    token sum by C only, as here and in docs/algorithms.md#ex-aggregation. verl >= 0.5 also divides
    by the
    number of rows: pass ``norm_constant = B * C`` to reproduce that. Keep C fixed during
    training (e.g. the response budget) so that the scale does not depend on the batch.

    >>> seq_mean_token_sum_norm(torch.tensor([[1., 3., 0., 0.], [2., 2., 2., 6.]]),
    ...                         torch.tensor([[1., 1., 0., 0.], [1., 1., 1., 1.]]), norm_constant=8)
    tensor(2.)
    """
    mask = loss_mask.to(loss_mat.dtype)
    horizon = mask.new_tensor(float(loss_mask.shape[-1]))
    c = _denominator(norm_constant, horizon, "seq-mean-token-sum-norm", "constant C")
    return (loss_mat * mask).sum() / c


def agg_loss(
    loss_mat: Tensor,
    loss_mask: Tensor,
    mode: str = "token-mean",
    *,
    norm_constant: float | None = None,
) -> Tensor:
    """Aggregate with mode ``mode`` (an ``AGGREGATIONS`` entry; built-ins: :data:`AGG_MODES`).

    >>> agg_loss(torch.ones(2, 3), torch.ones(2, 3), "seq-mean-token-sum")
    tensor(3.)
    """
    from branchgym.algorithms.registry import AGGREGATIONS

    fn = AGGREGATIONS.get(mode)  # unknown name -> UnknownName listing the modes
    if loss_mat.shape != loss_mask.shape:
        raise ConfigError(
            f"loss_mat shape {tuple(loss_mat.shape)} != loss_mask shape {tuple(loss_mask.shape)}; "
            "both must be (B, T)."
        )
    return fn(loss_mat, loss_mask, norm_constant=norm_constant)
