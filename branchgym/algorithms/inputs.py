"""The two frozen input records every registered estimator and loss takes.

``ADVANTAGES[name](batch: AdvantageInputs, **hparams) -> Tensor[B, T]`` and
``POLICY_LOSSES[name](inputs: LossInputs, **hparams) -> (loss, metrics)`` never branch on the
name at the call site: what an algorithm needs beyond the common fields is an optional field
here, and an estimator that needs it raises a ``ConfigError`` naming the field when it is absent.

Conventions (docs/algorithms.md#notation): B rows (trajectories, or steps for a step-per-row
layout),
T response-token positions, left-aligned; ``loss_mask`` is 1 on model-generated tokens and 0 on
tool-result tokens and padding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar

from branchgym.errors import ConfigError

if TYPE_CHECKING:
    from torch import Tensor

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["AdvantageInputs", "LossInputs", "Needs", "declare", "needs_of"]

_OPTIONAL_ADVANTAGE_FIELDS = ("entropies", "step_ids", "traj_ids", "parent_ids", "branch_points")
_OPTIONAL_LOSS_FIELDS = ("entropies", "ref_logp")


@dataclass(frozen=True)
class Needs:
    """What a registered estimator or loss reads beyond the required fields, and when.

    ``fields``: the optional fields of :class:`AdvantageInputs` / :class:`LossInputs` it reads.
    The trainer fills exactly these (the others stay ``None``) and refuses, before loading a
    model, an estimator whose fields the configured rollout does not record (``parent_ids`` and
    ``branch_points`` come only from tree rollouts).

    ``per_minibatch``: the estimator reads the entropies of the policy being updated, so the
    trainer calls it once per mini-batch instead of once per rollout batch: with that
    mini-batch's rows, their token entropies under the current weights (the rollout policy's
    for the first mini-batch, recomputed after every optimizer step for the later ones), and
    ``population_rewards`` / ``population_group_ids`` set to the whole batch's, which group
    statistics are taken over. Token-level statistics (AEPO's entropy z-score) are then over
    the mini-batch. Needs ``"entropies"`` in ``fields``.
    """

    fields: frozenset[str] = frozenset()
    per_minibatch: bool = False


def declare(*, needs: Iterable[str] = (), per_minibatch: bool = False) -> Callable[[F], F]:
    """Attach a :class:`Needs` declaration to an estimator or loss (as its ``needs`` attribute).

    ``ADVANTAGES.register("mine", declare(needs=["entropies"], per_minibatch=True)(fn))``; the
    built-in entries are declared where they are defined. An undeclared function needs nothing.

    >>> @declare(needs=["entropies"], per_minibatch=True)
    ... def est(batch): ...
    >>> needs_of(est)
    Needs(fields=frozenset({'entropies'}), per_minibatch=True)
    """
    fields_ = frozenset(needs)
    known = set(_OPTIONAL_ADVANTAGE_FIELDS) | set(_OPTIONAL_LOSS_FIELDS)
    unknown = sorted(fields_ - known)
    if unknown:
        raise ConfigError(
            f"declare(needs=...) names {unknown}, which are not optional fields of "
            f"AdvantageInputs or LossInputs; use some of {sorted(known)}."
        )
    if per_minibatch and "entropies" not in fields_:
        raise ConfigError(
            "declare(per_minibatch=True) recomputes with the current policy's entropies, so "
            f"needs must include 'entropies'; got needs={sorted(fields_)}."
        )
    spec = Needs(fields_, bool(per_minibatch))

    def attach(fn: F) -> F:
        fn.needs = spec  # type: ignore[attr-defined]
        return fn

    return attach


def needs_of(fn: Callable[..., Any]) -> Needs:
    """The :class:`Needs` declared on ``fn`` (nothing, computed once per batch, if undeclared)."""
    spec = getattr(fn, "needs", None)
    return spec if isinstance(spec, Needs) else Needs()


def _check_2d(name: str, value: Tensor | None, shape: tuple[int, ...]) -> None:
    if value is not None and tuple(value.shape) != shape:
        raise ConfigError(
            f"{name} has shape {tuple(value.shape)} but loss_mask has shape {shape}; "
            f"pass one value per response token (B, T), aligned with loss_mask."
        )


def _check_mask(loss_mask: Tensor) -> None:
    import torch

    if loss_mask.dim() != 2:
        raise ConfigError(
            f"loss_mask must be 2-D (B, T), got shape {tuple(loss_mask.shape)}; add a batch "
            "dimension with mask.unsqueeze(0) for a single sequence."
        )
    bad = ~((loss_mask == 0) | (loss_mask == 1))
    if bool(torch.any(bad)):
        raise ConfigError(
            f"loss_mask must hold only 0 and 1, found {loss_mask[bad][:5].tolist()}; "
            "use 1 on model-generated tokens and 0 on tool results and padding."
        )


@dataclass(frozen=True)
class AdvantageInputs:
    """Everything an advantage estimator may read; shapes are checked in ``__post_init__``.

    Required: ``rewards`` (B,) float, ``group_ids`` (B,) int (one id per prompt; for tree
    rollouts the whole tree shares one id), ``loss_mask`` (B, T).
    Optional, read only by the estimators that need them:

    - ``entropies`` (B, T): per-token entropy (AEPO: current policy; EMPG: old policy).
    - ``step_ids`` (B, T) int: step index s of each token, -1 outside any step (EMPG).
    - ``traj_ids`` (B,) int: trajectory id of each row; rows sharing one are steps of one
      trajectory (step-per-row layout, as ARLArena). Default: each row is its own trajectory.
    - ``parent_ids`` (B,) int: row index of the trajectory this one was cloned from, -1 for a
      global trajectory (ARPO hard attribution). A parent must come before its child.
    - ``branch_points`` (B,) int: number of leading response tokens the row shares with its
      parent (the token index where the clone diverged); ignored where ``parent_ids`` is -1.
    - ``population_rewards``, ``population_group_ids`` (P,): when these rows are a subset of a
      larger batch (a per-mini-batch call, see :class:`Needs`), the rewards and group ids of
      the whole batch; group statistics (mean, std) are taken over them. Every row's group must
      be among them. ``None``: the rows themselves are the population.
    """

    rewards: Tensor
    group_ids: Tensor
    loss_mask: Tensor
    entropies: Tensor | None = None
    step_ids: Tensor | None = None
    traj_ids: Tensor | None = None
    parent_ids: Tensor | None = None
    branch_points: Tensor | None = None
    population_rewards: Tensor | None = None
    population_group_ids: Tensor | None = None

    def __post_init__(self) -> None:
        import torch

        _check_mask(self.loss_mask)
        if (self.population_rewards is None) != (self.population_group_ids is None):
            raise ConfigError(
                "population_rewards and population_group_ids go together; got only "
                f"{'population_rewards' if self.population_rewards is not None else 'population_group_ids'}."
            )
        if self.population_rewards is not None and self.population_group_ids is not None:
            if self.population_rewards.dim() != 1 or (
                self.population_rewards.shape != self.population_group_ids.shape
            ):
                raise ConfigError(
                    f"population_rewards {tuple(self.population_rewards.shape)} and "
                    f"population_group_ids {tuple(self.population_group_ids.shape)} must be "
                    "1-D and of one length (one entry per trajectory of the whole batch)."
                )
        b, t = self.loss_mask.shape
        for name in ("rewards", "group_ids", "traj_ids", "parent_ids", "branch_points"):
            value = getattr(self, name)
            if value is not None and tuple(value.shape) != (b,):
                raise ConfigError(
                    f"{name} has shape {tuple(value.shape)} but the batch has B={b} rows; "
                    f"pass one {name[:-1]} per row, shape ({b},)."
                )
        for name in ("entropies", "step_ids"):
            _check_2d(name, getattr(self, name), (b, t))
        bad_rows = (~torch.isfinite(self.rewards)).nonzero().flatten().tolist()
        if bad_rows:
            raise ConfigError(
                f"rewards must be finite; rows {bad_rows[:10]} hold "
                f"{self.rewards[bad_rows[:10]].tolist()}. Fix the reward function (a failed "
                "scoring should give a number, e.g. the format penalty -1)."
            )
        if self.group_ids.is_floating_point():
            raise ConfigError(
                f"group_ids must be an integer tensor, got dtype {self.group_ids.dtype}; "
                "use torch.as_tensor(ids, dtype=torch.long)."
            )
        if (self.parent_ids is None) != (self.branch_points is None):
            raise ConfigError(
                "parent_ids and branch_points go together (tree attribution needs both); "
                f"got parent_ids={'set' if self.parent_ids is not None else None}, "
                f"branch_points={'set' if self.branch_points is not None else None}."
            )

    def require(self, *names: str, by: str) -> None:
        """Raise a ``ConfigError`` naming the missing optional fields estimator ``by`` needs."""
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            known = [f.name for f in fields(self)]
            raise ConfigError(
                f"advantage estimator {by!r} needs {missing} in AdvantageInputs (fields: {known}); "
                "record them in the rollout and pass them in (a registered estimator declares "
                "them with branchgym.algorithms.inputs.declare(needs=...), and the trainer then "
                "fills them)."
            )

    def population(self) -> tuple[Tensor, Tensor]:
        """(rewards, group ids) that group statistics are taken over (see the class doc)."""
        if self.population_rewards is not None and self.population_group_ids is not None:
            return self.population_rewards, self.population_group_ids
        return self.rewards, self.group_ids


@dataclass(frozen=True)
class LossInputs:
    """Per-token tensors a policy loss reads, all (B, T).

    ``logp`` carries the gradient (current policy); ``old_logp`` is the behaviour policy's
    log-prob recomputed by the trainer; ``advantages`` are per token (already masked).
    Optional: ``entropies`` (current-policy token entropy; 80/20 mask and AEPO's entropy-aware
    advantage read it, detached) and ``ref_logp`` (reference policy, for a KL term).
    """

    logp: Tensor
    old_logp: Tensor
    advantages: Tensor
    loss_mask: Tensor
    entropies: Tensor | None = None
    ref_logp: Tensor | None = None

    def __post_init__(self) -> None:
        _check_mask(self.loss_mask)
        shape = tuple(self.loss_mask.shape)
        for name in ("logp", "old_logp", "advantages", "entropies", "ref_logp"):
            _check_2d(name, getattr(self, name), shape)

    def require(self, *names: str, by: str) -> None:
        """Raise a ``ConfigError`` naming the missing optional fields loss ``by`` needs."""
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise ConfigError(
                f"policy loss {by!r} needs {missing} in LossInputs; compute them in the "
                "forward pass (entropies: branchgym.agents.entropy.entropy_from_logits) and "
                "pass them (declare them with branchgym.algorithms.inputs.declare(needs=...) "
                "and the trainer computes them)."
            )
