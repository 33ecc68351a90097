"""What the trainer does with the declarations of the registered estimators and losses.

:func:`check_needs` refuses, before any model loads, an estimator or loss whose declared inputs
the run cannot record; :func:`advantage_inputs` builds an estimator's input record with exactly
the declared optional fields. The contract: docs/algorithms.md#trainer.
"""

from __future__ import annotations

from typing import Any

from branchgym.algorithms.inputs import AdvantageInputs, Needs
from branchgym.errors import ConfigError

__all__ = ["check_needs", "advantage_inputs"]

_TREE_FIELDS = ("parent_ids", "branch_points")
_TRAINER_FIELDS = ("entropies", "step_ids", *_TREE_FIELDS)  # what the trainer can fill


def check_needs(cfg: Any) -> None:
    """Refuse, before any model loads, an estimator or loss whose declared inputs this run lacks."""
    from branchgym.algorithms.inputs import needs_of
    from branchgym.algorithms.registry import ADVANTAGES, POLICY_LOSSES

    for kind, name in (("advantage", cfg.advantage), ("loss", cfg.loss)):
        registry = ADVANTAGES if kind == "advantage" else POLICY_LOSSES
        fields_ = needs_of(registry.get(name)).fields
        missing = sorted(fields_ - set(_TRAINER_FIELDS) - {"ref_logp"})
        if missing:
            raise ConfigError(
                f"{kind} {name!r} declares needs {missing}, which the trainer does not record "
                f"(it fills {list(_TRAINER_FIELDS)}); use another {kind} or drop the declaration."
            )
        tree = sorted(fields_ & set(_TREE_FIELDS))
        if tree and cfg.rollout != "tree":
            raise ConfigError(
                f"{kind} {name!r} needs {tree} (the tree's shared prefixes), which only "
                f"rollout='tree' records, but rollout={cfg.rollout!r}; use --set rollout=tree "
                "(with branching) or an estimator without tree needs, e.g. 'grpo'."
            )


def advantage_inputs(tt: Any, entropies: Any, needs: Needs, *, population: Any = None) -> AdvantageInputs:
    """The estimator's input record for the rows of ``tt`` (a ``TrainTensors``): the required
    fields plus the declared optional ones.

    ``entropies`` are (rows, width) on any device (moved to the CPU here); ``population``, a
    larger ``TrainTensors`` these rows were taken from, supplies the group statistics.
    """
    extra: dict[str, Any] = {}
    if "entropies" in needs.fields:
        extra["entropies"] = entropies.detach().cpu()
    if "step_ids" in needs.fields:
        extra["step_ids"] = tt.step_ids
    if set(_TREE_FIELDS) & needs.fields:
        extra["parent_ids"], extra["branch_points"] = tt.parent_ids, tt.branch_points
    if population is not None:
        extra["population_rewards"] = population.rewards
        extra["population_group_ids"] = population.group_ids
    return AdvantageInputs(rewards=tt.rewards, group_ids=tt.group_ids, loss_mask=tt.loss_mask, **extra)
